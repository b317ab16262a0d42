"""domain: one domain per client, no backdoor; is a held-out prompt traced to its domain's client?

One federation is trained; its per-round accuracy shows what more rounds do. Attribution settings
are then varied on the trained state (the server restarts on it): which modules are hooked, what
relevance differentiates (the token's logit or its log-probability), and whether calibration uses
the built-in reference answers or held-out prompts of every domain with their reference answers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from protoken.data import DOMAINS
from protoken.experiments.plan import Plan
from protoken.experiments.poisoning import heldout_prompts, reference_file
from protoken.experiments.results import bar_plot, line_plot, write_results
from protoken.experiments.running import TrainedFederation, attribute_all
from protoken.experiments.scoring import mark, summary, top_scored

CHANCE = 1 / len(DOMAINS)
MODES = ("calibrated", "paper")
REFERENCE_PER_DOMAIN = 4


@dataclass(frozen=True)
class Variant:
    """Attribution settings tried on the trained federation's last round."""
    layers: tuple[str, ...] = ()        # empty: the method's defaults
    heldout_reference: bool = False     # calibrate on held-out prompts of every domain (else the built-in set)
    objective: str = "logit"


VARIANTS: dict[str, Variant] = {
    "default layers, built-in reference": Variant(),
    "default layers, held-out reference": Variant(heldout_reference=True),
    "log-prob objective, built-in reference": Variant(objective="log-prob"),
    "log-prob objective, held-out reference": Variant(heldout_reference=True, objective="log-prob"),
    "last 2 blocks (o_proj+mlp), held-out reference": Variant(("*.self_attn.o_proj:2", "*.mlp:2"), True),
    "last block mlp only, held-out reference": Variant(("*.mlp",), True),
}


def client_name(domain: str) -> str:
    return f"client-{domain}"


def judge(row: dict) -> bool:
    return row["traced"] == client_name(row["label"])


def run(plan: Plan, data: Path, out: Path) -> dict[str, Path]:
    prompts = heldout_prompts(data, math.ceil(plan.prompts / len(DOMAINS)))
    reference = reference_file(data, out / "reference-prompts.jsonl", REFERENCE_PER_DOMAIN)
    config = plan.config(len(DOMAINS))
    clients = {client_name(d): data / d for d in DOMAINS}
    with TrainedFederation(out / "federation", config, clients) as federation:
        rounds = [r.round for r in federation.rounds()]
        per_round = {mode: mark(attribute_all(federation, prompts, rounds=rounds, mode=mode, progress="domain"), judge)
                     for mode in MODES}
        variants = {}
        for name, variant in VARIANTS.items():
            federation.reconfigure(layers=list(variant.layers), objective=variant.objective,
                                   reference_prompts=str(reference) if variant.heldout_reference else "")
            variants[name] = {mode: mark(attribute_all(federation, prompts, rounds=rounds[-1:], mode=mode,
                                                       progress=f"domain [{name}]"), judge) for mode in MODES}
        round_seconds = {r.round: r.metrics.get("round_seconds") for r in federation.rounds()}
        config_dict = federation.config.to_dict()
    return {"domain": write(out / "domain", plan, config_dict, per_round, variants, round_seconds)}


def write(out: Path, plan: Plan, config: dict, per_round: dict[str, list[dict]],
          variants: dict[str, dict[str, list[dict]]], round_seconds: dict) -> Path:
    figures = {"modes": {mode: summary(rows, CHANCE) for mode, rows in per_round.items()},
               "calibrated_top_scored_per_round": {
                   r: _top_scored_accuracy([x for x in per_round["calibrated"] if x["round"] == r])
                   for r in sorted({x["round"] for x in per_round["calibrated"]})},
               "variants": {name: {mode: {**summary(rows, CHANCE)["overall"], **vars(VARIANTS[name]),
                                          "top_scored_accuracy": _top_scored_accuracy(rows),
                                          "modules": _modules(rows)}
                                   for mode, rows in by_mode.items()} for name, by_mode in variants.items()},
               "chance": CHANCE, "round_seconds": round_seconds}
    records = [{**r, "setting": "per-round (default)"} for rows in per_round.values() for r in rows]
    records += [{**r, "setting": name} for name, by_mode in variants.items() for rows in by_mode.values() for r in rows]
    path = write_results(out, "domain", plan, config, figures, records=records)
    line_plot(out / "accuracy_per_round.png",
                   {mode: [(x["round"], x["accuracy"]) for x in figures["modes"][mode]["per_round"]] for mode in MODES},
                   title="domain: traced client holds the prompt's domain", chance=CHANCE)
    bar_plot(out / "variants.png", {f"{name} [{mode}]": v["accuracy"] for name, by_mode in figures["variants"].items()
                                    for mode, v in by_mode.items()},
             title="domain accuracy by attribution setting (last round)", ylabel="accuracy", chance=CHANCE)
    return path


def _top_scored_accuracy(rows: Sequence[dict]) -> float | None:
    """Accuracy of the highest score alone (no threshold, no abstention)."""
    return sum(top_scored(r) == client_name(r["label"]) for r in rows) / len(rows) if rows else None


def _modules(rows: Sequence[dict]) -> list[str]:
    return rows[0]["provenance"]["modules"] if rows else []
