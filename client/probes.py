"""Answering attribution probes: the client's own round model applied to G's inputs, dotted with g.

The client checks every probe against its policy before computing anything: it must have taken
part in the round, the modules must be allowed, and the tensors must have the right shapes and
finite values. A refusal is an answer with an error, so the server can report it.
"""

from __future__ import annotations

import re
import time

import torch
from torch import nn

from protoken.trainable import load_trainable_state, module_for
from protoken.v1 import federation_pb2 as pb
from protoken.wire.tensors import TensorError, from_wire, to_wire

from .store import LocalModelStore

DEFAULT_ALLOWED_BLOCKS = 2  # the last blocks a probe may ask about, besides lm_head


class ProbeRefused(ValueError):
    def __init__(self, code: int, message: str, field: str = "") -> None:
        super().__init__(message)
        self.error = pb.Error(code=code, message=message, field=field)


def default_policy(model: nn.Module, last_blocks: int = DEFAULT_ALLOWED_BLOCKS) -> tuple[str, ...]:
    """Patterns for modules inside the last `last_blocks` decoder blocks, and lm_head."""
    config = getattr(model, "config", None) or model.get_base_model().config
    layers = config.num_hidden_layers
    blocks = "|".join(str(i) for i in range(max(0, layers - last_blocks), layers))
    return (rf"model\.layers\.({blocks})\..+", r"lm_head")


class ProbeAnswerer:
    def __init__(self, model: nn.Module, store: LocalModelStore, allowed: tuple[str, ...] = ()) -> None:
        self.model = model
        self.store = store
        self.allowed = [re.compile(p) for p in (allowed or default_policy(model))]

    def answer(self, probe: pb.ProbeRequest) -> pb.ProbeAnswer:
        started = time.perf_counter()
        try:
            scores = self._scores(probe)
        except ProbeRefused as refusal:
            return pb.ProbeAnswer(probe_id=probe.probe_id, error=refusal.error)
        return pb.ProbeAnswer(probe_id=probe.probe_id, scores=to_wire(scores),
                              compute_seconds=time.perf_counter() - started)

    def _scores(self, probe: pb.ProbeRequest) -> torch.Tensor:
        if not self.store.has(probe.round):
            raise ProbeRefused(pb.ERROR_CODE_UNKNOWN_ROUND,
                               f"this client did not take part in round {probe.round}", "round")
        if not probe.modules:
            raise ProbeRefused(pb.ERROR_CODE_INVALID_ARGUMENT, "the probe names no module", "modules")
        columns = []
        tokens: int | None = None
        for index, item in enumerate(probe.modules):
            if not any(p.fullmatch(item.module) for p in self.allowed):
                raise ProbeRefused(pb.ERROR_CODE_POLICY_REFUSED,
                                   f"module {item.module!r} is outside this client's probe policy", "module")
            try:
                module = module_for(self.model, item.module)
            except AttributeError:
                raise ProbeRefused(pb.ERROR_CODE_INVALID_ARGUMENT, f"no module named {item.module!r}", "module")
            try:
                x = from_wire(item.x, name=f"modules[{index}].x", ndim=2).float()
                g = from_wire(item.g, name=f"modules[{index}].g", ndim=2).float() if item.HasField("g") else None
            except TensorError as exc:
                raise ProbeRefused(pb.ERROR_CODE_INVALID_ARGUMENT, str(exc), f"modules[{index}]")
            rows = x.shape[0]
            tokens = rows if tokens is None else tokens
            in_features = getattr(module, "in_features", None) or _input_width(module)
            if rows != tokens or x.shape[1] != in_features:
                raise ProbeRefused(pb.ERROR_CODE_INVALID_ARGUMENT,
                                   f"{item.module}: x has shape {tuple(x.shape)}, expected ({tokens}, {in_features})",
                                   f"modules[{index}].x")
            if g is None and len(item.target_ids) != rows:
                raise ProbeRefused(pb.ERROR_CODE_INVALID_ARGUMENT,
                                   f"{item.module}: needs g or one target id per token", f"modules[{index}]")
            columns.append((module, x, g, list(item.target_ids)))
        load_trainable_state(self.model, self.store.load(probe.round))
        return torch.stack([self._module_column(*c) for c in columns], dim=1)

    @staticmethod
    @torch.no_grad()
    def _module_column(module: nn.Module, x: torch.Tensor, g: torch.Tensor | None, target_ids: list[int]) -> torch.Tensor:
        from protoken.attribution import module_score

        return module_score(module, x, g, target_ids)


def _input_width(module: nn.Module) -> int:
    first = next(m for m in module.modules() if isinstance(m, nn.Linear))
    return first.in_features
