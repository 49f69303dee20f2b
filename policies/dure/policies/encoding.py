"""Digests and their text encodings, as distinct types.

A SHA-256 digest travels as raw bytes (:data:`Digest`), as lowercase hex
(:data:`HexDigest`) or as standard padded base64 (:data:`Base64`).  The three are
never interchangeable: each conversion goes through a function here that checks
its input and raises :class:`~dure.policies.errors.EncodingError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import NewType

from dure.policies.errors import EncodingError

__all__ = [
    "DIGEST_SIZE",
    "Base64",
    "Digest",
    "HexDigest",
    "b64decode",
    "b64encode",
    "digest",
    "digest_from_b64",
    "digest_from_hex",
    "sha256",
    "to_hex",
]

DIGEST_SIZE = 32

Digest = NewType("Digest", bytes)
"""Raw 32-byte SHA-256 digest."""

HexDigest = NewType("HexDigest", str)
"""A digest as 64 lowercase hex characters."""

Base64 = NewType("Base64", str)
"""Bytes as standard base64 with padding (RFC 4648 §4)."""


def sha256(data: bytes) -> Digest:
    """Return the SHA-256 digest of ``data``."""
    return Digest(hashlib.sha256(data).digest())


def digest(raw: bytes) -> Digest:
    """Check that ``raw`` is 32 bytes long and type it as a :data:`Digest`."""
    if len(raw) != DIGEST_SIZE:
        raise EncodingError(f"a SHA-256 digest is 32 bytes, got {len(raw)}")
    return Digest(bytes(raw))


def to_hex(value: Digest) -> HexDigest:
    """Encode a digest as lowercase hex."""
    return HexDigest(value.hex())


def digest_from_hex(text: str) -> Digest:
    """Decode 64 lowercase hex characters into a :data:`Digest`."""
    if len(text) != 2 * DIGEST_SIZE or text != text.lower():
        raise EncodingError(f"expected 64 lowercase hex characters, got {text[:80]!r}")
    try:
        return Digest(bytes.fromhex(text))
    except ValueError as exc:
        raise EncodingError(f"not hex: {text[:80]!r}") from exc


def b64encode(data: bytes) -> Base64:
    """Encode bytes as standard padded base64."""
    return Base64(base64.b64encode(data).decode("ascii"))


def b64decode(text: str) -> bytes:
    """Decode standard padded base64, refusing any other alphabet or stray characters."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise EncodingError(f"not valid base64: {text[:80]!r}") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise EncodingError(f"non-canonical base64: {text[:80]!r}")
    return raw


def digest_from_b64(text: str) -> Digest:
    """Decode base64 text that must hold exactly one SHA-256 digest."""
    return digest(b64decode(text))
