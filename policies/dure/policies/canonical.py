"""Canonical JSON: RFC 8785 bytes out, strict parsing in.

Signed documents are produced once as RFC 8785 canonical bytes (through the
``rfc8785`` package) and parsed back with :func:`parse_json`, which is stricter
than :mod:`json`: it refuses duplicate object keys, binary floating-point numbers
(decimals travel as strings), non-NFC strings, lone surrogates, ``NaN`` and
``Infinity``, and anything that is not UTF-8.  Hostile input fails as
:class:`~dure.policies.errors.EncodingError` too: an integer longer than the
I-JSON safe range could be is refused before Python converts it (so the
interpreter's 4,300-digit limit never raises a bare ``ValueError``), and
nesting deeper than :data:`MAX_DEPTH` is refused (never a ``RecursionError``).
A document that passes
:func:`parse_canonical` is byte-for-byte what :func:`canonical_bytes` would
produce, so the bytes that were signed are the bytes that are read.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping, Sequence
from typing import TypeAlias

import rfc8785

from dure.policies.errors import EncodingError

__all__ = ["MAX_DEPTH", "JsonValue", "canonical_bytes", "parse_canonical", "parse_json"]

JsonValue: TypeAlias = "bool | int | str | Sequence[JsonValue] | Mapping[str, JsonValue] | None"

_MAX_SAFE_INT = 2**53 - 1  # SPEC: RFC 8785 §3.2.2.3 / I-JSON RFC 7493 §2.2
_MAX_INT_DIGITS = len(str(_MAX_SAFE_INT))
MAX_DEPTH = 64
"""Deepest nesting of arrays and objects a document may have (Dure's use at most ~8)."""


def canonical_bytes(value: JsonValue) -> bytes:
    """Serialise ``value`` as RFC 8785 canonical JSON.

    Raises
    ------
    EncodingError
        If ``value`` holds a float, a non-NFC string, an integer outside the
        I-JSON safe range, or anything JSON cannot represent.
    """
    _check_value(value, "$")
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise EncodingError(f"cannot canonicalise document: {exc}") from exc


def parse_json(data: bytes) -> JsonValue:
    """Parse UTF-8 JSON strictly (see the module docstring for what is refused)."""
    try:
        text = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise EncodingError(f"document is not UTF-8 (byte {exc.start})") from exc
    try:
        value: JsonValue = json.loads(
            text,
            object_pairs_hook=_unique_object,
            parse_float=_refuse_float,
            parse_int=_parse_int,
            parse_constant=_refuse_constant,
        )
    except EncodingError:
        raise
    except RecursionError as exc:
        raise _too_deep() from exc
    except ValueError as exc:  # JSONDecodeError, and anything else json refuses
        raise EncodingError(f"document is not valid JSON: {str(exc)[:200]}") from exc
    _check_value(value, "$")
    return value


def parse_canonical(data: bytes) -> JsonValue:
    """Parse ``data`` strictly and require it to be in RFC 8785 canonical form."""
    value = parse_json(data)
    if canonical_bytes(value) != data:
        raise EncodingError(
            "document is valid JSON but not RFC 8785 canonical bytes",
            hint="Sign documents with Dure, which produces canonical bytes; do not reformat them.",
        )
    return value


def _unique_object(pairs: list[tuple[str, JsonValue]]) -> dict[str, JsonValue]:
    result: dict[str, JsonValue] = {}
    for key, item in pairs:
        if key in result:
            raise EncodingError(f"duplicate key {key!r} in a JSON object")
        result[key] = item
    return result


def _refuse_float(text: str) -> JsonValue:
    raise EncodingError(
        f"binary floating-point number {text[:40]} in a signed document",
        hint='Write decimals as strings, e.g. "0.5".',
    )


def _parse_int(text: str) -> JsonValue:
    digits = len(text.lstrip("-"))
    if digits > _MAX_INT_DIGITS:
        raise EncodingError(
            f"integer of {digits} digits ({text[:20]}…) is outside the I-JSON safe range "
            f"(at most {_MAX_SAFE_INT})",
            hint="Integers in Dure documents stay within ±(2^53 - 1); check the document's source.",
        )
    return int(text)


def _too_deep() -> EncodingError:
    return EncodingError(
        f"document nests arrays or objects deeper than {MAX_DEPTH} levels",
        hint="Dure documents are shallow; this one was not produced by Dure.",
    )


def _refuse_constant(text: str) -> JsonValue:
    raise EncodingError(f"{text} is not allowed in JSON documents")


def _check_value(value: object, path: str, depth: int = 0) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if abs(value) > _MAX_SAFE_INT:
            shown = value if value.bit_length() <= 64 else f"of {value.bit_length()} bits"
            raise EncodingError(f"{path}: integer {shown} is outside the I-JSON safe range")
        return
    if isinstance(value, str):
        _check_string(value, path)
        return
    if isinstance(value, Mapping | list | tuple) and depth >= MAX_DEPTH:
        raise _too_deep()
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise EncodingError(f"{path}: object key {key!r:.80} is not a string")
            _check_string(key, path)
            _check_value(item, f"{path}.{key[:40]}", depth + 1)
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_value(item, f"{path}[{index}]", depth + 1)
        return
    if isinstance(value, float):
        raise EncodingError(
            f"{path}: binary floating-point number {value!r} in a signed document",
            hint='Write decimals as strings, e.g. "0.5".',
        )
    raise EncodingError(f"{path}: {type(value).__name__} cannot be represented in JSON")


def _check_string(text: str, path: str) -> None:
    try:
        text.encode("utf-8", errors="strict")
    except UnicodeEncodeError as exc:
        raise EncodingError(f"{path}: string holds a lone surrogate") from exc
    if not unicodedata.is_normalized("NFC", text):
        raise EncodingError(
            f"{path}: string {text[:40]!r} is not in Unicode NFC form",
            hint="Normalise text to NFC before signing.",
        )
