"""Attribution with every client's model in one process, as the paper's reference artifact does.

This is the yardstick for the networked protocol: the same relevance, the same client scores and
the same combination, only without the network in between.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from protoken.attribution.calibration import DEFAULT_THRESHOLD, Calibration
from protoken.attribution.combine import CALIBRATED, NO_GRADIENT, build_provenance, check_mode
from protoken.attribution.generation import encode_prompt, stop_token_ids
from protoken.attribution.layers import select_layers
from protoken.attribution.probe import Probe, Relevance
from protoken.attribution.provenance import Provenance
from protoken.attribution.relevance import (
    FAST,
    LOGIT,
    PATHS,
    fast_relevance,
    reference_relevance,
    teacher_forced_probe,
)
from protoken.attribution.scoring import module_scores


def relevance_for_prompt(global_model: nn.Module, tokenizer: PreTrainedTokenizerBase, prompt: str, *,
                         layers: Sequence[str] | None = None, max_new_tokens: int = 32, path: str = FAST,
                         per_token: bool = False, chat: bool = True, objective: str = LOGIT) -> Relevance:
    """G's relevance for a text prompt (default layers: `select_layers`)."""
    if path not in PATHS:
        raise ValueError(f"relevance path must be one of {', '.join(PATHS)}, got {path!r}")
    layers = select_layers(global_model) if layers is None else list(layers)
    prompt_ids = encode_prompt(tokenizer, prompt, chat=chat)
    stops = stop_token_ids(global_model, tokenizer)
    if path == FAST:
        return fast_relevance(global_model, prompt_ids, layers, max_new_tokens=max_new_tokens,
                              stop_ids=stops, per_token=per_token, objective=objective)
    return reference_relevance(global_model, prompt_ids, layers, max_new_tokens=max_new_tokens, stop_ids=stops,
                               objective=objective)


@dataclass(frozen=True)
class CalibrationExample:
    """A reference prompt; with a `response`, that fixed text is scored instead of G's own answer.

    A fixed response keeps the baseline independent of what the model currently says: when a
    backdoor makes G answer every reference prompt with its sentinel, a generated baseline would
    absorb the backdoor and hide it.
    """

    prompt: str
    response: str | None = None


def calibration_relevance(global_model: nn.Module, tokenizer: PreTrainedTokenizerBase, example: CalibrationExample,
                          *, layers: Sequence[str], max_new_tokens: int, chat: bool = True,
                          objective: str = LOGIT) -> Relevance:
    """G's relevance for a calibration example: its fixed response (first `max_new_tokens` tokens) or G's own."""
    if example.response is None:
        return relevance_for_prompt(global_model, tokenizer, example.prompt, layers=layers,
                                    max_new_tokens=max_new_tokens, chat=chat, objective=objective)
    prompt_ids = encode_prompt(tokenizer, example.prompt, chat=chat)
    response_ids = tokenizer(example.response, add_special_tokens=False)["input_ids"][:max_new_tokens]
    if not response_ids:
        raise ValueError(f"the reference response to {example.prompt!r} is empty")
    started = time.perf_counter()
    probe = teacher_forced_probe(global_model, prompt_ids, response_ids, layers, objective=objective)
    return Relevance(prompt_ids, response_ids, probe, objective, {"relevance_s": time.perf_counter() - started})


def client_answers(client_models: Mapping[str, nn.Module], probe: Probe) -> tuple[dict[str, torch.Tensor], float]:
    """Every client's scores for the probe, and the seconds they took together."""
    started = time.perf_counter()
    answers = {client: module_scores(model, probe) for client, model in client_models.items()}
    return answers, time.perf_counter() - started


def attribute_in_process(global_model: nn.Module, tokenizer: PreTrainedTokenizerBase,
                         client_models: Mapping[str, nn.Module], prompt: str, *,
                         layers: Sequence[str] | None = None, mode: str = CALIBRATED,
                         calibration: Calibration | None = None, max_new_tokens: int = 32,
                         path: str = FAST, per_token: bool = False, chat: bool = True,
                         objective: str = LOGIT) -> Provenance:
    """Generate with G, score with every client's model, combine: one Provenance."""
    check_mode(mode)
    if mode == CALIBRATED and calibration is None:
        raise ValueError("calibrated attribution needs a Calibration: see calibrate_in_process, or use mode 'paper'")
    relevance = relevance_for_prompt(global_model, tokenizer, prompt, layers=layers, max_new_tokens=max_new_tokens,
                                     path=path, per_token=per_token, chat=chat, objective=objective)
    probe = relevance.probe.without_gradient() if mode == NO_GRADIENT else relevance.probe
    answers, seconds = client_answers(client_models, probe)
    return build_provenance(relevance, answers, tokenizer, mode=mode, calibration=calibration, prompt=prompt,
                            timings={"clients_s": seconds})


def calibrate_in_process(global_model: nn.Module, tokenizer: PreTrainedTokenizerBase,
                         client_models: Mapping[str, nn.Module], examples: Sequence[CalibrationExample], *,
                         layers: Sequence[str] | None = None, max_new_tokens: int = 32,
                         threshold: float = DEFAULT_THRESHOLD, chat: bool = True,
                         objective: str = LOGIT) -> Calibration:
    """A Calibration from the clients' scores of the reference `examples`."""
    layers = select_layers(global_model) if layers is None else list(layers)
    answers = []
    for example in examples:
        relevance = calibration_relevance(global_model, tokenizer, example, layers=layers,
                                          max_new_tokens=max_new_tokens, chat=chat, objective=objective)
        answers.append(client_answers(client_models, relevance.probe)[0])
    return Calibration.fit(layers, answers, threshold=threshold)
