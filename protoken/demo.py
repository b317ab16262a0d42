"""`protoken demo`: a real federation of separate processes on loopback, end to end.

One server and one client per domain run as OS processes talking gRPC; the demo builds the data
if needed, issues credentials, trains, then writes per-round metrics to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from protoken.config import FederationConfig, dump_config
from protoken.credentials import issue_credential
from protoken.data import DOMAINS, build_dataset, dataset_ready
from protoken.errors import UserError
from protoken.models import DEFAULT_MODEL
from protoken.server.state import StateStore


@dataclass
class DemoPlan:
    model: str
    domains: tuple[str, ...]
    rounds: int
    local_steps: int
    batch_size: int
    max_seq_len: int
    heldout_per_domain: int


def plan_for(args: argparse.Namespace) -> DemoPlan:
    if args.quick:
        plan = DemoPlan(model="tiny-llama", domains=DOMAINS[:3], rounds=2, local_steps=4, batch_size=4,
                        max_seq_len=64, heldout_per_domain=8)
    else:
        plan = DemoPlan(model=DEFAULT_MODEL, domains=DOMAINS, rounds=3, local_steps=8, batch_size=8,
                        max_seq_len=128, heldout_per_domain=16)
    if args.rounds is not None:
        plan.rounds = args.rounds
    if args.local_steps is not None:
        plan.local_steps = args.local_steps
    if plan.rounds < 1 or plan.local_steps < 1:
        raise UserError("--rounds and --local-steps must be at least 1")
    return plan


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "protoken.cli", *args]


class Federation:
    """The demo's processes: start them, follow the server's log, stop them all."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.logs = out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.processes: list[subprocess.Popen] = []
        self.trained = threading.Event()
        self.server: subprocess.Popen | None = None

    def start_server(self, config_path: Path) -> None:
        self.server = subprocess.Popen(_command("server", "--config", str(config_path)), stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True, env=_env(threads=2))
        self.processes.append(self.server)
        threading.Thread(target=self._follow_server, daemon=True).start()

    def _follow_server(self) -> None:
        with open(self.logs / "server.log", "w") as log:
            for line in self.server.stdout:
                log.write(line)
                log.flush()
                print(line, end="", flush=True)
                if "training finished" in line:
                    self.trained.set()

    def start_client(self, name: str, address: str, data: Path, credential: Path, threads: int) -> None:
        log = open(self.logs / f"client-{name}.log", "w")
        process = subprocess.Popen(
            _command("client", "--server", address, "--data", str(data), "--credential", str(credential),
                     "--state-dir", str(self.out / "clients" / name)),
            stdout=log, stderr=subprocess.STDOUT, env=_env(threads=threads))
        self.processes.append(process)

    def wait_trained(self) -> None:
        while not self.trained.wait(0.5):
            if self.server.poll() is not None:
                raise UserError(f"the server exited with code {self.server.returncode} before training finished; "
                                f"see {self.logs / 'server.log'}")

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def _env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false",
               PYTHONUNBUFFERED="1")
    return env


def write_config(plan: DemoPlan, out: Path, data: Path, port: int) -> Path:
    config = FederationConfig()
    fed = config.federation
    fed.address = f"127.0.0.1:{port}"
    fed.model = plan.model
    fed.min_clients = fed.clients_per_round = len(plan.domains)
    fed.rounds = plan.rounds
    fed.state_dir = str(out / "server-state")
    fed.credentials = str(out / "credentials.toml")
    fed.serve_after_training = True
    config.training.local_steps = plan.local_steps
    config.training.batch_size = plan.batch_size
    config.training.max_seq_len = plan.max_seq_len
    config.evaluation.heldout_dir = str(data)
    config.evaluation.examples_per_domain = plan.heldout_per_domain
    path = out / "federation.toml"
    path.write_text(dump_config(config))
    return path


def summarize(state_dir: Path, plan: DemoPlan, wall_seconds: float) -> dict:
    rounds = [r for r in StateStore(state_dir).rounds() if r.round > 0]
    return {"model": plan.model, "domains": list(plan.domains), "rounds": [
        {"round": r.round, "participants": r.participants, "metrics": r.metrics} for r in rounds],
        "wall_seconds": wall_seconds}


def print_table(summary: dict) -> None:
    domains = summary["domains"]
    print("\nround | " + " | ".join(f"train {d:>8}" for d in domains) + " | "
          + " | ".join(f"held-out {d:>8}" for d in domains))
    for r in summary["rounds"]:
        m = r["metrics"]
        train = " | ".join(f"{m.get(f'train_loss/{d}', float('nan')):14.3f}" for d in domains)
        held = " | ".join(f"{m.get(f'heldout_loss/{d}', float('nan')):17.3f}" for d in domains)
        print(f"{r['round']:5d} | {train} | {held}")


def run_demo(args: argparse.Namespace) -> int:
    plan = plan_for(args)
    out: Path = args.out
    if (out / "server-state").exists():
        raise UserError(f"{out} already holds a demo run: choose another --out or remove it")
    started = time.time()
    if not dataset_ready(args.data):
        print(f"building the dataset in {args.data} ...", flush=True)
        build_dataset(args.data)
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config_path = write_config(plan, out, args.data, port)
    credentials = {}
    for domain in plan.domains:
        credentials[domain] = out / "clients" / f"{domain}.credential"
        issue_credential(out / "credentials.toml", domain, credentials[domain])
    federation = Federation(out)
    threads = max(1, (os.cpu_count() or 2) // len(plan.domains))
    try:
        federation.start_server(config_path)
        for domain in plan.domains:
            federation.start_client(domain, f"127.0.0.1:{port}", args.data / domain, credentials[domain], threads)
        federation.wait_trained()
        summary = summarize(out / "server-state", plan, time.time() - started)
    finally:
        federation.stop()
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    print_table(summary)
    print(f"\ndemo finished in {summary['wall_seconds']:.0f} s; results in {out}/summary.json")
    return 0
