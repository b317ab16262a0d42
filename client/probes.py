"""Answering attribution probes: the client's own round model applied to G's inputs, dotted with g.

The client checks every probe against its policy before computing anything: it must have taken
part in the round, the modules must be allowed, and the tensors must have the right shapes and
finite values. A refusal is an answer with an error, so the server can report it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence

from torch import nn

from protoken.attribution import module_scores
from protoken.errors import UserError
from protoken.trainable import base_model_of, load_trainable_state
from protoken.v1 import federation_pb2 as pb
from protoken.wire.probes import probe_from_wire, scores_to_wire

from .store import DamagedState, LocalModelStore

DEFAULT_ALLOWED_BLOCKS = 2  # the last blocks a probe may ask about, besides lm_head


def default_policy(model: nn.Module, last_blocks: int = DEFAULT_ALLOWED_BLOCKS) -> tuple[str, ...]:
    """Patterns (regular expressions) for modules in the last `last_blocks` decoder blocks, and lm_head."""
    layers = base_model_of(model).config.num_hidden_layers
    blocks = "|".join(str(i) for i in range(max(0, layers - last_blocks), layers))
    return (rf"model\.layers\.({blocks})\..+", r"lm_head")


def _refusal(probe_id: str, code: int, message: str, field: str = "") -> pb.ProbeAnswer:
    return pb.ProbeAnswer(probe_id=probe_id, error=pb.Error(code=code, message=message, field=field))


def compile_policy(patterns: Sequence[str]) -> list[re.Pattern]:
    """The client's `--allow-module` patterns, compiled; a bad one is a UserError."""
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise UserError(f"--allow-module {pattern!r} is not a regular expression: {exc}") from exc
    return compiled


class ProbeAnswerer:
    """Answers probes with the client's model of the probed round.

    `model_for_round(r)` gives the trainable model (of the round's kind) to load round r's state
    into; it is only called for a probe that passed the round and policy checks.
    """

    def __init__(self, store: LocalModelStore, model_for_round: Callable[[int], nn.Module],
                 allowed: Sequence[re.Pattern] = ()) -> None:
        self.store = store
        self.model_for_round = model_for_round
        self.allowed_patterns = list(allowed)

    def _allowed(self, model: nn.Module) -> list[re.Pattern]:
        return self.allowed_patterns or [re.compile(p) for p in default_policy(model)]

    def answer(self, request: pb.ProbeRequest) -> pb.ProbeAnswer:
        started = time.perf_counter()
        if not self.store.has(request.round):
            return _refusal(request.probe_id, pb.ERROR_CODE_UNKNOWN_ROUND,
                            f"this client did not take part in round {request.round}", "round")
        try:
            state = self.store.load(request.round)  # checked first: a damaged round is refused, not fatal
        except DamagedState as exc:
            return _refusal(request.probe_id, pb.ERROR_CODE_INTERNAL, str(exc), "round")
        model = self.model_for_round(request.round)
        allowed = self._allowed(model)
        for item in request.modules:
            if not any(p.fullmatch(item.module) for p in allowed):
                return _refusal(request.probe_id, pb.ERROR_CODE_POLICY_REFUSED,
                                f"module {item.module!r} is outside this client's probe policy", "modules")
        try:
            probe = probe_from_wire(request)
            load_trainable_state(model, state)
            scores = module_scores(model, probe)
        except ValueError as exc:
            return _refusal(request.probe_id, pb.ERROR_CODE_INVALID_ARGUMENT, str(exc), "modules")
        return pb.ProbeAnswer(probe_id=request.probe_id, scores=scores_to_wire(scores),
                              compute_seconds=time.perf_counter() - started)
