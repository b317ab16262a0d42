"""`protoken demo`: a real federation of separate processes on loopback, end to end.

One server and one client per domain run as OS processes talking gRPC. The demo builds the data
if needed, trains, then attributes held-out prompts of every domain through the probe protocol
and writes metrics, provenance and an HTML report to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from protoken.attribution import Provenance, write_html
from protoken.config import FederationConfig
from protoken.data import DOMAINS, build_dataset, dataset_ready, load_records
from protoken.errors import UserError
from protoken.launcher import LocalFederation
from protoken.models import DEFAULT_MODEL
from protoken.query import AttributionClient
from protoken.server.state import StateStore


@dataclass
class DemoPlan:
    model: str
    domains: tuple[str, ...]
    rounds: int
    local_steps: int
    batch_size: int
    max_seq_len: int
    heldout_per_domain: int   # held-out examples per domain for the global model's loss
    prompts_per_domain: int   # held-out prompts per domain to attribute
    max_new_tokens: int


def plan_for(args: argparse.Namespace) -> DemoPlan:
    if args.quick:
        plan = DemoPlan(model="tiny-llama", domains=DOMAINS[:3], rounds=2, local_steps=4, batch_size=4,
                        max_seq_len=64, heldout_per_domain=8, prompts_per_domain=1, max_new_tokens=8)
    else:
        plan = DemoPlan(model=DEFAULT_MODEL, domains=DOMAINS, rounds=3, local_steps=8, batch_size=8,
                        max_seq_len=128, heldout_per_domain=16, prompts_per_domain=2, max_new_tokens=32)
    if args.rounds is not None:
        plan.rounds = args.rounds
    if args.local_steps is not None:
        plan.local_steps = args.local_steps
    if plan.rounds < 1 or plan.local_steps < 1:
        raise UserError("--rounds and --local-steps must be at least 1")
    return plan


def demo_config(plan: DemoPlan, data: Path) -> FederationConfig:
    config = FederationConfig()
    fed = config.federation
    fed.model = plan.model
    fed.min_clients = fed.clients_per_round = len(plan.domains)
    fed.rounds = plan.rounds
    fed.serve_after_training = True
    config.training.local_steps = plan.local_steps
    config.training.batch_size = plan.batch_size
    config.training.max_seq_len = plan.max_seq_len
    config.evaluation.heldout_dir = str(data)
    config.evaluation.examples_per_domain = plan.heldout_per_domain
    config.attribution.max_new_tokens = plan.max_new_tokens
    return config


def attribute_heldout(address: str, data: Path, plan: DemoPlan) -> list[dict]:
    """Attribute held-out prompts of every domain through the protocol; correct = traced the domain's client."""
    client = AttributionClient(address)
    rows = []
    try:
        for domain in plan.domains:
            # Prompts past those used for the held-out loss, so they were never trained or evaluated on.
            records = load_records(data / domain / "heldout.jsonl")[-plan.prompts_per_domain:]
            for record in records:
                result = client.attribute(record["prompt"])
                p = result.provenance
                rows.append({"domain": domain, "prompt": record["prompt"], "traced": p.traced,
                             "correct": p.traced == domain, "provenance": p.to_dict(),
                             "probe_bytes": result.probe_bytes, "answer_bytes": result.answer_bytes})
                print(f"attributed a {domain} prompt: traced {p.traced or 'no client stands out'} "
                      f"({p.coverage})", flush=True)
    finally:
        client.close()
    return rows


def print_tables(summary: dict) -> None:
    domains = summary["domains"]
    print("\nround | " + " | ".join(f"train {d:>8}" for d in domains) + " | "
          + " | ".join(f"held-out {d:>8}" for d in domains))
    for r in summary["rounds"]:
        m = r["metrics"]
        train = " | ".join(f"{m.get(f'train_loss/{d}', float('nan')):14.3f}" for d in domains)
        held = " | ".join(f"{m.get(f'heldout_loss/{d}', float('nan')):17.3f}" for d in domains)
        print(f"{r['round']:5d} | {train} | {held}")
    print(f"\n{'prompt domain':<14} traced client")
    for row in summary["attribution"]:
        print(f"{row['domain']:<14} {row['traced'] or '(no client stands out)'}")
    print(f"attribution accuracy (traced client holds the prompt's domain): {summary['attribution_accuracy']:.2f} "
          f"(chance {1 / len(domains):.2f})")


def run_demo(args: argparse.Namespace) -> int:
    plan = plan_for(args)
    out: Path = args.out or Path("runs") / "demo" / time.strftime("%Y%m%d-%H%M%S")
    if (out / "server-state").exists():
        raise UserError(f"{out} already holds a demo run: choose another --out or remove it")
    started = time.time()
    if not dataset_ready(args.data):
        print(f"building the dataset in {args.data} ...", flush=True)
        build_dataset(args.data)
    threads = max(1, (os.cpu_count() or 2) // len(plan.domains))
    federation = LocalFederation(out, demo_config(plan, args.data),
                                 {domain: args.data / domain for domain in plan.domains},
                                 client_threads=threads, echo=True)
    try:
        federation.start_all()
        federation.wait_for_log("server", "serving attribution queries", timeout=3600)
        trained = time.time()
        rows = attribute_heldout(federation.address, args.data, plan)
    finally:
        federation.stop()
    rounds = [r for r in StateStore(federation.state_dir).rounds() if r.round > 0]
    summary = {
        "plan": asdict(plan),
        "domains": list(plan.domains),
        "rounds": [{"round": r.round, "participants": r.participants, "metrics": r.metrics} for r in rounds],
        "attribution": rows,
        "attribution_accuracy": sum(row["correct"] for row in rows) / len(rows),
        "training_seconds": trained - started,
        "wall_seconds": time.time() - started,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    report = out / "attribution.html"
    write_html(report, [Provenance.from_dict(row["provenance"]) for row in rows], title="ProToken demo: provenance of held-out answers")
    print_tables(summary)
    print(f"\ndemo finished in {summary['wall_seconds']:.0f} s; results in {out}/summary.json, report {report}")
    return 0
