"""`protoken eval --experiment NAME [--quick] [--out DIR]`."""

from __future__ import annotations

import argparse
import importlib
import os
import time
from pathlib import Path

from protoken.errors import UserError

# experiment name -> module with `run(plan, data, out) -> {result name: results.json path}`; each run
# writes under OUT/<module>: its federation (logs, states) and one directory per result name.
EXPERIMENTS = {
    "backdoor": "backdoor",
    "false-blame": "backdoor",  # read from the backdoor federation: one run writes both
    "domain": "domain",
    "ablation": "ablation",
    "overhead": "overhead",
    "scaling": "scaling",
}


def register(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="reproduce the paper's experiments through the real system")
    parser.add_argument("--experiment", required=True, metavar="NAME", help=", ".join(EXPERIMENTS))
    parser.add_argument("--quick", action="store_true", help="tiny model, small sizes (a smoke test)")
    parser.add_argument("--out", type=Path, default=Path("runs/eval"), help="output directory")
    parser.add_argument("--data", type=Path, default=Path("data"), help="dataset directory (built if missing)")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--local-steps", type=int)
    parser.add_argument("--prompts", type=int, help="held-out prompts attributed per round")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--clients", type=int, help="scaling: clients in the federation")
    parser.add_argument("--per-round", type=int, help="scaling: clients sampled per round")
    parser.set_defaults(func=run_eval)


def check_out(out: Path) -> Path:
    """Create `out` or refuse clearly: it must be a writable directory without an earlier run in it."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the output directory {out}: {exc.strerror}") from exc
    if not os.access(out, os.W_OK):
        raise UserError(f"the output directory {out} is not writable")
    if (out / "federation").exists():
        raise UserError(f"{out} already holds a run of this experiment: choose another --out or remove it")
    return out


def run_eval(args: argparse.Namespace) -> int:
    from protoken.data import build_dataset, dataset_ready
    from protoken.experiments.plan import plan_for

    if args.experiment not in EXPERIMENTS:
        raise UserError(f"unknown experiment {args.experiment!r}; choose one of {', '.join(EXPERIMENTS)}")
    plan = plan_for(args.quick, rounds=args.rounds, local_steps=args.local_steps, prompts=args.prompts,
                    seed=args.seed, clients=args.clients, per_round=args.per_round)
    given = {"--rounds": args.rounds, "--local-steps": args.local_steps, "--prompts": args.prompts,
             "--clients": args.clients, "--per-round": args.per_round}
    for flag, value in given.items():
        if value is not None and value < 1:
            raise UserError(f"{flag} must be at least 1")
    module_name = EXPERIMENTS[args.experiment]
    out = check_out(args.out / module_name)
    if not dataset_ready(args.data):
        print(f"building the dataset in {args.data} ...", flush=True)
        build_dataset(args.data)
    started = time.time()
    module = importlib.import_module(f"protoken.experiments.{module_name}")
    written = module.run(plan, args.data.resolve(), out.resolve())
    for name, path in written.items():
        print(f"{name}: {path}")
    print(f"eval {args.experiment} finished in {time.time() - started:.0f} s")
    return 0
