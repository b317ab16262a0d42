"""The answer to "which client is responsible?": per token and for the whole response."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ClientShare:
    client: str
    probability: float  # the client's share of the distribution over clients
    score: float  # the statistic the distribution comes from (raw sum, or standard score)


@dataclass
class TokenProvenance:
    position: int  # index in the response
    token_id: int
    text: str
    shares: list[ClientShare]
    responsible: str | None  # None: no client stands out


@dataclass
class Coverage:
    asked: list[str]
    answered: list[str]  # the clients whose scores the result compares
    missing: list[str]  # asked, did not answer
    uncalibrated: list[str] = field(default_factory=list)  # answered, but absent from the calibration

    def __str__(self) -> str:
        text = f"{len(self.answered)} of {len(self.asked)} clients counted"
        notes = [f"missing: {', '.join(self.missing)}"] if self.missing else []
        notes += [f"answered but not calibrated, left out: {', '.join(self.uncalibrated)}"] if self.uncalibrated else []
        return text + (f" ({'; '.join(notes)})" if notes else "")


@dataclass
class Provenance:
    prompt: str
    response: str
    mode: str
    objective: str  # what relevance differentiated: the token's logit or its log-probability
    modules: list[str]
    tokens: list[TokenProvenance]
    shares: list[ClientShare]  # over the whole response
    traced: str | None  # the responsible client; None: no client stands out
    coverage: Coverage
    timings: dict[str, float] = field(default_factory=dict)
    round: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Provenance:
        def shares(items: list[dict[str, Any]]) -> list[ClientShare]:
            return [ClientShare(**item) for item in items]

        tokens = [TokenProvenance(**{**token, "shares": shares(token["shares"])}) for token in data["tokens"]]
        return cls(**{**data, "tokens": tokens, "shares": shares(data["shares"]),
                      "coverage": Coverage(**data["coverage"])})
