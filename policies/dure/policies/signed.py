"""Signing and opening Dure documents: canonical bytes in a DSSE envelope.

Every signed document (usage policy, job manifest, revocation, contribution
claim) is produced once as RFC 8785 canonical bytes and signed as-is; its id is
the hex SHA-256 of those bytes (``policy_id`` for a policy).  Opening a document
verifies the envelope over the received bytes first, then requires the bytes to
be canonical, then parses them into the frozen model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, Self, TypeVar

from dure.policies.dsse import PAYLOAD_TYPES, Envelope, sign_envelope, verify_envelope
from dure.policies.encoding import HexDigest, sha256, to_hex
from dure.policies.keys import SigningKey, VerifyKey

__all__ = ["Opened", "SignableDocument", "document_id", "open_document", "sign_document"]


class SignableDocument(Protocol):
    """What a document must offer to be signed and opened."""

    def to_canonical_bytes(self) -> bytes:
        """Return the document's RFC 8785 bytes."""
        ...

    @classmethod
    def from_canonical_bytes(cls, data: bytes) -> Self:
        """Parse canonical bytes, raising a DureError subclass on any problem."""
        ...


DocT = TypeVar("DocT", bound=SignableDocument)


@dataclass(frozen=True, slots=True)
class Opened(Generic[DocT]):
    """A verified document, its id and the key that signed it."""

    document: DocT
    document_id: HexDigest
    signer: VerifyKey
    envelope: Envelope


def document_id(payload: bytes) -> HexDigest:
    """Return the id of a signed document: hex SHA-256 of its canonical bytes."""
    return to_hex(sha256(payload))


def sign_document(kind: str, document: SignableDocument, key: SigningKey) -> Envelope:
    """Sign ``document`` as the DSSE payload type registered for ``kind``."""
    return sign_envelope(PAYLOAD_TYPES[kind], document.to_canonical_bytes(), key)


def open_document(
    envelope: Envelope,
    kind: str,
    model: type[DocT],
    trusted: Mapping[str, VerifyKey],
) -> Opened[DocT]:
    """Verify ``envelope`` against ``trusted`` keys, then parse it as ``model``.

    Raises
    ------
    SignatureError
        If no trusted key signed it or a signature is bad (nothing is parsed).
    EncodingError, DocumentError
        If the verified bytes are not a canonical, valid ``model`` document.
    """
    payload, signer = verify_envelope(envelope, trusted, PAYLOAD_TYPES[kind])
    document = model.from_canonical_bytes(payload)
    return Opened(document, document_id(payload), signer, envelope)
