"""Shared helpers for the attribution tests: tiny base models, LoRA clients, FedAvg (no tests here)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cache

import pytest
import torch
from torch import nn

from protoken.models import LoadedModel, load_model
from protoken.trainable import TrainableSpec, build_trainable, load_trainable_state, trainable_state

LORA = TrainableSpec(lora_rank=4, lora_alpha=8.0)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models compute fastest on one thread; on a busy 2-core machine a second one mostly waits.

    Autouse in the test modules that import it; the previous setting is restored after the module.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@cache
def tiny(spec: str) -> LoadedModel:
    """A tiny base model, loaded once per test process; copy it before changing it."""
    return load_model(spec)


def lora_client(spec: str, seed: int, b_scale: float = 0.05) -> nn.Module:
    """A LoRA model over `spec` whose B is random and non-zero, so clients differ."""
    model = build_trainable(copy.deepcopy(tiny(spec).model), LORA, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * b_scale)
    return model.eval()


def fedavg(spec: str, clients: Mapping[str, nn.Module]) -> nn.Module:
    """The global model: a LoRA model holding the plain average of the clients' adapters."""
    states = [trainable_state(model) for model in clients.values()]
    average = {name: torch.stack([state[name] for state in states]).mean(dim=0) for name in states[0]}
    model = build_trainable(copy.deepcopy(tiny(spec).model), LORA)
    load_trainable_state(model, average)
    return model.eval()
