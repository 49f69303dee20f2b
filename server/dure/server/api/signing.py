"""Signed requests: what a member signs to call the coordinator's API.

A request is authenticated by a DSSE envelope of kind ``request`` carried, base64
encoded, in the ``Dure-Request`` header.  Its payload is the RFC 8785 canonical
JSON of a :class:`RequestClaim`, which binds the HTTP method, the request target
(path and query string, exactly as sent), the SHA-256 of the body bytes (of the
empty string for a body-less request), the time of signing and a random nonce::

    {"body_sha256": "<64 hex>", "method": "POST", "nonce": "<32 hex>",
     "path": "/v1/policies", "timestamp": "2026-11-15T09:00:00Z",
     "type": "dure/request/v1"}

The coordinator accepts it once (the nonce), within a window around its
timestamp, if a member's key signed it.  This module is pure (no web framework),
so clients, tests and benchmarks sign requests with :func:`sign_request`.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from datetime import UTC, datetime
from typing import Literal

from pydantic import Field, StrictStr

from dure.policies.document import CanonicalDocument
from dure.policies.dsse import Envelope
from dure.policies.encoding import HexDigest, sha256, to_hex
from dure.policies.errors import EncodingError
from dure.policies.keys import SigningKey
from dure.policies.literals import HexDigestText, Timestamp, format_timestamp
from dure.policies.signed import sign_document

__all__ = [
    "REQUEST_HEADER",
    "RequestClaim",
    "body_digest",
    "decode_request_header",
    "sign_request",
]

REQUEST_HEADER = "Dure-Request"
"""The header carrying the base64 of the request envelope's JSON."""
_MAX_HEADER = 8192


class RequestClaim(CanonicalDocument):
    """What a signed request binds (``dure/request/v1``)."""

    document_kind = "signed request"

    type: Literal["dure/request/v1"] = "dure/request/v1"
    method: StrictStr = Field(pattern=r"^[A-Z]{3,7}$")
    path: StrictStr = Field(pattern=r"^/[\x21-\x7e]*$", max_length=2048)
    body_sha256: HexDigestText
    timestamp: Timestamp
    nonce: StrictStr = Field(pattern=r"^[0-9a-f]{32}$")


def body_digest(body: bytes) -> HexDigest:
    """Return the hex SHA-256 of the body bytes a request sends."""
    return to_hex(sha256(body))


def sign_request(
    key: SigningKey,
    method: str,
    target: str,
    body: bytes = b"",
    *,
    now: datetime | None = None,
    nonce: str | None = None,
) -> str:
    """Sign a request and return the value of its ``Dure-Request`` header.

    Parameters
    ----------
    key
        The member's Ed25519 key.
    method, target
        The HTTP method and the request target: path and query string as sent,
        e.g. ``/v1/ledger/entries?start=0&end=10``.
    body
        The exact body bytes (empty for GET).
    now, nonce
        The signing time (default: now) and a 128-bit hex nonce (default: random).

    Raises
    ------
    DocumentError
        If the method or target cannot be signed (e.g. a target over 2048 characters).
    """
    when = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    claim = RequestClaim.from_value(
        {
            "type": "dure/request/v1",
            "method": method.upper(),
            "path": target,
            "body_sha256": body_digest(body),
            "timestamp": format_timestamp(when),
            "nonce": nonce or secrets.token_hex(16),
        },
        source="signed request",
    )
    envelope = sign_document("request", claim, key)
    return base64.b64encode(envelope.to_json()).decode("ascii")


def decode_request_header(value: str) -> Envelope:
    """Decode a ``Dure-Request`` header into the envelope it carries.

    Raises
    ------
    EncodingError
        If the value is too long, not base64 or not a DSSE envelope.
    """
    if len(value) > _MAX_HEADER:
        raise EncodingError(f"{REQUEST_HEADER} header is {len(value)} characters, over the limit")
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise EncodingError(f"{REQUEST_HEADER} header is not base64") from exc
    return Envelope.from_json(raw)
