"""From the clients' scores to provenance: the paper's rule, the calibrated rule, the ablation.

Each answering client i gives scores [T, L]; its per-token score is S_i(t) = Σ_ℓ scores[t, ℓ].

* ``paper``: per token, a softmax over S_i(t); per response, the sum over tokens, a softmax over
  clients and the argmax.
* ``calibrated`` (default): length-normalised, per-client-centred standard scores (see
  `Calibration`); a client is responsible only when it stands out above a threshold.
* ``no-gradient``: the paper's rule on scores of a probe whose weights are all ones
  (`Probe.without_gradient`): the ablation that shows what the gradients contribute.

A tie for the top score is never broken by position: it means no client stands out.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from protoken.attribution.calibration import Calibration
from protoken.attribution.probe import Relevance
from protoken.attribution.provenance import ClientShare, Coverage, Provenance, TokenProvenance

CALIBRATED = "calibrated"
PAPER = "paper"
NO_GRADIENT = "no-gradient"
MODES = (CALIBRATED, PAPER, NO_GRADIENT)


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"scoring mode must be one of {', '.join(MODES)}, got {mode!r}")


@dataclass
class Decision:
    """The outcome of a rule for clients in a fixed order (indices refer to that order)."""

    token_scores: torch.Tensor  # [C, T]
    token_probabilities: torch.Tensor  # [C, T]
    token_choices: list[int | None]
    response_scores: torch.Tensor  # [C]
    response_probabilities: torch.Tensor  # [C]
    response_choice: int | None


def standout(scores: torch.Tensor, threshold: float | None = None) -> int | None:
    """Index of the single highest score; None when the top is shared or not above `threshold`."""
    if scores.numel() == 0:
        return None
    top = scores.max()
    winners = (scores == top).nonzero().flatten()
    if len(winners) != 1 or (threshold is not None and float(top) <= threshold):
        return None
    return int(winners[0])


def decide(clients: Sequence[str], totals: torch.Tensor, mode: str,
           calibration: Calibration | None = None) -> Decision:
    """Apply the rule of `mode` to per-token totals [C, T] of `clients`."""
    check_mode(mode)
    if mode == CALIBRATED:
        if calibration is None:
            raise ValueError("calibrated scoring needs a Calibration (or use mode 'paper')")
        token_scores, response_scores = calibration.standard_scores(clients, totals)
        threshold: float | None = calibration.threshold
    else:
        token_scores, response_scores, threshold = totals, totals.sum(dim=1), None
    return Decision(
        token_scores=token_scores,
        token_probabilities=torch.softmax(token_scores, dim=0),
        token_choices=[standout(token_scores[:, t], threshold) for t in range(totals.shape[1])],
        response_scores=response_scores,
        response_probabilities=torch.softmax(response_scores, dim=0),
        response_choice=standout(response_scores, threshold),
    )


def check_answer(client: str, scores: torch.Tensor, num_tokens: int, num_modules: int) -> None:
    if tuple(scores.shape) != (num_tokens, num_modules):
        raise ValueError(f"client {client!r} answered scores of shape {tuple(scores.shape)}, "
                         f"expected ({num_tokens}, {num_modules})")
    if not torch.isfinite(scores).all():
        raise ValueError(f"client {client!r} answered non-finite scores")


def build_provenance(relevance: Relevance, answers: Mapping[str, torch.Tensor | None],
                     tokenizer: PreTrainedTokenizerBase, *, mode: str = CALIBRATED,
                     calibration: Calibration | None = None, prompt: str | None = None,
                     round: int | None = None, timings: Mapping[str, float] | None = None) -> Provenance:
    """Combine the answers of the clients asked (None: the client did not answer).

    In calibrated mode a client absent from the calibration cannot be compared with the others:
    it is left out and listed in the coverage as uncalibrated.
    """
    started = time.perf_counter()
    modules, num_tokens = relevance.probe.names, relevance.probe.num_tokens
    if mode == CALIBRATED and calibration is not None and calibration.modules != modules:
        raise ValueError(f"the calibration is for modules {calibration.modules}, the probe for {modules}")
    responded = sorted(client for client, scores in answers.items() if scores is not None)
    for client in responded:
        check_answer(client, answers[client], num_tokens, len(modules))
    comparable = calibration.clients if mode == CALIBRATED and calibration is not None else responded
    answered = [client for client in responded if client in comparable]
    totals = torch.stack([answers[client].to(torch.float64).sum(dim=1) for client in answered]) \
        if answered else torch.zeros(0, num_tokens, dtype=torch.float64)
    decision = decide(answered, totals, mode, calibration)

    def shares(probabilities: torch.Tensor, scores: torch.Tensor) -> list[ClientShare]:
        rows = zip(answered, probabilities.tolist(), scores.tolist(), strict=True)
        return [ClientShare(client, probability, score) for client, probability, score in rows]

    def name(choice: int | None) -> str | None:
        return None if choice is None else answered[choice]

    tokens = [
        TokenProvenance(position=t, token_id=token, text=tokenizer.decode([token]),
                        shares=shares(decision.token_probabilities[:, t], decision.token_scores[:, t]),
                        responsible=name(decision.token_choices[t]))
        for t, token in enumerate(relevance.response_ids)
    ]
    asked = sorted(answers)
    return Provenance(
        prompt=tokenizer.decode(relevance.prompt_ids) if prompt is None else prompt,
        response=tokenizer.decode(relevance.response_ids, skip_special_tokens=True),
        mode=mode,
        objective=relevance.objective,
        modules=modules,
        tokens=tokens,
        shares=shares(decision.response_probabilities, decision.response_scores),
        traced=name(decision.response_choice),
        coverage=Coverage(asked=asked, answered=answered, missing=[c for c in asked if c not in responded],
                          uncalibrated=[c for c in responded if c not in answered]),
        timings={**relevance.timings, **(timings or {}), "combine_s": time.perf_counter() - started},
        round=round,
    )
