"""gRPC transport credentials from PEM files (TLS, mutual when the server requires it).

Every file is parsed here first, so a wrong or damaged one is named in a clear error instead of
surfacing later as a transport failure.
"""

from __future__ import annotations

from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from protoken.errors import UserError


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read the {what} {path}: {exc.strerror}") from exc


def _certificates(path: str, what: str) -> tuple[bytes, list[x509.Certificate]]:
    data = _read(path, what)
    try:
        return data, x509.load_pem_x509_certificates(data)
    except ValueError:
        raise UserError(f"the {what} {path} is not a PEM certificate") from None


def _key_pair(cert_path: str, key_path: str, who: str) -> tuple[bytes, bytes]:
    """(key, certificate chain) PEM bytes, checked to parse and to belong together."""
    chain, certificates = _certificates(cert_path, f"{who} certificate")
    key_data = _read(key_path, f"{who} key")
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except (ValueError, TypeError):
        raise UserError(f"the {who} key {key_path} is not an unencrypted PEM private key") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if (key.public_key().public_bytes(serialization.Encoding.PEM, public)
            != certificates[0].public_key().public_bytes(serialization.Encoding.PEM, public)):
        raise UserError(f"the {who} key {key_path} does not belong to the certificate {cert_path}")
    return key_data, chain


def server_credentials(tls) -> grpc.ServerCredentials | None:
    """None for plaintext; otherwise the server's certificate, and the CA clients must chain to."""
    if not tls.enabled:
        return None
    if not (tls.cert and tls.key):
        raise UserError("tls.enabled needs tls.cert and tls.key")
    if tls.require_client_cert and not tls.ca:
        raise UserError("tls.require_client_cert needs tls.ca, the CA that signs client certificates")
    root = _certificates(tls.ca, "CA certificate")[0] if tls.ca else None
    return grpc.ssl_server_credentials([_key_pair(tls.cert, tls.key, "server")],
                                       root_certificates=root, require_client_auth=tls.require_client_cert)


def channel_credentials(ca: str | None, cert: str | None, key: str | None) -> grpc.ChannelCredentials | None:
    """None for plaintext (no CA given); otherwise TLS, presenting a client certificate if given."""
    if not ca:
        if cert or key:
            raise UserError("a client certificate needs --tls-ca, the CA that signed the server's certificate")
        return None
    if bool(cert) != bool(key):
        raise UserError("--tls-cert and --tls-key go together")
    private_key, chain = _key_pair(cert, key, "client") if cert else (None, None)
    return grpc.ssl_channel_credentials(root_certificates=_certificates(ca, "CA certificate")[0],
                                        private_key=private_key, certificate_chain=chain)
