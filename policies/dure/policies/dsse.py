"""DSSE envelopes signed with Ed25519.

SPEC: DSSE v1 (github.com/secure-systems-lab/dsse, envelope.md and protocol.md).
The signature covers the pre-authentication encoding ``PAE(type, body) =
"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`` with lengths in ASCII
decimal.  Verification happens over the received payload bytes, before anything
parses them: :func:`verify_envelope` returns the payload only once a trusted key
has verified it.  An envelope is read with the strict canonical parser, so
duplicate keys or floats in the envelope itself are refused too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dure.policies.canonical import canonical_bytes, parse_json
from dure.policies.encoding import b64decode, b64encode
from dure.policies.errors import EncodingError, SignatureError
from dure.policies.keys import SigningKey, VerifyKey

__all__ = [
    "PAYLOAD_TYPES",
    "Envelope",
    "EnvelopeSignature",
    "pae",
    "sign_envelope",
    "verify_envelope",
]

PAYLOAD_TYPES = {
    "policy": "application/vnd.dure.policy+json",
    "job": "application/vnd.dure.job+json",
    "revocation": "application/vnd.dure.revocation+json",
    "site-identity": "application/vnd.dure.site-identity+json",
    "contribution": "application/vnd.dure.contribution+json",
    "request": "application/vnd.dure.request+json",
}
"""The payload type of each kind of signed Dure document."""

_MAX_SIGNATURES = 16


def pae(payload_type: str, payload: bytes) -> bytes:
    """Return DSSE's pre-authentication encoding of ``payload``."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True, slots=True)
class EnvelopeSignature:
    """One signature: the signer's key id and the raw signature bytes."""

    keyid: str
    sig: bytes


@dataclass(frozen=True, slots=True)
class Envelope:
    """A DSSE envelope: typed payload bytes and their signatures."""

    payload_type: str
    payload: bytes
    signatures: tuple[EnvelopeSignature, ...]

    def to_json(self) -> bytes:
        """Serialise as canonical JSON (``payload`` and ``sig`` base64)."""
        return canonical_bytes(
            {
                "payloadType": self.payload_type,
                "payload": b64encode(self.payload),
                "signatures": [
                    {"keyid": s.keyid, "sig": b64encode(s.sig)} for s in self.signatures
                ],
            }
        )

    @classmethod
    def from_json(cls, data: bytes) -> Envelope:
        """Parse an envelope strictly; raise :class:`EncodingError` on any malformation."""
        value = parse_json(data)
        if not isinstance(value, Mapping) or set(value) != {"payloadType", "payload", "signatures"}:
            raise EncodingError(
                "a DSSE envelope is an object with exactly payloadType, payload and signatures"
            )
        kind, payload, sigs = value["payloadType"], value["payload"], value["signatures"]
        if not isinstance(kind, str) or not isinstance(payload, str) or not isinstance(sigs, list):
            raise EncodingError("DSSE envelope fields have the wrong types")
        if not 1 <= len(sigs) <= _MAX_SIGNATURES:
            raise EncodingError(f"a DSSE envelope carries 1 to {_MAX_SIGNATURES} signatures")
        return cls(kind, b64decode(payload), tuple(_signature(s) for s in sigs))

    def with_signature(self, key: SigningKey) -> Envelope:
        """Return a copy with one more signature by ``key``."""
        added = EnvelopeSignature(key.key_id, key.sign(pae(self.payload_type, self.payload)))
        return Envelope(self.payload_type, self.payload, (*self.signatures, added))


def _signature(item: object) -> EnvelopeSignature:
    if not isinstance(item, Mapping) or set(item) != {"keyid", "sig"}:
        raise EncodingError("a DSSE signature is an object with exactly keyid and sig")
    keyid, sig = item["keyid"], item["sig"]
    if not isinstance(keyid, str) or not isinstance(sig, str):
        raise EncodingError("DSSE signature fields must be strings")
    return EnvelopeSignature(keyid, b64decode(sig))


def sign_envelope(payload_type: str, payload: bytes, key: SigningKey) -> Envelope:
    """Sign ``payload`` as ``payload_type`` with ``key``."""
    return Envelope(payload_type, payload, ()).with_signature(key)


def verify_envelope(
    envelope: Envelope,
    trusted: Mapping[str, VerifyKey],
    payload_type: str,
) -> tuple[bytes, VerifyKey]:
    """Verify ``envelope`` and return its payload and the key that signed it.

    The envelope must have the expected ``payload_type`` and at least one
    signature by a key in ``trusted`` (a map from key id to key).  A signature
    that names a trusted key but does not verify is refused outright, even if
    another one verifies: a tampered envelope is evidence, not noise.

    Raises
    ------
    SignatureError
        Wrong payload type, no signature from a trusted key, or a bad signature.
    """
    if envelope.payload_type != payload_type:
        raise SignatureError(
            f"envelope holds {envelope.payload_type!r}, expected {payload_type!r}",
            hint="Check you passed the right kind of document.",
        )
    message = pae(envelope.payload_type, envelope.payload)
    signer: VerifyKey | None = None
    for entry in envelope.signatures:
        key = trusted.get(entry.keyid)
        if key is None:
            continue
        key.verify(entry.sig, message)
        signer = signer or key
    if signer is None:
        ids = ", ".join(s.keyid[:16] for s in envelope.signatures)
        raise SignatureError(
            f"no signature from a trusted key (signed by: {ids})",
            hint="Pin the signer's public key, or ask for a document signed by a known key.",
        )
    return envelope.payload, signer
