"""Ed25519 public keys and signatures Dure must refuse, in every spelling a key enters.

:data:`WEAK_KEYS` holds the encodings of the eight points of small order
(SPEC: RFC 8032 §5.1; the same list libsodium and Go's crypto/ed25519 tests
block), the non-canonical spellings of the two small-order points with ``x = 0``
(sign bit set), the encodings whose ``y`` is not below ``p = 2^255 - 19``, and
values that are not curve points.  ``cryptography`` (OpenSSL) accepts every one
of them as a public key.  The helpers write each key the ways it reaches Dure:
raw, base64, SubjectPublicKeyInfo PEM, and C2SP verifier-key text.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from dure.policies.dsse import Envelope, EnvelopeSignature, pae
from dure.policies.ed25519 import GROUP_ORDER
from dure.policies.encoding import sha256, to_hex
from dure.policies.note import KeyString, key_id

__all__ = [
    "FIELD_PRIME",
    "SMALL_ORDER_POINTS",
    "WEAK_KEYS",
    "forge_envelope",
    "forge_small_order_signature",
    "non_canonical_s",
    "pem",
    "vkey",
]

FIELD_PRIME = 2**255 - 19


def _y(value: int, *, sign: bool = False) -> bytes:
    return (value | (1 << 255 if sign else 0)).to_bytes(32, "little")


SMALL_ORDER_POINTS: dict[str, bytes] = {
    "identity (order 1)": bytes.fromhex("01" + "00" * 31),
    "y=-1 (order 2)": bytes.fromhex("ec" + "ff" * 30 + "7f"),
    "zero bytes (order 4)": bytes(32),
    "y=0 x<0 (order 4)": bytes.fromhex("00" * 31 + "80"),
    "order 8, x>0": bytes.fromhex(
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"
    ),
    "order 8, x<0": bytes.fromhex(
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"
    ),
    "order 8 (other), x>0": bytes.fromhex(
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"
    ),
    "order 8 (other), x<0": bytes.fromhex(
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"
    ),
}
"""The eight points whose order divides the cofactor 8, canonically encoded."""

WEAK_KEYS: dict[str, bytes] = {
    **SMALL_ORDER_POINTS,
    "identity with x sign bit": _y(1, sign=True),
    "y=-1 with x sign bit": _y(FIELD_PRIME - 1, sign=True),
    "y=p (non-canonical 0)": _y(FIELD_PRIME),
    "y=p+1 (non-canonical identity)": _y(FIELD_PRIME + 1),
    "y=p+1 with sign bit": _y(FIELD_PRIME + 1, sign=True),
    "y=2^255-1 (largest)": _y(2**255 - 1),
    "all ff bytes": b"\xff" * 32,
    "y=2, not on the curve": _y(2),
}
"""Every 32-byte public key Dure must refuse, by a readable id."""


def pem(raw: bytes) -> bytes:
    """``raw`` as a SubjectPublicKeyInfo PEM block (OpenSSL writes weak keys too)."""
    return Ed25519PublicKey.from_public_bytes(raw).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def vkey(name: str, raw: bytes, signature_type: int = 0x01) -> str:
    """``raw`` as a C2SP verifier key ``name+keyid+base64(type ‖ key)`` with the right key id."""
    return KeyString(name, key_id(name, signature_type, raw), signature_type, raw).to_text()


def forge_small_order_signature(public_key: bytes, message: bytes) -> bytes | None:
    """Return ``R ‖ 0`` with ``R`` of small order that ``cryptography`` accepts, if one exists.

    With ``A`` of small order, ``[0]B = R + [k]A`` holds when ``R = -[k]A``, one
    of the eight small-order points: no private key is involved.
    """
    for point in SMALL_ORDER_POINTS.values():
        signature = point + bytes(32)
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
        except InvalidSignature:
            continue
        return signature
    return None


def non_canonical_s(signature: bytes) -> bytes | None:
    """``signature`` with ``S`` replaced by ``S + L`` when that still fits 32 bytes."""
    s = int.from_bytes(signature[32:], "little") + GROUP_ORDER
    return signature[:32] + s.to_bytes(32, "little") if s < 2**256 else None


def forge_envelope(payload_type: str, payload: bytes, public_key: bytes) -> tuple[Envelope, bool]:
    """A DSSE envelope "signed" by ``public_key`` with no private key: ``R ‖ 0``.

    Returns the envelope and whether its signature verifies under ``cryptography``:
    for a small-order key it does when :func:`forge_small_order_signature` finds an
    ``R`` (most payloads); otherwise the envelope carries a first candidate that
    does not verify.
    """
    message = pae(payload_type, payload)
    found = forge_small_order_signature(public_key, message)
    signature = found or next(iter(SMALL_ORDER_POINTS.values())) + bytes(32)
    keyid = to_hex(sha256(public_key))
    return Envelope(payload_type, payload, (EnvelopeSignature(keyid, signature),)), bool(found)
