"""Client credentials: a secret per client; the server keeps only each secret's hash.

The client's credential file is TOML (``client_id``, ``secret``); the server's registry is TOML
with a ``[clients]`` table mapping each client id to the sha256 of its secret. The server derives
a caller's identity from the secret alone, so no message can claim another client's name.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tomllib
from pathlib import Path

from protoken.errors import UserError

METADATA_KEY = "x-protoken-credential"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _read_toml(path: Path, what: str) -> dict:
    try:
        return tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise UserError(f"cannot read {what} {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{what} {path} is not valid TOML: {exc}") from exc


def read_credential(path: Path) -> tuple[str, str]:
    """(client_id, secret) from a client's credential file."""
    data = _read_toml(path, "credential file")
    client_id, secret = data.get("client_id"), data.get("secret")
    if not isinstance(client_id, str) or not isinstance(secret, str) or not secret:
        raise UserError(f"credential file {path} must hold string keys client_id and secret")
    return client_id, secret


class CredentialRegistry:
    """The server's view: which secret hash belongs to which client id."""

    def __init__(self, clients: dict[str, str]) -> None:
        self._by_digest = {digest: client_id for client_id, digest in clients.items()}

    @classmethod
    def load(cls, path: Path) -> "CredentialRegistry":
        clients = _read_toml(path, "credential registry").get("clients", {})
        if not isinstance(clients, dict) or not all(isinstance(v, str) and len(v) == 64 for v in clients.values()):
            raise UserError(f"credential registry {path}: [clients] must map client ids to sha256 hex digests")
        return cls(clients)

    def identify(self, secret: str | None) -> str | None:
        if not secret:
            return None
        return self._by_digest.get(_digest(secret))

    def __len__(self) -> int:
        return len(self._by_digest)


def issue_credential(registry_path: Path, client_id: str, out_path: Path, *, replace: bool = False) -> None:
    """Create a secret for `client_id`: its hash goes into the registry, the secret into `out_path`.

    A registered client is refused unless `replace` (its old secret then stops working).
    """
    if not client_id or not all(c.isalnum() or c in "-_." for c in client_id):
        raise UserError(f"client id {client_id!r} must be non-empty letters, digits, '-', '_' or '.'")
    registry_path = Path(registry_path)
    clients: dict[str, str] = {}
    if registry_path.exists():
        clients = dict(_read_toml(registry_path, "credential registry").get("clients", {}))
    if client_id in clients and not replace:
        raise UserError(f"client {client_id!r} is already in {registry_path}; pass --replace to issue a new "
                        "secret (its old credential stops working)")
    secret = secrets.token_urlsafe(32)
    clients[client_id] = _digest(secret)
    body = "[clients]\n" + "".join(f'"{cid}" = "{digest}"\n' for cid, digest in sorted(clients.items()))
    _write_private(registry_path, body)  # first: a registry that cannot be written leaves no stray secret
    _write_private(Path(out_path), f'client_id = "{client_id}"\nsecret = "{secret}"\n')


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
