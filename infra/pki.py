"""X.509 material for mutual TLS: a certificate authority that signs server and client certificates.

Keys are ECDSA P-256: gRPC's TLS stack accepts them and they are fast to generate, which
matters when a compose deployment pre-issues dozens of client certificates at start-up.
A client certificate's common name is the client id, so the server can check that the
certificate and the credential of a call name the same client.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from protoken.errors import UserError

VALIDITY_DAYS = 825


@dataclass
class KeyPair:
    """A certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "protoken federation"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def subject_alternative_names(names: list[str]) -> list[x509.GeneralName]:
    """IP addresses become IP SANs, everything else a DNS name."""
    sans: list[x509.GeneralName] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            if not name or any(c.isspace() or c in "/:," for c in name):
                raise UserError(f"server name {name!r} is neither an IP address nor a host name") from None
            sans.append(x509.DNSName(name))
    return sans


class CertificateAuthority:
    """A self-signed CA held in memory; `save` writes it, `load` reads it back."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        self.key = key
        self.cert = cert

    @classmethod
    def create(cls, common_name: str = "protoken federation CA") -> "CertificateAuthority":
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (cls._builder(_name(common_name), key.public_key(), _name(common_name))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                content_commitment=False, key_encipherment=False,
                                                data_encipherment=False, key_agreement=False,
                                                encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
        return cls(key, builder.sign(key, hashes.SHA256()))

    @classmethod
    def load(cls, cert_path: Path, key_path: Path) -> "CertificateAuthority":
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read the CA in {cert_path.parent}: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise UserError(f"{key_path} is not an EC private key written by protoken infra certs")
        return cls(key, cert)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return _key_pem(self.key)

    @staticmethod
    def _builder(subject: x509.Name, public_key, issuer: x509.Name) -> x509.CertificateBuilder:
        now = datetime.datetime.now(datetime.timezone.utc)
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=VALIDITY_DAYS)))

    def _issue(self, common_name: str, usage: x509.ObjectIdentifier,
               sans: list[x509.GeneralName]) -> KeyPair:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (self._builder(_name(common_name), key.public_key(), self.cert.subject)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                                  critical=False))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))

    def issue_server(self, names: list[str]) -> KeyPair:
        """A server certificate valid for every host name and IP address in `names`."""
        if not names:
            raise UserError("a server certificate needs at least one host name or IP address")
        return self._issue(names[0], ExtendedKeyUsageOID.SERVER_AUTH, subject_alternative_names(names))

    def issue_client(self, client_id: str) -> KeyPair:
        """A client certificate whose common name is `client_id`."""
        return self._issue(client_id, ExtendedKeyUsageOID.CLIENT_AUTH, [])


def certificate_names(cert_pem: bytes) -> list[str]:
    """The DNS names and IP addresses a certificate was issued for."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(value) for value in sans.get_values_for_type(x509.DNSName)
            + sans.get_values_for_type(x509.IPAddress)]
