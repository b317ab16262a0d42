"""``protoken data build``: the command line of the data pipeline."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from protoken.data.builder import build_dataset


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command (with its ``build`` subcommand) to the main parser."""
    data = subparsers.add_parser("data", help="build the instruction data set from installed packages")
    commands = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    build = commands.add_parser(
        "build",
        help="write <out>/<domain>/{train,heldout}.jsonl and manifest.json",
        description="Turn text shipped in installed packages into instruction pairs in four domains "
        "(medical, finance, math, coding), balanced across domains, with a held-out split.",
    )
    build.add_argument("--out", type=Path, default=Path("data"), help="output directory (default: data)")
    build.add_argument("--seed", type=int, default=0, help="seed of the sampling and split (default: 0)")
    build.add_argument(
        "--train-per-domain", type=int, default=400, help="training pairs per domain (default: 400)"
    )
    build.add_argument(
        "--heldout-per-domain", type=int, default=40, help="held-out pairs per domain (default: 40)"
    )
    build.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    manifest = build_dataset(
        args.out,
        seed=args.seed,
        train_per_domain=args.train_per_domain,
        heldout_per_domain=args.heldout_per_domain,
    )
    for domain, counts in manifest["counts"].items():
        print(f"{domain:8} train {counts['train']:5}  heldout {counts['heldout']:4}")
    print(f"wrote {args.out} in {time.perf_counter() - start:.1f} s ({len(manifest['sources'])} sources)")
    return 0
