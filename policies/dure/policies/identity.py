"""Site identity: one signed document binding a site's name to its keys.

A factory's identity document names the site, its Ed25519 signing key and the
ECDSA public key its Flower SuperNode authenticates with (OpenSSH format).  The
site signs it with that Ed25519 key, so a registry that accepts the document
knows the two keys belong to the same party and a Flower node cannot act for
another site.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dure.policies.canonical import canonical_bytes, parse_canonical
from dure.policies.dsse import PAYLOAD_TYPES, Envelope, sign_envelope, verify_envelope
from dure.policies.encoding import Base64, HexDigest, b64decode, b64encode, sha256, to_hex
from dure.policies.errors import DocumentError, SignatureError
from dure.policies.keys import SigningKey, VerifyKey

__all__ = ["SITE_ID_PATTERN", "SiteIdentity", "open_site_identity", "sign_site_identity"]

SITE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
_SITE_ID = re.compile(SITE_ID_PATTERN)


class SiteIdentity(BaseModel):
    """A site's self-signed identity (``dure/site-identity/v1``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["dure/site-identity/v1"] = "dure/site-identity/v1"
    site: str = Field(pattern=SITE_ID_PATTERN)
    signing_key: Base64
    supernode_key: str
    issued: str

    @field_validator("signing_key")
    @classmethod
    def _ed25519(cls, value: Base64) -> Base64:
        VerifyKey(b64decode(value))
        return value

    @field_validator("supernode_key")
    @classmethod
    def _ecdsa(cls, value: str) -> str:
        try:
            key = serialization.load_ssh_public_key(value.encode("ascii"))
        except (ValueError, UnicodeEncodeError) as exc:
            raise ValueError("supernode_key is not an OpenSSH public key") from exc
        if not isinstance(key, EllipticCurvePublicKey):
            raise ValueError("supernode_key must be an ECDSA key (ssh-keygen -t ecdsa)")
        return value

    @property
    def verify_key(self) -> VerifyKey:
        """The site's Ed25519 public key."""
        return VerifyKey(b64decode(self.signing_key))

    def to_canonical_bytes(self) -> bytes:
        """RFC 8785 bytes of the document."""
        return canonical_bytes(self.model_dump(mode="json"))

    def document_id(self) -> HexDigest:
        """Hex SHA-256 of the canonical bytes."""
        return to_hex(sha256(self.to_canonical_bytes()))

    @classmethod
    def from_canonical_bytes(cls, data: bytes) -> SiteIdentity:
        """Parse canonical bytes into a validated identity."""
        value = parse_canonical(data)
        try:
            return cls.model_validate(value)
        except ValidationError as exc:
            raise DocumentError(f"site identity: {_first_problem(exc)}") from exc

    @classmethod
    def create(cls, site: str, key: SigningKey, supernode_key: str) -> SiteIdentity:
        """Build the identity for ``site`` with the current time as ``issued``."""
        if not _SITE_ID.match(site):
            raise DocumentError(
                f"site id {site!r} is not valid",
                hint="Use lowercase letters, digits and '-', starting with a letter or digit.",
            )
        try:
            return cls(
                site=site,
                signing_key=b64encode(key.public.raw),
                supernode_key=supernode_key.strip(),
                issued=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
        except ValidationError as exc:
            raise DocumentError(f"site identity: {_first_problem(exc)}") from exc


def sign_site_identity(identity: SiteIdentity, key: SigningKey) -> Envelope:
    """Sign ``identity`` with the site key it names."""
    if key.public != identity.verify_key:
        raise SignatureError("an identity must be signed by the key it declares")
    return sign_envelope(PAYLOAD_TYPES["site-identity"], identity.to_canonical_bytes(), key)


def open_site_identity(envelope: Envelope) -> SiteIdentity:
    """Verify a self-signed identity and return it.

    The payload is parsed only to learn which key it declares; the signature by
    that key is then checked over the received bytes before the identity is
    returned.
    """
    claimed = SiteIdentity.from_canonical_bytes(envelope.payload)
    key = claimed.verify_key
    verify_envelope(envelope, {key.key_id: key}, PAYLOAD_TYPES["site-identity"])
    return claimed


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"]) or "document"
    return f"{where}: {error['msg']}"
