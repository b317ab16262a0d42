"""Attribution through the probe protocol: generate with G, probe the round's clients, combine.

The server holds only the global model of each round. Client i's part of every score is computed
by client i, on its own weights, from the probe's tensors; here the answers are only combined.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from protoken.attribution import (CALIBRATED, NO_GRADIENT, Calibration, CalibrationExample, Provenance,
                                  Relevance, build_provenance, calibration_relevance, relevance_for_prompt,
                                  select_layers)
from protoken.config import AttributionSection
from protoken.errors import UserError
from protoken.trainable import load_trainable_state
from protoken.wire.probes import probe_to_wire, scores_from_wire
from protoken.wire.tensors import wire_dtype

from .probes import ProbeBroker
from .state import StateStore

class AttributionError(Exception):
    """A request that cannot be attributed; `kind` says why (invalid, not_found, unavailable)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class ProbeStats:
    round_trip_s: float
    bytes_per_probe: float
    bytes_per_answer: float
    refused: dict[str, str]


def attribution_layers(model: nn.Module, rules: list[str]) -> list[str]:
    """The modules probed (`attribution.layers` rules, or the method's defaults)."""
    try:
        return select_layers(model, rules or None)
    except ValueError as exc:
        raise UserError(f"config key attribution.layers: {exc}") from exc


class Attributor:
    def __init__(self, model: nn.Module, tokenizer: PreTrainedTokenizerBase, store: StateStore,
                 broker: ProbeBroker, settings: AttributionSection, layers: list[str],
                 reference: list[CalibrationExample], model_lock: threading.Lock) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.store = store
        self.broker = broker
        self.settings = settings
        self.model_lock = model_lock
        self.layers = layers
        self.float_dtype = wire_dtype(settings.wire_dtype)
        self._calibrations: dict[int, Calibration] = {}
        self._reference = reference
        # A saved calibration is only valid for the settings it was fitted with.
        fitted_with = json.dumps([layers, [asdict(e) for e in reference], settings.threshold, settings.max_new_tokens,
                                  settings.objective])
        self._calibration_key = hashlib.sha256(fitted_with.encode()).hexdigest()[:12]

    def resolve_round(self, requested: int) -> int:
        completed = [r.round for r in self.store.rounds() if r.round > 0]
        if not completed:
            raise AttributionError("unavailable", "no training round has completed yet")
        if requested == 0:
            return completed[-1]
        if requested not in completed:
            raise AttributionError("not_found", f"round {requested} is unknown; completed rounds: "
                                   f"{completed[0]}..{completed[-1]}")
        return requested

    def attribute(self, prompt: str, round_number: int = 0, max_new_tokens: int | None = None,
                  mode: str | None = None) -> tuple[Provenance, ProbeStats]:
        if not prompt.strip():
            raise AttributionError("invalid", "the prompt is empty")
        mode = mode or self.settings.mode
        max_new_tokens = max_new_tokens or self.settings.max_new_tokens
        if not 1 <= max_new_tokens <= 1024:
            raise AttributionError("invalid", f"max_new_tokens must be in 1..1024, got {max_new_tokens}")
        round_number = self.resolve_round(round_number)
        calibration = self.calibration(round_number) if mode == CALIBRATED else None
        record = self.store.get(round_number)
        with self.model_lock:
            load_trainable_state(self.model, self.store.load_weights(record))
            relevance = relevance_for_prompt(self.model, self.tokenizer, prompt, layers=self.layers,
                                             max_new_tokens=max_new_tokens, objective=self.settings.objective)
        answers, stats = self._probe(relevance, round_number, mode)
        provenance = build_provenance(relevance, answers, self.tokenizer, mode=mode, calibration=calibration,
                                      prompt=prompt, round=round_number,
                                      timings={"probe_round_trip_s": stats.round_trip_s})
        return provenance, stats

    def calibration(self, round_number: int) -> Calibration:
        """Per-client baselines for a round, from the reference examples through the same probes."""
        if round_number in self._calibrations:
            return self._calibrations[round_number]
        path = self.store.root / "calibration" / f"round-{round_number:06d}-{self._calibration_key}.json"
        if path.exists():
            calibration = Calibration.load(path)
        else:
            answers = []
            with self.model_lock:
                load_trainable_state(self.model, self.store.load_weights(self.store.get(round_number)))
                relevances = [calibration_relevance(self.model, self.tokenizer, example, layers=self.layers,
                                                    max_new_tokens=self.settings.max_new_tokens,
                                                    objective=self.settings.objective)
                              for example in self._reference]
            for relevance in relevances:
                answered, _ = self._probe(relevance, round_number, CALIBRATED)
                answers.append({c: s for c, s in answered.items() if s is not None})
            try:
                calibration = Calibration.fit(self.layers, answers, threshold=self.settings.threshold)
            except ValueError as exc:
                raise AttributionError("unavailable", f"cannot calibrate round {round_number}: {exc}; "
                                       "use mode 'paper' instead") from exc
            if set(calibration.clients) != set(self.store.get(round_number).participants):
                return calibration  # fitted without some client: used once, fitted again next time
            path.parent.mkdir(exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(calibration.to_json())
            os.replace(tmp, path)
        self._calibrations[round_number] = calibration
        return calibration

    def _probe(self, relevance: Relevance, round_number: int,
               mode: str) -> tuple[dict[str, torch.Tensor | None], ProbeStats]:
        """Ask every participant of the round for its scores of `relevance`'s probe."""
        record = self.store.get(round_number)
        probe = relevance.probe.without_gradient() if mode == NO_GRADIENT else relevance.probe
        request = probe_to_wire(probe, round_number, self.float_dtype)
        started = time.perf_counter()
        outcome = self.broker.ask({client: _copy(request) for client in record.participants},
                                  self.settings.probe_timeout_s)
        seconds = time.perf_counter() - started
        answers: dict[str, torch.Tensor | None] = {client: None for client in record.participants}
        refused = {client: error.message for client, error in outcome.refused.items()}
        for client, answer in outcome.answers.items():
            try:
                answers[client] = scores_from_wire(answer.scores, probe.num_tokens, len(probe.modules), client)
            except ValueError as exc:
                refused[client] = f"malformed answer: {exc}"
        if not any(s is not None for s in answers.values()):
            detail = "; ".join(f"{c}: {m}" for c, m in sorted(refused.items())) or "none connected or in time"
            raise AttributionError("unavailable", f"no client of round {round_number} answered the probe "
                                   f"({len(record.participants)} asked; {detail})")
        stats = ProbeStats(
            round_trip_s=seconds,
            bytes_per_probe=sum(outcome.bytes_sent.values()) / max(len(outcome.bytes_sent), 1),
            bytes_per_answer=sum(outcome.bytes_received.values()) / max(len(outcome.bytes_received), 1),
            refused=refused)
        return answers, stats


def _copy(request):
    clone = type(request)()
    clone.CopyFrom(request)
    return clone
