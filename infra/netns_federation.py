"""`protoken infra netns up|down`: a federation whose server and clients each run in their own namespace.

The server listens on its namespace's address; every client claims a bundle (``infra join``)
and dials the server across the bridge, through its shaped link, with mutual TLS. A run's
files live in ``WORKDIR/<prefix>/`` (bundles, logs, server state, client state) and stay
after ``down`` for inspection; the lab itself is recorded in ``WORKDIR/netns.json``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from protoken.errors import UserError

from .bundles import counted_ids, issue_bundles, server_bundle
from .netns import STATE_FILE, Lab, create_lab, destroy_lab, spawn
from .shaping import Shaping
from .shards import domain_files


@dataclass
class FederationLayout:
    """Where one run keeps its files."""

    root: Path

    @property
    def bundles(self) -> Path:
        return self.root / "bundles"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def server_state(self) -> Path:
        return self.root / "server-state"

    @property
    def client_state(self) -> Path:
        return self.root / "clients"


@dataclass
class NetnsFederation:
    clients: int
    data: Path
    config: Path | None
    workdir: Path
    shaping: Shaping
    port: int = 50051
    threads: int = 1  # torch threads per client: many clients share few cores
    release_model: bool = False  # clients hold the model only while they work


def _env(threads: int | None) -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false",
               MALLOC_ARENA_MAX="2")  # fewer malloc arenas: idle clients stay small
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def _protoken(*args: str) -> list[str]:
    return [sys.executable, "-m", "protoken.cli", *args]


def server_command(plan: NetnsFederation, layout: FederationLayout) -> list[str]:
    tls = server_bundle(layout.bundles)
    config = ["--config", str(plan.config.resolve())] if plan.config else []
    return _protoken("server", *config, "--address", f"0.0.0.0:{plan.port}",
                     "--state-dir", str(layout.server_state),
                     "--set", f'federation.credentials="{tls.registry}"', "--set", "tls.enabled=true",
                     "--set", f'tls.ca="{tls.ca}"', "--set", f'tls.cert="{tls.cert}"', "--set", f'tls.key="{tls.key}"')


def client_command(plan: NetnsFederation, layout: FederationLayout, server: str, claimant: str) -> list[str]:
    return _protoken("infra", "join", "--bundles", str(layout.bundles / "clients"), "--server", server,
                     "--data", str(plan.data.resolve()), "--state", str(layout.client_state),
                     "--claimant", claimant, "--threads", str(plan.threads),
                     *(["--release-model"] if plan.release_model else []))


def up(plan: NetnsFederation) -> Lab:
    """Create the lab and start the server and clients in it; returns the recorded lab."""
    from protoken.config import load_config  # imports torch: only where it is needed

    domain_files(plan.data)  # bad input fails here, before anything is created
    wanted = load_config(plan.config).federation.min_clients
    if wanted > plan.clients:
        raise UserError(f"the server would wait for federation.min_clients={wanted} clients; "
                        f"start at least that many (--clients {wanted})")
    lab = create_lab(plan.workdir, plan.clients, plan.shaping)
    try:
        layout = FederationLayout(plan.workdir.resolve() / lab.prefix)
        layout.logs.mkdir(parents=True)
        server = f"{lab.node('server').address}:{plan.port}"
        issue_bundles(layout.bundles, counted_ids(plan.clients), [lab.node("server").address, "localhost"])
        lab.info = {"server": server, "run_dir": str(layout.root), "shaping": plan.shaping.describe()}
        lab.save()
        spawn(lab, "server", server_command(plan, layout), layout.logs / "server.log", _env(None))
        for node in lab.nodes[1:]:
            spawn(lab, node.role, client_command(plan, layout, server, f"{lab.prefix}-{node.role}"),
                  layout.logs / f"{node.role}.log", _env(plan.threads))
    except BaseException:
        destroy_lab(lab)
        raise
    return lab


def down(workdir: Path) -> Lab:
    """Stop and remove everything the lab recorded in `workdir` made."""
    lab = Lab.load(workdir / STATE_FILE)
    destroy_lab(lab)
    return lab
