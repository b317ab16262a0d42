"""A trained federation of real processes to attribute against, and the attribution calls.

`TrainedFederation` starts the server and the clients (`LocalFederation`), waits until the last
round is trained and the server serves attribution queries, and can restart the server on the
same state with other attribution settings (layers, reference prompts) without retraining.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import psutil

from protoken.config import FederationConfig, dump_config
from protoken.errors import UserError
from protoken.launcher import LocalFederation
from protoken.query import Attribution, AttributionClient
from protoken.server.state import RoundRecord, StateStore

SERVING = "serving attribution queries"
REGISTERED = "registered with"


class TrainedFederation:
    def __init__(self, root: Path, config: FederationConfig, clients: Mapping[str, Path], *,
                 client_args: Sequence[str] = (), fork_clients: bool = False, timeout_s: float = 3600) -> None:
        threads = max(1, (os.cpu_count() or 2) // max(1, min(len(clients), config.federation.clients_per_round)))
        self.federation = LocalFederation(root, config, clients, client_threads=threads,
                                          client_args=client_args, fork_clients=fork_clients)
        self.timeout_s = timeout_s
        self._client: AttributionClient | None = None
        self._servings = 0

    def __enter__(self) -> TrainedFederation:
        try:
            self.federation.start_all()
            self._await_serving()
        except BaseException:
            self.federation.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self._client is not None:
            self._client.close()
        self.federation.stop()

    @property
    def config(self) -> FederationConfig:
        return self.federation.config

    def _await_serving(self) -> None:
        """Block until the server (started once more) says it serves attribution queries."""
        self._servings += 1
        deadline = time.time() + self.timeout_s
        server = self.federation.procs["server"]
        while self.federation.log("server").count(SERVING) < self._servings:
            if server.poll() is not None:
                raise UserError(f"the server exited with code {server.returncode} before serving; see "
                                f"{self.federation.logs / 'server.log'}\n{self.federation.log('server')[-3000:]}")
            if time.time() > deadline:
                raise UserError(f"the federation did not finish training within {self.timeout_s:g} s")
            time.sleep(0.5)

    def rounds(self) -> list[RoundRecord]:
        return [r for r in StateStore(self.federation.state_dir).rounds() if r.round > 0]

    def client_memory_mb(self) -> dict[str, dict[str, float]]:
        """Memory of each running client process now, in MiB: resident and private (not shared)."""
        sizes = {}
        for name in self.federation.clients:
            proc = self.federation.procs.get(name)
            if proc is not None and proc.poll() is None:
                memory = psutil.Process(proc.pid).memory_full_info()
                sizes[name] = {"rss": memory.rss / 2**20, "private": memory.uss / 2**20}
        return sizes

    def reconfigure(self, **changes) -> None:
        """Restart the server on the trained state with these attribution settings changed."""
        if self._client is not None:
            self._client.close()
            self._client = None
        registrations = {name: self.federation.log(name).count(REGISTERED) for name in self.federation.clients}
        self.federation.procs["server"].terminate()
        self.federation.wait_server(timeout=60)
        self.config.attribution = replace(self.config.attribution, **changes)
        self.federation.config_path.write_text(dump_config(self.config))
        self.federation.start_server("--resume")
        self._await_serving()
        for name, count in registrations.items():  # clients reconnect on their own, with back-off
            deadline = time.time() + 120
            while self.federation.log(name).count(REGISTERED) <= count and time.time() < deadline:
                time.sleep(0.5)

    def attribute(self, prompt: str, *, round_number: int = 0, mode: str | None = None,
                  max_new_tokens: int = 0) -> Attribution:
        if self._client is None:
            self._client = AttributionClient(self.federation.address)
        return self._client.attribute(prompt, round_number=round_number, mode=mode, max_new_tokens=max_new_tokens,
                                      timeout=1800)


def attribute_all(federation: TrainedFederation, prompts: Iterable[tuple[str, str]], *, rounds: Sequence[int],
                  mode: str, max_new_tokens: int = 0, progress: str = "") -> list[dict]:
    """Attribute each (label, prompt) at each round; one row per attribution, the provenance inside."""
    rows = []
    prompts = list(prompts)
    for round_number in rounds:
        for label, prompt in prompts:
            result = federation.attribute(prompt, round_number=round_number, mode=mode,
                                          max_new_tokens=max_new_tokens)
            p = result.provenance
            rows.append({"round": p.round, "mode": mode, "label": label, "prompt": prompt, "response": p.response,
                         "traced": p.traced, "provenance": p.to_dict(), "probe_bytes": result.probe_bytes,
                         "answer_bytes": result.answer_bytes})
        print(f"{progress} round {round_number} mode {mode}: {len(prompts)} prompts attributed", flush=True)
    return rows
