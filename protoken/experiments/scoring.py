"""Judging attributions: which rows count, whether each is right, and the figures over them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

Judge = Callable[[dict], bool]


def mark(rows: Iterable[dict], judge: Judge) -> list[dict]:
    """Each row with ``correct`` set by `judge`."""
    return [{**row, "correct": bool(judge(row))} for row in rows]


def summary(rows: Sequence[dict], chance: float | None) -> dict:
    """Per round and overall: attributions counted, correct ones, accuracy (None when none counted)."""
    def figures(subset: Sequence[dict]) -> dict:
        correct = sum(row["correct"] for row in subset)
        return {"n": len(subset), "correct": correct, "accuracy": correct / len(subset) if subset else None,
                "abstained": sum(row["traced"] is None for row in subset)}

    rounds = sorted({row["round"] for row in rows})
    return {"per_round": [{"round": r, **figures([row for row in rows if row["round"] == r])} for r in rounds],
            "overall": figures(rows), "chance": chance}


def shares_of(row: dict) -> dict[str, float]:
    """The response-level probability of each client in a row's provenance."""
    return {share["client"]: share["probability"] for share in row["provenance"]["shares"]}


def top_scored(row: dict) -> str | None:
    """The client with the highest response-level score, with no threshold (None on a tie or no answer).

    For calibrated rows this shows what the standard scores rank first even where the rule abstains.
    """
    shares = row["provenance"]["shares"]
    if not shares:
        return None
    best = max(share["score"] for share in shares)
    leaders = [share["client"] for share in shares if share["score"] == best]
    return leaders[0] if len(leaders) == 1 else None
