"""Client credentials: a secret per client; the server keeps only each secret's hash.

The client's credential file is TOML (``client_id``, ``secret``); the server's registry is TOML
with a ``[clients]`` table mapping each client id to the sha256 of its secret. The server derives
a caller's identity from the secret alone, so no message can claim another client's name.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import tomllib
from pathlib import Path

from protoken.errors import UserError

METADATA_KEY = "x-protoken-credential"
CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_client_id(client_id: str) -> None:
    """Client ids name files and certificates: 1-64 ASCII letters, digits, '.', '_', '-', not starting with a symbol."""
    if not CLIENT_ID.fullmatch(client_id):
        raise UserError(f"client id {client_id!r} must be 1 to 64 ASCII letters, digits, '.', '_' or '-', "
                        "starting with a letter or digit")


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
        return cls(_registered(path))

    def identify(self, secret: str | None) -> str | None:
        if not secret:
            return None
        return self._by_digest.get(_digest(secret))

    def __len__(self) -> int:
        return len(self._by_digest)


def _registered(path: Path) -> dict[str, str]:
    """The registry's [clients] table, checked: client id -> sha256 hex digest."""
    clients = _read_toml(path, "credential registry").get("clients", {})
    if not isinstance(clients, dict) or not all(isinstance(v, str) and len(v) == 64 for v in clients.values()):
        raise UserError(f"credential registry {path}: [clients] must map client ids to sha256 hex digests")
    return clients


def issue_credential(registry_path: Path, client_id: str, out_path: Path, *, replace: bool = False) -> None:
    """Create a secret for `client_id`: its hash goes into the registry, the secret into `out_path`.

    A registered client is refused unless `replace` (its old secret then stops working).
    """
    check_client_id(client_id)
    registry_path, out_path = Path(registry_path), Path(out_path)
    if out_path.resolve() == registry_path.resolve():
        raise UserError(f"--out {out_path} is the registry itself: the credential needs a file of its own")
    if out_path.is_dir():
        raise UserError(f"--out {out_path} is a directory: name the credential file")
    clients: dict[str, str] = {}
    if registry_path.exists():
        clients = dict(_registered(registry_path))
    if client_id in clients and not replace:
        raise UserError(f"client {client_id!r} is already in {registry_path}; pass --replace to issue a new "
                        "secret (its old credential stops working)")
    secret = secrets.token_urlsafe(32)
    clients[client_id] = _digest(secret)
    body = "[clients]\n" + "".join(f'"{cid}" = "{digest}"\n' for cid, digest in sorted(clients.items()))
    # The secret is written aside first and put in place only once the registry holds its hash, so
    # neither a secret without a registry entry nor a registry entry without a secret is left behind.
    staged = _stage_private(out_path, f'client_id = "{client_id}"\nsecret = "{secret}"\n')
    try:
        os.replace(_stage_private(registry_path, body), registry_path)
        os.replace(staged, out_path)
    finally:
        staged.unlink(missing_ok=True)


def _stage_private(path: Path, text: str) -> Path:
    """Write `text` to a private temporary file beside `path` and return it (removed again on failure)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp
