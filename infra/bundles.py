"""Per-party bundles of TLS material and credentials: one directory holds what one party needs.

    OUT/ca.pem, OUT/ca.key       the federation's CA (the key stays with the operator)
    OUT/server/                  ca.pem, cert.pem, key.pem, credentials.toml (the registry)
    OUT/clients/<id>/            ca.pem, cert.pem, key.pem, credential.toml

Issuing is additive: bundles that already exist are kept (their credentials stay valid), so
running the same command twice, or adding a party later, never invalidates a running one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from protoken.credentials import check_client_id, issue_credential
from protoken.errors import UserError

from .pki import CertificateAuthority, certificate_names, subject_alternative_names

CA_CERT, CA_KEY = "ca.pem", "ca.key"
CERT, KEY, CREDENTIAL, REGISTRY = "cert.pem", "key.pem", "credential.toml", "credentials.toml"
DEFAULT_SERVER_NAMES = ("localhost", "127.0.0.1")


@dataclass
class BundleFiles:
    """Paths of one party's bundle."""

    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / CA_CERT

    @property
    def cert(self) -> Path:
        return self.directory / CERT

    @property
    def key(self) -> Path:
        return self.directory / KEY

    @property
    def credential(self) -> Path:
        return self.directory / CREDENTIAL

    @property
    def registry(self) -> Path:
        return self.directory / REGISTRY


@dataclass
class IssueReport:
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def server_bundle(out: Path) -> BundleFiles:
    return BundleFiles(Path(out) / "server")


def client_bundle(out: Path, client_id: str) -> BundleFiles:
    return BundleFiles(Path(out) / "clients" / client_id)


def counted_ids(count: int) -> list[str]:
    """Client ids for a pool of `count` interchangeable clients: client-000, client-001, ..."""
    if count < 1:
        raise UserError("--count must be at least 1")
    return [f"client-{index:03d}" for index in range(count)]


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _authority(out: Path) -> CertificateAuthority:
    cert, key = out / CA_CERT, out / CA_KEY
    if cert.exists() != key.exists():
        raise UserError(f"{out} holds only one of {CA_CERT} and {CA_KEY}: restore the other or use a new directory")
    if cert.exists():
        return CertificateAuthority.load(cert, key)
    ca = CertificateAuthority.create()
    _write(key, ca.key_pem, private=True)
    _write(cert, ca.cert_pem)
    return ca


def _ensure_server(out: Path, ca: CertificateAuthority, names: list[str] | None, report: IssueReport) -> None:
    files = server_bundle(out)
    if files.cert.exists():
        issued_for = set(certificate_names(files.cert.read_bytes()))
        if names is not None and set(names) != issued_for:
            raise UserError(f"{files.cert} was issued for {', '.join(sorted(issued_for))}; "
                            f"remove {files.directory} to issue it for {', '.join(names)}")
        report.kept.append("server")
        return
    pair = ca.issue_server(list(names or DEFAULT_SERVER_NAMES))
    _write(files.key, pair.key_pem, private=True)
    _write(files.cert, pair.cert_pem)
    _write(files.ca, ca.cert_pem)
    report.created.append("server")


def _ensure_client(out: Path, ca: CertificateAuthority, client_id: str, report: IssueReport) -> None:
    files = client_bundle(out, client_id)
    if files.credential.exists():
        report.kept.append(client_id)
        return
    pair = ca.issue_client(client_id)
    # Build the bundle beside its final place and rename it in, so a crash never leaves a half
    # bundle that a claiming client could pick up.
    files.directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{client_id}.", dir=files.directory.parent))
    staging.chmod(0o755)  # the directory is public; its key and credential files are not
    try:
        partial = BundleFiles(staging)
        _write(partial.key, pair.key_pem, private=True)
        _write(partial.cert, pair.cert_pem)
        _write(partial.ca, ca.cert_pem)
        # replace: a client in the registry without a bundle lost its secret in an interrupted run
        issue_credential(server_bundle(out).registry, client_id, partial.credential, replace=True)
        if files.directory.exists():
            shutil.rmtree(files.directory)  # a leftover without a credential: not a usable bundle
        os.rename(staging, files.directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report.created.append(client_id)


def issue_bundles(out: Path, client_ids: list[str], server_names: list[str] | None = None) -> IssueReport:
    """Make sure OUT holds a CA, a server bundle and a bundle for every client id.

    `server_names` (host names and IP addresses clients dial) apply when the server bundle is
    created; given for an existing one, they must match what it was issued for.
    """
    for client_id in client_ids:
        check_client_id(client_id)
    if len(set(client_ids)) != len(client_ids):
        raise UserError("client ids must be distinct")
    if server_names is not None:
        if not server_names:
            raise UserError("a server certificate needs at least one host name or IP address")
        subject_alternative_names(server_names)  # refuses a bad name before anything is written
    out = Path(out)
    report = IssueReport()
    ca = _authority(out)
    _ensure_server(out, ca, server_names, report)
    for client_id in client_ids:
        _ensure_client(out, ca, client_id, report)
    return report
