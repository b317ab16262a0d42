"""scaling: many clients, a few sampled per round, a malicious fraction (the paper: 55, 10 per round).

Clients run with ``--release-model``, so one that is not training or answering a probe holds no
model, and are forked from one zygote (`protoken.zygote`), so they share the imported libraries.
A sentinel response at round r can only be traced to a malicious client when one took part in
round r (attribution asks that round's clients), so accuracy is reported over those rounds, and
the rounds without one are listed apart.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from protoken.experiments.backdoor import attribute_backdoor, backdoor_rows, backdoor_setup, start_backdoor
from protoken.experiments.plan import Plan
from protoken.experiments.results import line_plot, write_results
from protoken.experiments.scoring import summary

DEFAULT_CLIENTS, DEFAULT_PER_ROUND, MALICIOUS_FRACTION = 55, 10, 0.2
QUICK_CLIENTS, QUICK_PER_ROUND = 8, 3


def sizes(plan: Plan) -> tuple[int, int, int]:
    """(clients, per round, malicious) for the plan."""
    quick = plan.model.startswith("tiny")
    clients = plan.clients or (QUICK_CLIENTS if quick else DEFAULT_CLIENTS)
    per_round = min(clients, plan.per_round or (QUICK_PER_ROUND if quick else DEFAULT_PER_ROUND))
    return clients, per_round, max(1, round(MALICIOUS_FRACTION * clients))


def run(plan: Plan, data: Path, out: Path) -> dict[str, Path]:
    clients, per_round, malicious = sizes(plan)
    setup = backdoor_setup(plan, data, out, clients=clients, malicious=malicious)
    with start_backdoor(plan, setup, out / "federation", per_round=per_round,
                        client_args=("--release-model",), fork_clients=True) as federation:
        records = federation.rounds()
        idle = federation.client_memory_mb()  # after training: every client idle, its model released
        rows = attribute_backdoor(federation, setup, [r.round for r in records], modes=("paper",))
        config = federation.config.to_dict()
    participants = {r.round: r.participants for r in records}
    with_malicious = {r for r, names in participants.items() if setup.malicious & set(names)}
    counted = backdoor_rows(rows, setup.malicious)
    chance = malicious / clients
    figures = {"clients": clients, "per_round": per_round, "malicious": sorted(setup.malicious),
               "accuracy": summary([r for r in counted if r["round"] in with_malicious], chance),
               "rounds_without_malicious": sorted(set(participants) - with_malicious),
               "sentinel_rows_in_rounds_without_malicious": sum(r["round"] not in with_malicious for r in counted),
               "participants": participants,
               "round_seconds": {r.round: r.metrics.get("round_seconds") for r in records},
               "idle_client_memory_mb": {
                   kind: {"median": statistics.median(m[kind] for m in idle.values()),
                          "max": max(m[kind] for m in idle.values())} for kind in ("rss", "private")},
               "idle_client_memory_mb_each": idle}
    path = write_results(out / "scaling", "scaling", plan, config, figures, records=counted)
    line_plot(out / "scaling" / "accuracy_per_round.png",
              {"paper rule": [(x["round"], x["accuracy"]) for x in figures["accuracy"]["per_round"]]},
              title=f"scaling: {clients} clients, {per_round} per round", chance=chance)
    line_plot(out / "scaling" / "round_seconds.png", {"round": sorted(figures["round_seconds"].items())},
              title="time per round", ylabel="seconds", fraction=False)
    return {"scaling": path}
