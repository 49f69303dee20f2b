"""The base of every signed Dure document: strict parsing, canonical bytes, content id.

A document is parsed only at the boundary, from bytes or from an already
parsed JSON value, into a frozen pydantic model; every pydantic
:class:`~pydantic.ValidationError` is translated into a
:class:`~dure.policies.errors.DocumentError` that names the source, the field
path and the fix.  Going the other way, :meth:`CanonicalDocument.to_canonical_bytes`
gives the RFC 8785 bytes that are signed and :meth:`CanonicalDocument.document_id`
their SHA-256 in hex.

Two parsers, two purposes:

- :meth:`~CanonicalDocument.from_json_bytes` reads a hand-written file (any
  whitespace and key order, optional fields may be left out) before signing;
- :meth:`~CanonicalDocument.from_canonical_bytes` reads signed bytes and accepts
  them only if they are exactly what :meth:`~CanonicalDocument.to_canonical_bytes`
  produces for the parsed document, so ``document_id()`` always equals the
  SHA-256 of the bytes that were signed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from dure.policies.canonical import JsonValue, canonical_bytes, parse_canonical, parse_json
from dure.policies.encoding import HexDigest, sha256, to_hex
from dure.policies.errors import DocumentError

__all__ = ["CanonicalDocument"]

_MAX_REPORTED = 5
_HINTS = {
    "extra_forbidden": "Remove the unknown field {path!r}: {kind} documents accept only the "
    "fields listed in docs/policy-language.md.",
    "missing": "Add the required field {path!r} (see docs/policy-language.md).",
}


class CanonicalDocument(BaseModel):
    """A frozen, strictly validated document with one canonical byte form.

    Subclasses set :attr:`document_kind` (used in messages) and declare their
    fields; unknown fields are refused (``extra="forbid"``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    document_kind: ClassVar[str] = "document"

    @classmethod
    def from_value(cls, value: JsonValue, *, source: str = "<document>") -> Self:
        """Validate an already parsed JSON value.

        Raises
        ------
        DocumentError
            If the value is not an object or does not match the document's
            schema; the message names ``source``, each failing field path and
            the value found there.
        """
        if not isinstance(value, Mapping):
            raise DocumentError(
                f"{source}: a {cls.document_kind} must be a JSON object, got {type(value).__name__}"
            )
        try:
            return cls.model_validate(value)
        except ValidationError as exc:
            raise _translate(exc, source, cls.document_kind) from exc

    @classmethod
    def from_json_bytes(cls, data: bytes, *, source: str = "<document>") -> Self:
        """Parse UTF-8 JSON strictly, then validate it (see :meth:`from_value`).

        Raises
        ------
        EncodingError
            If ``data`` is not strict JSON (duplicate keys, floats, not UTF-8…).
        DocumentError
            If the JSON does not describe a valid document.
        """
        return cls.from_value(parse_json(data), source=source)

    @classmethod
    def from_canonical_bytes(cls, data: bytes, *, source: str = "<document>") -> Self:
        """Parse signed bytes, which must be exactly this document's canonical form.

        Raises
        ------
        EncodingError
            If ``data`` is not strict RFC 8785 canonical JSON.
        DocumentError
            If it is not a valid document, or if Dure would serialise the
            parsed document differently (for example an optional field was
            left out), which would give the document two identities.
        """
        value = parse_canonical(data)
        document = cls.from_value(value, source=source)
        if document.to_canonical_bytes() != data:
            raise DocumentError(
                f"{source}: the {cls.document_kind} is canonical JSON but not in Dure's "
                f"full form; differing top-level fields: {_differing(value, document)}",
                hint="Produce the document with Dure (from_json_bytes, then "
                "to_canonical_bytes) before signing it; its id is the SHA-256 of those bytes.",
            )
        return document

    def to_json_value(self) -> dict[str, JsonValue]:
        """Return the document as JSON values (every field present, aliases as keys)."""
        value: dict[str, JsonValue] = self.model_dump(mode="json", by_alias=True)
        return value

    def to_canonical_bytes(self) -> bytes:
        """Return the RFC 8785 canonical bytes of the document, the bytes that are signed."""
        return canonical_bytes(self.to_json_value())

    def __hash__(self) -> int:
        """Hash the canonical bytes, so documents with unhashable fields hash too."""
        return hash(self.to_canonical_bytes())

    def document_id(self) -> HexDigest:
        """Return the document's id: the SHA-256 of its canonical bytes, in lowercase hex."""
        return to_hex(sha256(self.to_canonical_bytes()))


def _translate(exc: ValidationError, source: str, kind: str) -> DocumentError:
    errors = exc.errors(include_url=False)
    problems = [_problem(error) for error in errors[:_MAX_REPORTED]]
    more = len(errors) - _MAX_REPORTED
    if more > 0:
        problems.append(f"and {more} more")
    first = errors[0]
    template = _HINTS.get(first["type"])
    hint = template.format(path=_path(first["loc"]), kind=kind) if template else None
    return DocumentError(f"{source}: invalid {kind}: " + "; ".join(problems), hint=hint)


def _problem(error: Any) -> str:
    path = _path(error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if not path:
        return message
    if error["type"] == "extra_forbidden":
        return f"unknown field {path!r}"
    if error["type"] == "missing":
        return f"missing required field {path!r}"
    return f"{path}: {message} (got {_shorten(error.get('input'))})"


def _path(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _shorten(value: object) -> str:
    try:
        text = repr(value)
    except ValueError:  # an integer past Python's 4,300-digit conversion limit
        return "<a value too large to show>"
    return text if len(text) <= 60 else text[:57] + "..."


def _differing(value: JsonValue, document: CanonicalDocument) -> str:
    produced = document.to_json_value()
    given = value if isinstance(value, Mapping) else {}
    keys = sorted(key for key in set(produced) | set(given) if produced.get(key) != given.get(key))
    return ", ".join(keys) or "(value spellings)"
