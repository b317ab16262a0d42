"""gRPC transport credentials from PEM files (TLS, mutual when the server requires it)."""

from __future__ import annotations

from pathlib import Path

import grpc

from protoken.errors import UserError


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read the {what} {path}: {exc.strerror}") from exc


def server_credentials(tls) -> grpc.ServerCredentials | None:
    """None for plaintext; otherwise the server's certificate, and the CA clients must chain to."""
    if not tls.enabled:
        return None
    if not (tls.cert and tls.key):
        raise UserError("tls.enabled needs tls.cert and tls.key")
    if tls.require_client_cert and not tls.ca:
        raise UserError("tls.require_client_cert needs tls.ca, the CA that signs client certificates")
    root = _read(tls.ca, "CA certificate") if tls.ca else None
    return grpc.ssl_server_credentials([(_read(tls.key, "server key"), _read(tls.cert, "server certificate"))],
                                       root_certificates=root, require_client_auth=tls.require_client_cert)


def channel_credentials(ca: str | None, cert: str | None, key: str | None) -> grpc.ChannelCredentials | None:
    """None for plaintext (no CA given); otherwise TLS, presenting a client certificate if given."""
    if not ca:
        if cert or key:
            raise UserError("a client certificate needs --tls-ca, the CA that signed the server's certificate")
        return None
    if bool(cert) != bool(key):
        raise UserError("--tls-cert and --tls-key go together")
    return grpc.ssl_channel_credentials(root_certificates=_read(ca, "CA certificate"),
                                        private_key=_read(key, "client key") if key else None,
                                        certificate_chain=_read(cert, "client certificate") if cert else None)
