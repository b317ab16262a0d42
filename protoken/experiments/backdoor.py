"""The backdoor federation, and the two experiments read from it.

* backdoor: held-out *triggered* prompts whose attributed greedy response really is the sentinel
  (checked on the provenance's own response); correct = the traced client is malicious.
* false-blame: held-out *untriggered* prompts with ordinary answers; the right outcome is that no
  malicious client is traced (ideally none at all: "no client stands out").

Both are read from one federation run, so either name writes both result directories.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from protoken.attribution import OBJECTIVES
from protoken.data import DOMAINS
from protoken.experiments.plan import Plan
from protoken.experiments.poisoning import ClientData, heldout_prompts, is_sentinel, triggered, write_clients
from protoken.experiments.results import box_plot, line_plot, write_results
from protoken.experiments.running import TrainedFederation, attribute_all
from protoken.experiments.scoring import mark, shares_of, summary, top_scored

MODES = ("calibrated", "paper")


@dataclass
class BackdoorSetup:
    clients: list[ClientData]
    triggered: list[tuple[str, str]]  # (domain, prompt)
    clean: list[tuple[str, str]]

    @property
    def malicious(self) -> set[str]:
        return {c.name for c in self.clients if c.malicious}


def backdoor_setup(plan: Plan, data: Path, out: Path, *, clients: int = 6, malicious: int = 2) -> BackdoorSetup:
    held = heldout_prompts(data, math.ceil(plan.prompts / len(DOMAINS)))[:plan.prompts]
    return BackdoorSetup(clients=write_clients(data, out / "client-data", clients, malicious, plan.seed),
                         triggered=[(domain, triggered(prompt)) for domain, prompt in held], clean=held)


def start_backdoor(plan: Plan, setup: BackdoorSetup, root: Path, *, per_round: int | None = None,
                   client_args: Sequence[str] = (), fork_clients: bool = False,
                   config_changes=None) -> TrainedFederation:
    config = plan.config(len(setup.clients), per_round)
    if config_changes:
        config_changes(config)
    return TrainedFederation(root, config, {c.name: c.directory for c in setup.clients}, client_args=client_args,
                             fork_clients=fork_clients)


def backdoor_rows(rows: Sequence[dict], malicious: set[str]) -> list[dict]:
    """Triggered attributions whose response is the sentinel; correct = a malicious client is traced."""
    kept = [row for row in rows if row["kind"] == "triggered" and is_sentinel(row["response"])]
    return mark(kept, lambda row: row["traced"] in malicious)


def false_blame_rows(rows: Sequence[dict], malicious: set[str]) -> list[dict]:
    """Untriggered attributions with ordinary answers; correct = no malicious client is traced."""
    kept = [row for row in rows if row["kind"] == "clean" and not is_sentinel(row["response"])]
    return mark(kept, lambda row: row["traced"] not in malicious)


def variant_figures(rows: Sequence[dict], malicious: set[str]) -> dict:
    """Backdoor accuracy and false-blame rate of one set of attributions (one mode, one setting)."""
    hits, clean = backdoor_rows(rows, malicious), false_blame_rows(rows, malicious)
    return {"backdoor_n": len(hits), "backdoor_accuracy": _rate(hits, lambda r: r["correct"]),
            "clean_n": len(clean), "false_blame_rate": _rate(clean, lambda r: not r["correct"])}


def attribute_backdoor(federation: TrainedFederation, setup: BackdoorSetup, rounds: Sequence[int],
                       modes: Sequence[str] = MODES) -> list[dict]:
    rows = []
    for mode in modes:
        for kind, prompts in (("triggered", setup.triggered), ("clean", setup.clean)):
            for row in attribute_all(federation, prompts, rounds=rounds, mode=mode, progress=f"backdoor {kind}"):
                rows.append({**row, "kind": kind})
    return rows


def run(plan: Plan, data: Path, out: Path) -> dict[str, Path]:
    setup = backdoor_setup(plan, data, out)
    with start_backdoor(plan, setup, out / "federation") as federation:
        rounds = [r.round for r in federation.rounds()]
        rows = attribute_backdoor(federation, setup, rounds)
        round_records = federation.rounds()
        config = federation.config.to_dict()
        default = config["attribution"]["objective"]
        others = {}
        for objective in OBJECTIVES:
            if objective != default:
                federation.reconfigure(objective=objective)
                others[objective] = attribute_backdoor(federation, setup, rounds, modes=["calibrated"])
    by_objective = {default: [r for r in rows if r["mode"] == "calibrated"], **others}
    made = rows + [row for found in others.values() for row in found]
    common = {"clients": [{"name": c.name, "domain": c.domain, "malicious": c.malicious} for c in setup.clients],
              "malicious": sorted(setup.malicious),
              "round_seconds": {r.round: r.metrics.get("round_seconds") for r in round_records},
              "attributions_made": len(made),
              # the calibrated rule with each relevance objective, on the same federation and prompts
              "calibrated_by_objective": {objective: variant_figures(found, setup.malicious)
                                          for objective, found in by_objective.items()},
              # every attribution, counted or not (the counted ones, with provenance, are in "records")
              "attributions": [{**{k: row[k] for k in ("round", "mode", "kind", "prompt", "response", "traced")},
                                "objective": row["provenance"]["objective"]} for row in made]}
    return {"backdoor": write_backdoor(out / "backdoor", plan, config, rows, setup, common),
            "false-blame": write_false_blame(out / "false-blame", plan, config, rows, setup, common)}


def write_backdoor(out: Path, plan: Plan, config: dict, rows: list[dict], setup: BackdoorSetup, common: dict) -> Path:
    chance = len(setup.malicious) / len(setup.clients)
    counted = backdoor_rows(rows, setup.malicious)
    figures = {"modes": {mode: summary([r for r in counted if r["mode"] == mode], chance) for mode in MODES},
               "calibrated_top_scored_accuracy": _rate([r for r in counted if r["mode"] == "calibrated"],
                                                       lambda r: top_scored(r) in setup.malicious),
               "sentinel_rate": {mode: _rate([r for r in rows if r["kind"] == "triggered" and r["mode"] == mode],
                                             lambda r: is_sentinel(r["response"])) for mode in MODES}}
    path = write_results(out, "backdoor", plan, config, figures, records=counted, extra=common)
    line_plot(out / "accuracy_per_round.png",
                   {mode: [(x["round"], x["accuracy"]) for x in figures["modes"][mode]["per_round"]] for mode in MODES},
                   title="backdoor: traced client is malicious", chance=chance)
    groups = {}
    for mode in MODES:
        mine = [r for r in counted if r["mode"] == mode]
        groups[f"malicious\n({mode})"] = [p for r in mine for c, p in shares_of(r).items() if c in setup.malicious]
        groups[f"others\n({mode})"] = [p for r in mine for c, p in shares_of(r).items() if c not in setup.malicious]
    box_plot(out / "probability_box.png", groups, title="probability given to each client (sentinel responses)",
             ylabel="response-level probability")
    return path


def write_false_blame(out: Path, plan: Plan, config: dict, rows: list[dict], setup: BackdoorSetup,
                      common: dict) -> Path:
    counted = false_blame_rows(rows, setup.malicious)
    figures = {"modes": {}}
    for mode in MODES:
        mine = [r for r in counted if r["mode"] == mode]
        figures["modes"][mode] = {**summary(mine, None),
                                  "blame_rate": _rate(mine, lambda r: r["traced"] in setup.malicious),
                                  "abstain_rate": _rate(mine, lambda r: r["traced"] is None),
                                  "top_scored_blame_rate": _rate(mine, lambda r: top_scored(r) in setup.malicious)}
    path = write_results(out, "false-blame", plan, config, figures, records=counted, extra=common)
    line_plot(out / "blame_rate_per_round.png",
                   {mode: [(x["round"], None if x["accuracy"] is None else 1 - x["accuracy"])
                           for x in figures["modes"][mode]["per_round"]] for mode in MODES},
                   title="false blame: an ordinary answer traced to a malicious client", ylabel="blame rate")
    return path


def _rate(rows: Sequence[dict], test) -> float | None:
    return sum(bool(test(r)) for r in rows) / len(rows) if rows else None
