"""overhead: attribution time per response against the number of hooked modules.

One small trained federation whose clients allow probes on every block's o_proj and MLP; the
server restarts with more and more modules selected. Times come from each provenance's timings
(generation, relevance, the probe round trip to the clients, combination).
"""

from __future__ import annotations

import statistics
from pathlib import Path

from protoken.data import DOMAINS
from protoken.experiments.plan import Plan
from protoken.experiments.poisoning import heldout_prompts
from protoken.experiments.results import line_plot, write_results
from protoken.experiments.running import TrainedFederation, attribute_all

BLOCKS = (1, 2, 4, 8)  # hooked: the MLP and o_proj of this many last blocks
PHASES = ("generate_s", "relevance_s", "probe_round_trip_s", "combine_s")
ALLOW_ALL = ("--allow-module", r"model\.layers\.\d+\.(mlp|self_attn\.o_proj)", "--allow-module", "lm_head")


def run(plan: Plan, data: Path, out: Path) -> dict[str, Path]:
    domains = DOMAINS[:2]
    prompts = heldout_prompts(data, plan.prompts, domains)[:plan.prompts]
    config = plan.config(len(domains))
    config.federation.rounds = 1
    rows = []
    with TrainedFederation(out / "federation", config, {f"client-{d}": data / d for d in domains},
                           client_args=ALLOW_ALL) as federation:
        for blocks in BLOCKS:
            federation.reconfigure(layers=[f"*.self_attn.o_proj:{blocks}", f"*.mlp:{blocks}"])
            hooked = attribute_all(federation, prompts, rounds=[0], mode="paper", progress=f"overhead [{blocks} blocks]")
            if rows and len(hooked[0]["provenance"]["modules"]) == len(rows[-1]["provenance"]["modules"]):
                break  # the model has no more blocks
            rows += hooked
        config_dict = federation.config.to_dict()
    by_count: dict[int, list[dict]] = {}
    for row in rows:
        by_count.setdefault(len(row["provenance"]["modules"]), []).append(row)
    table = {count: {phase: statistics.median(r["provenance"]["timings"].get(phase, 0.0) for r in group)
                     for phase in PHASES} | {"responses": len(group),
                                             "tokens": statistics.mean(len(r["provenance"]["tokens"]) for r in group)}
             for count, group in sorted(by_count.items())}
    for values in table.values():
        values["total_s"] = sum(values[phase] for phase in PHASES)
    path = write_results(out / "overhead", "overhead", plan, config_dict, {"median_seconds_by_modules": table},
                         records=rows)
    line_plot(out / "overhead" / "time_vs_modules.png",
                   {phase: [(count, values[phase]) for count, values in table.items()] for phase in (*PHASES, "total_s")},
                   title="attribution time per response (median)", xlabel="hooked modules", ylabel="seconds",
              fraction=False)
    return {"overhead": path}
