"""Where the auditor reads the ledger: the coordinator's read API, or an export folder.

Both give the same four things (:class:`LedgerSource`): the latest signed
checkpoint, entries by index range, and (the API only) consistency and
inclusion proofs.  Nothing a source returns is trusted: the auditor checks
the checkpoint with the key it pinned and recomputes everything else.

The API routes are those of docs/ledger-format.md "Read API"::

    GET /v1/ledger/checkpoint                      -> signed note, text/plain
    GET /v1/ledger/entries?start=S&end=E           -> {"entries": [{"index", "entry"}]}
    GET /v1/ledger/proof/inclusion?index=I&size=N  -> {"index", "size", "hashes"}
    GET /v1/ledger/proof/consistency?first=M&second=N -> {"first", "second", "hashes"}

:class:`HttpLedgerSource` takes an ``httpx`` transport for tests
(``httpx.MockTransport``); every network or format problem becomes a
:class:`~dure.client.audit.errors.LedgerSourceError`.  JSON is parsed with the
kernel's strict :func:`~dure.policies.canonical.parse_json`, so a hostile answer
(nesting 100,000 deep, a 5,000-digit integer) is refused with a one-line reason,
never a ``RecursionError``.  A coordinator that answers, but with something that
is not a valid ledger answer (malformed JSON, a corrupt entry, an error status),
is reported as such, with a hint that it is not a network problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import httpx

from dure.client.audit.errors import LedgerSourceError
from dure.policies.canonical import JsonValue, parse_json
from dure.policies.encoding import b64decode, digest_from_b64
from dure.policies.errors import EncodingError

__all__ = [
    "MALFORMED_HINT",
    "ExportLedgerSource",
    "HttpLedgerSource",
    "LedgerSource",
    "open_client",
    "parse_proof",
    "problem_summary",
]

_CHECKPOINT_FILE, _ENTRIES_FILE = "checkpoint", "entries.jsonl"
_MAX_PROOF = 128
MALFORMED_HINT = (
    "The source answered, but not with a valid ledger (malformed or corrupt data); this is "
    "not a network problem. Do not trust it: keep the answer as evidence and alert the "
    "coordinator's operator and the consortium."
)
_SERVER_HINT = (
    "The coordinator answered with an error (its reason is above); this is not a network "
    "problem. Ask its operator to fix it (a 5xx names a fault on the coordinator's side), "
    "then audit again."
)


class LedgerSource(Protocol):
    """A place to read the ledger from; it is verified, never trusted."""

    @property
    def description(self) -> str:
        """What the source is, for messages (a URL or a folder)."""
        ...

    def checkpoint(self) -> str:
        """Return the latest signed checkpoint note."""
        ...

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """Return ``(index, leaf bytes)`` for entries ``start`` to ``end - 1``, as served."""
        ...

    def consistency_proof(self, first: int, second: int) -> list[bytes] | None:
        """Return the served consistency proof, or ``None`` if the source serves none."""
        ...

    def inclusion_proof(self, index: int, size: int) -> list[bytes] | None:
        """Return the served inclusion proof, or ``None`` if the source serves none."""
        ...


def parse_proof(value: object, where: str, expect: dict[str, int]) -> list[bytes]:
    """Return the hashes of a proof object ``{..., "hashes": [base64]}``, checked.

    ``expect`` holds the fields that must echo the request (``first``, ``second``…).

    Raises
    ------
    LedgerSourceError
        If the object is malformed, echoes other sizes, or a hash is not 32 bytes.
    """
    if not isinstance(value, dict) or set(value) != {*expect, "hashes"}:
        raise LedgerSourceError(
            f"{where}: expected an object with {sorted(expect)} and hashes", hint=MALFORMED_HINT
        )
    for name, number in expect.items():
        if value[name] != number or type(value[name]) is not int:
            raise LedgerSourceError(
                f"{where}: {name} is {value[name]!r}, asked for {number}", hint=MALFORMED_HINT
            )
    hashes = value["hashes"]
    if (
        not isinstance(hashes, list)
        or len(hashes) > _MAX_PROOF
        or not all(isinstance(h, str) for h in hashes)
    ):
        raise LedgerSourceError(
            f"{where}: hashes must be a list of at most {_MAX_PROOF} strings", hint=MALFORMED_HINT
        )
    try:
        return [bytes(digest_from_b64(h)) for h in hashes]
    except EncodingError as exc:
        raise LedgerSourceError(
            f"{where}: a proof hash is not base64 of 32 bytes", hint=MALFORMED_HINT
        ) from exc


class HttpLedgerSource:
    """The coordinator's read API at ``base_url`` (``transport`` injected for tests)."""

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._client = open_client(self._base, transport, timeout)

    @property
    def description(self) -> str:
        """The base URL."""
        return self._base

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def __enter__(self) -> HttpLedgerSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def checkpoint(self) -> str:
        """``GET /v1/ledger/checkpoint``."""
        return self._get("/v1/ledger/checkpoint", {}).text

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """``GET /v1/ledger/entries?start=S&end=E``."""
        where = f"{self._base}/v1/ledger/entries?start={start}&end={end}"
        value = self._json("/v1/ledger/entries", {"start": start, "end": end})
        items = value.get("entries") if isinstance(value, dict) else None
        if not isinstance(items, list):
            raise LedgerSourceError(f"{where}: expected {{'entries': [...]}}", hint=MALFORMED_HINT)
        return [_entry(item, f"{where} item {n}") for n, item in enumerate(items)]

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """``GET /v1/ledger/proof/consistency?first=M&second=N``."""
        expect = {"first": first, "second": second}
        value = self._json("/v1/ledger/proof/consistency", expect)
        return parse_proof(value, f"{self._base} consistency proof {first}->{second}", expect)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """``GET /v1/ledger/proof/inclusion?index=I&size=N``."""
        expect = {"index": index, "size": size}
        value = self._json("/v1/ledger/proof/inclusion", expect)
        return parse_proof(value, f"{self._base} inclusion proof {index}@{size}", expect)

    def _json(self, path: str, params: dict[str, int]) -> JsonValue:
        response = self._get(path, params)
        try:
            return parse_json(response.content)
        except EncodingError as exc:
            raise LedgerSourceError(
                f"{response.url}: the answer is not valid JSON: {exc.message}", hint=MALFORMED_HINT
            ) from exc

    def _get(self, path: str, params: dict[str, int]) -> httpx.Response:
        try:
            response = self._client.get(path, params=params)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise LedgerSourceError(f"{self._base}{path}: request failed ({exc})") from exc
        if response.status_code != 200:
            raise LedgerSourceError(
                f"{response.url}: the coordinator answered HTTP {response.status_code}: "
                f"{problem_summary(response)}",
                hint=_SERVER_HINT,
            )
        return response


def open_client(
    base_url: str, transport: httpx.BaseTransport | None, timeout: float
) -> httpx.Client:
    """Return an HTTP client for ``base_url``; a malformed URL is a :class:`LedgerSourceError`."""
    try:
        return httpx.Client(base_url=base_url, transport=transport, timeout=timeout)
    except httpx.InvalidURL as exc:
        raise LedgerSourceError(
            f"{base_url[:200]!r} is not a URL ({exc})",
            hint="Give the coordinator's base URL, e.g. https://coordinator.example:8443.",
        ) from exc


def problem_summary(response: httpx.Response) -> str:
    """Return ``code: detail`` of a problem document, else the start of the body (quoted)."""
    try:
        value = parse_json(response.content)
    except EncodingError:
        return repr(response.text[:200])
    if isinstance(value, dict) and "code" in value:
        return f"{str(value.get('code'))[:100]}: {str(value.get('detail'))[:300]}"
    return repr(response.text[:200])


def _entry(item: object, where: str) -> tuple[int, bytes]:
    if not isinstance(item, dict) or set(item) != {"index", "entry"}:
        raise LedgerSourceError(f'{where}: expected {{"index", "entry"}}', hint=MALFORMED_HINT)
    index, entry = item["index"], item["entry"]
    if type(index) is not int or not isinstance(entry, str):
        raise LedgerSourceError(
            f"{where}: index must be an integer and entry base64 text", hint=MALFORMED_HINT
        )
    try:
        return index, b64decode(entry)
    except EncodingError as exc:
        raise LedgerSourceError(
            f"{where}: entry {index} is not base64", hint=MALFORMED_HINT
        ) from exc


class ExportLedgerSource:
    """A folder written by ``dure coordinator ledger export`` (it serves no proofs)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._entries: list[tuple[int, bytes]] | None = None

    @property
    def description(self) -> str:
        """The folder."""
        return str(self.folder)

    def checkpoint(self) -> str:
        """The ``checkpoint`` file."""
        return _read(self.folder / _CHECKPOINT_FILE)

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """Lines ``start`` to ``end - 1`` of ``entries.jsonl`` (by position in the file)."""
        if self._entries is None:
            self._entries = self._load()
        return self._entries[start:end]

    def consistency_proof(self, first: int, second: int) -> list[bytes] | None:
        """An export serves no proofs."""
        return None

    def inclusion_proof(self, index: int, size: int) -> list[bytes] | None:
        """An export serves no proofs."""
        return None

    def _load(self) -> list[tuple[int, bytes]]:
        path = self.folder / _ENTRIES_FILE
        found = []
        for number, line in enumerate(_read(path).splitlines(), start=1):
            try:
                item = parse_json(line.encode("utf-8"))
            except EncodingError as exc:
                raise LedgerSourceError(
                    f"{path}:{number}: not a valid export line: {exc.message}", hint=MALFORMED_HINT
                ) from exc
            found.append(_entry(item, f"{path}:{number}"))
        return found


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LedgerSourceError(f"{path}: cannot read the export file ({exc})") from exc
