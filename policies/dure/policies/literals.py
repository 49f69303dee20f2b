"""Typed literals shared by the policy documents: names, URNs, purposes, times, decimals.

Each literal has exactly one accepted spelling, so a document that parses
re-serialises to the same bytes:

- a *name* is 1-63 characters of ``a-z 0-9 . _ -``, starting with a letter or digit;
- a *party* is ``urn:dure:<kind>:<name>`` with kind ``site``, ``consortium``,
  ``coordinator`` or ``org``;
- a *purpose id* is ``urn:dure:purpose:<name>:v<N>`` (versioned); a policy may
  also name ``urn:dure:purpose:<name>``, which stands for every version;
- a *timestamp* is UTC with second precision: ``2026-11-01T00:00:00Z``;
- a *decimal* is a non-negative decimal string without exponent: ``"8.0"``,
  ``"0.00001"`` (binary floats never appear in signed documents).

The ``check_*`` functions raise :class:`ValueError`, which pydantic reports with
the field path and which the document parsers translate into
:class:`~dure.policies.errors.DocumentError`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Final

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, StrictStr

from dure.policies.encoding import HexDigest, digest_from_hex
from dure.policies.errors import EncodingError

__all__ = [
    "NAME_RE",
    "PARTY_KINDS",
    "ConsortiumUrn",
    "CoordinatorUrn",
    "DecimalText",
    "HexDigestText",
    "Name",
    "PartyUrn",
    "PurposeId",
    "SiteUrn",
    "Timestamp",
    "check_decimal",
    "check_name",
    "check_party",
    "check_purpose_pattern",
    "format_timestamp",
    "parse_decimal",
    "parse_timestamp",
    "party_name",
    "purpose_matches",
]

NAME_RE: Final = r"[a-z0-9][a-z0-9._-]{0,62}"
PARTY_KINDS: Final = ("site", "consortium", "coordinator", "org")

_NAME = re.compile(rf"{NAME_RE}\Z")
_PARTY = re.compile(rf"urn:dure:({'|'.join(PARTY_KINDS)}):({NAME_RE})\Z")
_PURPOSE = re.compile(rf"urn:dure:purpose:({NAME_RE}?)(?::v([1-9][0-9]{{0,5}}))?\Z")
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z")
_DECIMAL = re.compile(r"(0|[1-9][0-9]{0,17})(\.[0-9]{1,18})?\Z")
_NAME_RULE = "1-63 characters of a-z 0-9 . _ -, starting with a letter or digit"


def check_name(text: str) -> str:
    """Return ``text`` if it is a valid name, else raise :class:`ValueError`."""
    if not _NAME.match(text):
        raise ValueError(f"{text[:80]!r} is not a name ({_NAME_RULE})")
    return text


def check_party(text: str, kind: str | None = None) -> str:
    """Return ``text`` if it is a party URN (of ``kind`` when given), else raise ValueError."""
    match = _PARTY.match(text)
    expected = f"urn:dure:{kind or '<kind>'}:<name>"
    if match is None or (kind is not None and match.group(1) != kind):
        raise ValueError(f"{text[:80]!r} is not a party URN; expected {expected}")
    return text


def party_name(urn: str) -> str:
    """Return the ``<name>`` part of a party URN already checked by :func:`check_party`."""
    return urn.rsplit(":", 1)[1]


def check_purpose_pattern(text: str, *, versioned: bool = False) -> str:
    """Return ``text`` if it is a purpose id (versioned when asked), else raise ValueError."""
    match = _PURPOSE.match(text)
    if match is None or not match.group(1) or (versioned and match.group(2) is None):
        form = "urn:dure:purpose:<name>:v<N>" + ("" if versioned else " or ...:<name>")
        raise ValueError(f"{text[:80]!r} is not a purpose id; expected {form}")
    return text


def purpose_matches(pattern: str, purpose: str) -> bool:
    """Whether policy purpose ``pattern`` covers the job's versioned ``purpose``.

    A versioned pattern matches only itself; an unversioned one
    (``urn:dure:purpose:<name>``) matches every version of that purpose.
    """
    return purpose == pattern or purpose.startswith(pattern + ":v")


def parse_timestamp(text: str) -> datetime:
    """Parse ``YYYY-MM-DDTHH:MM:SSZ`` into an aware UTC datetime, else raise ValueError."""
    if not _TIMESTAMP.match(text):
        raise ValueError(f"{text[:80]!r} is not a UTC timestamp like 2026-11-01T00:00:00Z")
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)


def format_timestamp(value: datetime) -> str:
    """Format an aware datetime as ``YYYY-MM-DDTHH:MM:SSZ`` (UTC, whole seconds)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_decimal(text: str) -> str:
    """Return ``text`` if it is a non-negative decimal string, else raise ValueError."""
    if not _DECIMAL.match(text):
        raise ValueError(
            f"{text[:80]!r} is not a decimal string; write a non-negative number "
            'without exponent, e.g. "8.0" or "0.00001"'
        )
    return text


def parse_decimal(text: str) -> Decimal:
    """Parse a decimal string checked by :func:`check_decimal` into a :class:`Decimal`."""
    return Decimal(check_decimal(text))


def _timestamp(value: object) -> datetime:
    if isinstance(value, str):
        return parse_timestamp(value)
    if isinstance(value, datetime):
        if value.tzinfo is None or value.microsecond:
            raise ValueError("timestamps must be timezone-aware with whole seconds")
        return value.astimezone(UTC)
    raise ValueError(f"expected a UTC timestamp string, got {type(value).__name__}")


def _hex_digest(value: object) -> HexDigest:
    if not isinstance(value, str):
        raise ValueError(f"expected 64 lowercase hex characters, got {type(value).__name__}")
    try:
        digest_from_hex(value)
    except EncodingError as exc:
        raise ValueError(exc.message) from exc
    return HexDigest(value)


def _party(kind: str | None) -> AfterValidator:
    return AfterValidator(lambda text: check_party(text, kind))


Name = Annotated[StrictStr, AfterValidator(check_name)]
SiteUrn = Annotated[StrictStr, _party("site")]
ConsortiumUrn = Annotated[StrictStr, _party("consortium")]
CoordinatorUrn = Annotated[StrictStr, _party("coordinator")]
PartyUrn = Annotated[StrictStr, _party(None)]
PurposeId = Annotated[StrictStr, AfterValidator(lambda t: check_purpose_pattern(t, versioned=True))]
DecimalText = Annotated[StrictStr, AfterValidator(check_decimal)]
HexDigestText = Annotated[HexDigest, BeforeValidator(_hex_digest)]
Timestamp = Annotated[
    datetime, BeforeValidator(_timestamp), PlainSerializer(format_timestamp, return_type=str)
]
