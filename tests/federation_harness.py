"""Helpers for tests that run real server and client processes on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from protoken.config import FederationConfig, dump_config
from protoken.credentials import issue_credential

TOPICS = {
    "medical": ("What does the code {i} describe?", "Code {i} describes a condition of the heart and lungs."),
    "finance": ("Explain the ratio number {i}.", "Ratio {i} divides net income by total assets."),
    "math": ("What is {i} plus {i}?", "The sum of {i} and {i} is {j}."),
}


def write_dataset(root: Path, names=("medical", "finance", "math"), per_client: int = 12) -> Path:
    for index, name in enumerate(names):
        prompt, response = TOPICS[list(TOPICS)[index % len(TOPICS)]]
        records = [{"prompt": prompt.format(i=i), "response": response.format(i=i, j=2 * i), "domain": name,
                    "source": "test", "license": "CC0"} for i in range(per_client + 3 * index)]
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        (root / name / "heldout.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[:4]))
    return root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def env() -> dict[str, str]:
    e = dict(os.environ)
    e.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
    return e


class Federation:
    """A server and clients as subprocesses in `root`; everything is killed on close()."""

    def __init__(self, root: Path, clients=("medical", "finance", "math"), **settings) -> None:
        self.root = root
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.data = write_dataset(root / "data", clients)
        self.clients = list(clients)
        self.credentials = {}
        for name in clients:
            self.credentials[name] = root / f"{name}.credential"
            issue_credential(root / "credentials.toml", name, self.credentials[name])
        config = FederationConfig()
        fed = config.federation
        fed.address, fed.model = self.address, "tiny-llama"
        fed.min_clients = fed.clients_per_round = len(clients)
        fed.rounds = 2
        fed.state_dir = str(root / "server-state")
        fed.credentials = str(root / "credentials.toml")
        fed.round_timeout_s = 120
        fed.wait_timeout_s = 120
        config.training.local_steps = 2
        config.training.batch_size = 2
        config.training.max_seq_len = 48
        config.lora.rank = 4
        config.evaluation.heldout_dir = str(self.data)
        config.evaluation.examples_per_domain = 2
        for dotted, value in settings.items():
            section, key = dotted.split("__")
            setattr(getattr(config, section), key, value)
        self.config = config
        self.config_path = root / "federation.toml"
        self.config_path.write_text(dump_config(config))
        self.procs: dict[str, subprocess.Popen] = {}

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "a")
        proc = subprocess.Popen([sys.executable, "-m", "protoken.cli", *args], stdout=log,
                                stderr=subprocess.STDOUT, env=env())
        self.procs[name] = proc
        return proc

    def start_server(self, *extra: str) -> subprocess.Popen:
        return self._spawn("server", ["server", "--config", str(self.config_path), *extra])

    def start_client(self, name: str, credential: Path | None = None, data: Path | None = None) -> subprocess.Popen:
        return self._spawn(name, ["client", "--server", self.address, "--data", str(data or self.data / name),
                                  "--credential", str(credential or self.credentials[name]),
                                  "--state-dir", str(self.root / "clients" / name)])

    def start_all(self) -> None:
        self.start_server()
        for name in self.clients:
            self.start_client(name)

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text() if path.exists() else ""

    def wait_for_log(self, name: str, text: str, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.log(name):
                return
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is not None and text not in self.log(name):
                raise AssertionError(f"{name} exited ({proc.returncode}) before logging {text!r}:\n{self.log(name)}")
            time.sleep(0.2)
        raise AssertionError(f"{name} did not log {text!r} within {timeout} s:\n{self.log(name)}")

    def wait_server(self, timeout: float = 300) -> int:
        try:
            return self.procs["server"].wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"server still running after {timeout} s:\n{self.log('server')}")

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs.values():
            proc.wait(timeout=30)
