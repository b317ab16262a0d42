"""`protoken infra join`: a client that takes its identity from a shared pool of bundles.

Identical replicas started from one command (``docker compose up --scale client=N``,
``protoken infra scale``, the network-namespace launcher) each claim one client bundle by
creating a claim file with ``O_EXCL`` — atomic on one file system, so two replicas never get
the same identity. The claimed bundle's position in the pool picks the replica's data shard.
A replica that restarts under the same claimant name gets its old bundle back; a clean exit
releases the claim.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from protoken.config import check_server_address
from protoken.errors import UserError

from .bundles import CREDENTIAL, BundleFiles
from .shards import write_shard

CLAIM_FILE = ".claimed-by"


@dataclass
class Claim:
    client_id: str
    index: int  # position in the pool, which picks the data shard
    count: int  # size of the pool
    bundle: BundleFiles

    def release(self) -> None:
        (self.bundle.directory / CLAIM_FILE).unlink(missing_ok=True)


def _claimant_of(bundle: Path) -> str | None:
    try:
        return (bundle / CLAIM_FILE).read_text().strip()
    except FileNotFoundError:
        return None


def claim_bundle(clients_dir: Path, claimant: str) -> Claim:
    """Claim a client bundle in `clients_dir` for `claimant` (its own earlier claim first)."""
    if not claimant or "\n" in claimant:
        raise UserError("a claimant name must be one non-empty line")
    try:
        ids = sorted(d.name for d in Path(clients_dir).iterdir()
                     if not d.name.startswith(".") and (d / CREDENTIAL).is_file())
    except OSError as exc:
        raise UserError(f"cannot read client bundles in {clients_dir}: {exc.strerror}") from exc
    if not ids:
        raise UserError(f"{clients_dir} holds no client bundles (issue them with: protoken infra certs)")
    pool = [(index, client_id, Path(clients_dir) / client_id) for index, client_id in enumerate(ids)]
    for index, client_id, directory in pool:
        if _claimant_of(directory) == claimant:
            return Claim(client_id, index, len(ids), BundleFiles(directory))
    for index, client_id, directory in pool:
        try:
            fd = os.open(directory / CLAIM_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        except OSError as exc:
            raise UserError(f"cannot claim {directory}: {exc.strerror}") from exc
        with os.fdopen(fd, "w") as handle:
            handle.write(claimant + "\n")
        return Claim(client_id, index, len(ids), BundleFiles(directory))
    raise UserError(f"all {len(ids)} client bundles in {clients_dir} are claimed: "
                    "issue more with protoken infra certs --count N, or stop a replica")


def client_argv(claim: Claim, server: str, data_dir: Path, state_dir: Path, threads: int | None,
                release_model: bool) -> list[str]:
    """The `protoken client` command line for a claimed bundle (always mutual TLS)."""
    files = claim.bundle
    argv = ["client", "--server", server, "--data", str(data_dir), "--credential", str(files.credential),
            "--state-dir", str(state_dir), "--tls-ca", str(files.ca), "--tls-cert", str(files.cert),
            "--tls-key", str(files.key)]
    return argv + (["--threads", str(threads)] if threads else []) + (["--release-model"] if release_model else [])


def join(clients_dir: Path, server: str, data_root: Path, state_root: Path, claimant: str,
         threads: int | None = None, release_model: bool = False) -> int:
    """Claim a bundle, write this client's data shard, run the client until it stops."""
    from protoken.cli import main

    check_server_address(server)
    claim = claim_bundle(clients_dir, claimant)
    try:
        home = Path(state_root) / claim.client_id
        records = write_shard(data_root, claim.index, claim.count, home / "data")
        print(f"{claimant}: joined as {claim.client_id} (bundle {claim.index + 1} of {claim.count}, "
              f"{records} training records)", flush=True)
        return main(client_argv(claim, server, home / "data", home / "state", threads, release_model))
    finally:
        claim.release()
