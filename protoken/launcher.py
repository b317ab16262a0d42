"""A federation of real processes on this machine: one server and a client per party.

The demo, the evaluation harness, the benchmarks and the end-to-end tests all start their
federations through this, so every one of them exercises the real processes and the real wire.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from protoken.config import FederationConfig, dump_config
from protoken.credentials import issue_credential
from protoken.errors import UserError
from protoken.zygote import ForkedProcess, Zygote


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false",
               PYTHONUNBUFFERED="1")
    return env


class LocalFederation:
    """Processes of one federation under `root` (config, credentials, logs, states).

    `config.federation.address`, `state_dir` and `credentials` are set here; each client's
    data directory is given in `clients`, and `client_args` are added to every client's command.
    Server output goes to ``logs/server.log`` and, with `echo`, to standard output as well. With
    `fork_clients`, clients are forked from one zygote (`protoken.zygote`) and share its imported
    libraries' memory, for federations of many clients on one machine.
    """

    def __init__(self, root: Path, config: FederationConfig, clients: Mapping[str, Path], *,
                 client_threads: int = 1, server_threads: int = 2, echo: bool = False,
                 client_args: Sequence[str] = (), fork_clients: bool = False) -> None:
        self.root = Path(root)
        self.logs = self.root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.clients = dict(clients)
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.config = config
        fed = config.federation
        fed.address = self.address
        fed.state_dir = str(self.root / "server-state")
        fed.credentials = str(self.root / "credentials.toml")
        self.credentials = {}
        for name in self.clients:
            self.credentials[name] = self.root / "credentials" / f"{name}.credential"
            issue_credential(Path(fed.credentials), name, self.credentials[name])
        self.config_path = self.root / "federation.toml"
        self.config_path.write_text(dump_config(config))
        self.client_threads = client_threads
        self.server_threads = server_threads
        self.echo = echo
        self.client_args = list(client_args)
        self.procs: dict[str, subprocess.Popen | ForkedProcess] = {}
        self.fork_clients = fork_clients
        self._zygote: Zygote | None = None

    @property
    def state_dir(self) -> Path:
        return Path(self.config.federation.state_dir)

    def client_state_dir(self, name: str) -> Path:
        return self.root / "clients" / name

    def _spawn(self, name: str, args: list[str], threads: int) -> subprocess.Popen | ForkedProcess:
        if name != "server" and self.fork_clients:
            if self._zygote is None:
                self._zygote = Zygote(process_env(threads))
            self.procs[name] = self._zygote.start(args, self.logs / f"{name}.log")
            return self.procs[name]
        log = open(self.logs / f"{name}.log", "a")
        command = [sys.executable, "-m", "protoken.cli", *args]
        if name == "server" and self.echo:
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    env=process_env(threads))
            threading.Thread(target=self._tee, args=(proc, log), daemon=True).start()
        else:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=process_env(threads))
        self.procs[name] = proc
        return proc

    @staticmethod
    def _tee(proc: subprocess.Popen, log) -> None:
        for line in proc.stdout:
            log.write(line)
            log.flush()
            print(line, end="", flush=True)

    def start_server(self, *extra: str) -> subprocess.Popen | ForkedProcess:
        return self._spawn("server", ["server", "--config", str(self.config_path), *extra], self.server_threads)

    def start_client(self, name: str, *, credential: Path | None = None, data: Path | None = None,
                     extra: Sequence[str] = ()) -> subprocess.Popen | ForkedProcess:
        """Start client `name`; `extra` command-line arguments come after the federation's `client_args`."""
        return self._spawn(name, ["client", "--server", self.address, "--data", str(data or self.clients[name]),
                                  "--credential", str(credential or self.credentials[name]),
                                  "--state-dir", str(self.client_state_dir(name)), *self.client_args, *extra],
                           self.client_threads)

    def start_all(self) -> None:
        self.start_server()
        for name in self.clients:
            self.start_client(name)

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text() if path.exists() else ""

    def wait_for_log(self, name: str, text: str, timeout: float = 600) -> None:
        """Block until process `name` logs `text`; UserError if it exits first or time runs out."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.log(name):
                return
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is not None:
                time.sleep(0.2)  # let the log writer catch up
                if text in self.log(name):
                    return
                raise UserError(f"{name} exited with code {proc.returncode} before logging {text!r}; "
                                f"see {self.logs / (name + '.log')}\n{self.log(name)[-3000:]}")
            time.sleep(0.2)
        raise UserError(f"{name} did not log {text!r} within {timeout:g} s; see {self.logs / (name + '.log')}")

    def wait_server(self, timeout: float = 600) -> int:
        try:
            return self.procs["server"].wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise UserError(f"the server is still running after {timeout:g} s") from None

    def stop(self) -> None:
        """Terminate every process (clients first), killing those that do not exit."""
        for name in [n for n in self.procs if n != "server"] + ["server"]:
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._zygote is not None:
            self._zygote.close()
            self._zygote = None

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        proc.kill()
        proc.wait()
