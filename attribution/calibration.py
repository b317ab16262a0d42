"""Per-client baselines that turn raw scores into "does this client stand out here?".

Raw scores carry a per-client bias that does not depend on the content and grows with the
response length. A `Calibration` is fitted on the scores of a reference set of prompts and
removes it in three steps, for a response (length-normalised: the mean over its tokens) or a
single token:

1. centre each client on its own mean per-token score over the reference responses;
2. subtract the mean of the answering clients, so a shift shared by everyone cancels and what is
   left says how far a client stands above the others;
3. divide by that quantity's typical size for the client on the reference set (its root mean
   square), giving a standard score.

A client stands out when its standard score exceeds `threshold` and no other client's equals it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

DEFAULT_THRESHOLD = 3.0
_SCALE_FLOOR = 1e-12


@dataclass
class ClientBaseline:
    mean: float  # mean per-token score over the reference responses (each response weighted equally)
    response_scale: float  # RMS of the client's relative, length-normalised response score
    token_scale: float  # RMS of its relative per-token score


@dataclass
class Calibration:
    modules: list[str]
    clients: dict[str, ClientBaseline]
    threshold: float = DEFAULT_THRESHOLD
    num_prompts: int = 0

    @classmethod
    def fit(cls, modules: Sequence[str], answers: Sequence[Mapping[str, torch.Tensor]], *,
            threshold: float = DEFAULT_THRESHOLD) -> Calibration:
        """From the answers ([T, L] scores per client) to each of the reference prompts.

        A client needs answers to at least two prompts; the scales need at least two clients.
        """
        totals = [{client: _token_totals(scores, len(modules)) for client, scores in answer.items()}
                  for answer in answers]
        clients = sorted({client for answer in totals for client in answer})
        means: dict[str, float] = {}
        for client in clients:
            per_prompt = [answer[client].mean() for answer in totals if client in answer]
            if len(per_prompt) < 2:
                raise ValueError(f"client {client!r} answered {len(per_prompt)} reference prompt(s); "
                                 "calibration needs at least 2")
            means[client] = float(torch.stack(per_prompt).mean())
        response_squares = {client: [] for client in clients}
        token_squares = {client: [] for client in clients}
        for answer in totals:
            answered = sorted(answer)
            centre = torch.tensor([means[client] for client in answered], dtype=torch.float64)
            tokens = relative(torch.stack([answer[client] for client in answered]), centre)
            responses = relative(torch.stack([answer[client].mean() for client in answered]), centre)
            for i, client in enumerate(answered):
                response_squares[client].append(responses[i] ** 2)
                token_squares[client].append(tokens[i] ** 2)
        baselines = {
            client: ClientBaseline(
                mean=means[client],
                response_scale=_rms(torch.stack(response_squares[client])),
                token_scale=_rms(torch.cat(token_squares[client])),
            )
            for client in clients
        }
        return cls(list(modules), baselines, threshold, len(answers))

    def standard_scores(self, clients: Sequence[str], totals: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Standard scores of the clients' per-token totals [C, T]: (per token [C, T], response [C])."""
        unknown = [client for client in clients if client not in self.clients]
        if unknown:
            raise ValueError(f"clients {unknown} are not in the calibration; calibrate with them first")
        baselines = [self.clients[client] for client in clients]
        centre = torch.tensor([b.mean for b in baselines], dtype=torch.float64)
        token_scale = torch.tensor([b.token_scale for b in baselines], dtype=torch.float64)
        response_scale = torch.tensor([b.response_scale for b in baselines], dtype=torch.float64)
        tokens = relative(totals, centre) / token_scale.unsqueeze(1)
        response = relative(totals.mean(dim=1), centre) / response_scale
        return tokens, response

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        data = json.loads(text)
        clients = {client: ClientBaseline(**values) for client, values in data.pop("clients").items()}
        return cls(clients=clients, **data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        return cls.from_json(Path(path).read_text())


def relative(values: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """Centre each client's row on its baseline, then on the clients' mean (dimension 0)."""
    centred = values - (centre.unsqueeze(1) if values.dim() == 2 else centre)
    return centred - centred.mean(dim=0, keepdim=True)


def _token_totals(scores: torch.Tensor, num_modules: int) -> torch.Tensor:
    if scores.dim() != 2 or scores.shape[1] != num_modules:
        raise ValueError(f"scores must be [tokens, {num_modules}], got {tuple(scores.shape)}")
    return scores.to(torch.float64).sum(dim=1)


def _rms(squares: torch.Tensor) -> float:
    return max(float(squares.mean().sqrt()), _SCALE_FLOOR)
