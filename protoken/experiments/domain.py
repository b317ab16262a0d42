"""domain: one domain per client, no backdoor; is a held-out prompt traced to its domain's client?

One federation is trained; its per-round accuracy shows what more rounds do. Attribution settings
are then varied on the trained state (the server restarts on it): which modules are hooked, and
whether calibration uses generic requests or held-out prompts of every domain.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from protoken.config import AttributionSection
from protoken.data import DOMAINS
from protoken.experiments.plan import Plan
from protoken.experiments.poisoning import heldout_prompts, reference_file
from protoken.experiments.results import bar_plot, line_plot, write_results
from protoken.experiments.running import TrainedFederation, attribute_all
from protoken.experiments.scoring import mark, summary, top_scored

CHANCE = 1 / len(DOMAINS)
MODES = ("calibrated", "paper")
REFERENCE_PER_DOMAIN = 4

# name -> (layer rules, calibrate on held-out prompts of every domain)
VARIANTS: dict[str, tuple[list[str], bool]] = {
    "default layers, generic reference": ([], False),
    "default layers, held-out reference": ([], True),
    "last 2 blocks (o_proj+mlp)": (["*.self_attn.o_proj:2", "*.mlp:2"], True),
    "last block mlp only": (["*.mlp"], True),
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
        for name, (layers, heldout_reference) in VARIANTS.items():
            federation.reconfigure(AttributionSection(**{**vars(federation.config.attribution), "layers": layers,
                                                         "reference_prompts": str(reference) if heldout_reference else ""}))
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
               "variants": {name: {mode: {**summary(rows, CHANCE)["overall"], "layers": VARIANTS[name][0],
                                          "top_scored_accuracy": _top_scored_accuracy(rows),
                                          "modules": _modules(rows), "heldout_reference": VARIANTS[name][1]}
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
