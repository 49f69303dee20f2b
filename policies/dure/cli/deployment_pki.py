"""The consortium's TLS material: a CA and the SuperLink's server certificate.

Flower's SuperLink serves TLS with ``--ssl-ca-certfile/--ssl-certfile/--ssl-keyfile``;
SuperNodes and the ``flwr`` CLI trust it with ``--root-certificates ca.crt``.
There is no mutual TLS: sites authenticate with their SuperNode keys.  Keys are
ECDSA P-384; the server certificate names its host in the subject alternative
names (an IP address or a DNS name; ``localhost`` and ``127.0.0.1`` go together).
"""

from __future__ import annotations

import ipaddress
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dure.cli.files import CliFileError

__all__ = ["CertificateAuthority", "create_file", "server_certificate"]

_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def create_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Create ``path`` with ``mode`` (private keys: ``0o600``); never replace a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError as exc:
        raise CliFileError(f"{path}: already exists", hint="Choose another folder.") from exc
    except OSError as exc:
        raise CliFileError(f"{path}: cannot create ({exc.strerror})") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)


class CertificateAuthority:
    """A self-signed CA valid for ``years``."""

    def __init__(self, name: str, years: int = 10) -> None:
        self.key = ec.generate_private_key(ec.SECP384R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} consortium CA")])
        now = datetime.now(UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=365 * years))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA384())
        )

    def save(self, cert: Path, key: Path) -> None:
        """Write the certificate (PEM) and the private key (PEM, 0600)."""
        create_file(cert, self.cert.public_bytes(serialization.Encoding.PEM))
        create_file(key, _private_pem(self.key), 0o600)


def server_certificate(
    ca: CertificateAuthority, host: str, cert: Path, key: Path, years: int = 2
) -> None:
    """Issue the SuperLink's certificate for ``host`` and write it and its key (0600)."""
    server_key = ec.generate_private_key(ec.SECP384R1())
    now = datetime.now(UTC)
    built = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca.cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(_names(host)), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA384())
    )
    create_file(cert, built.public_bytes(serialization.Encoding.PEM))
    create_file(key, _private_pem(server_key), 0o600)


def _names(host: str) -> list[x509.GeneralName]:
    hosts = sorted(_LOOPBACK) if host in _LOOPBACK else [host]
    names: list[x509.GeneralName] = []
    for name in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            names.append(x509.DNSName(name))
    return names


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
