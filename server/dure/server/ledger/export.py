"""Export the ledger to a folder anyone can verify offline, and verify such a folder.

An export holds three files, each written atomically (a temporary file in the same
folder, flushed to disk, then renamed over the old one):

``entries.jsonl``
    one ``{"index": i, "entry": "<base64 of the exact leaf bytes>"}`` per line,
    ``i`` from 0, in order, for every entry the checkpoint covers;
``checkpoint``
    the latest signed checkpoint note (C2SP tlog-checkpoint), verbatim, with
    the witness cosignatures the coordinator stored for it appended (SQL
    ledgers; see :mod:`dure.server.ledger.publication`);
``public-key``
    the ledger's note verifier key ``name+keyid+base64`` (informational: a
    verifier pins the key it trusts, it does not take it from the export).

Entries appended after the latest checkpoint are left out: they are not yet
signed.  :func:`verify_export` recomputes the RFC 9162 root of the entries with the
kernel and checks it against the checkpoint signed by the pinned key.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from dure.policies.canonical import parse_json
from dure.policies.checkpoint import Checkpoint, open_checkpoint
from dure.policies.encoding import b64decode, b64encode
from dure.policies.entries import LedgerEntry
from dure.policies.errors import DocumentError, EncodingError
from dure.policies.note import Ed25519Verifier
from dure.policies.tree import MerkleTree
from dure.server.ledger.errors import LedgerError, LedgerExportError
from dure.server.ledger.publication import with_stored_cosignatures
from dure.server.ledger.sql import SqlLedgerStore
from dure.server.ledger.store import CORRUPT_HINT, LedgerStore

__all__ = [
    "CHECKPOINT_FILE",
    "ENTRIES_FILE",
    "PUBLIC_KEY_FILE",
    "ExportSummary",
    "VerifiedExport",
    "export_ledger",
    "verify_export",
]

ENTRIES_FILE = "entries.jsonl"
CHECKPOINT_FILE = "checkpoint"
PUBLIC_KEY_FILE = "public-key"
_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What :func:`export_ledger` wrote."""

    out: Path
    checkpoint: Checkpoint
    unsigned: int
    """Entries past the checkpoint, left out of the export."""
    entries: int
    """Lines written to ``entries.jsonl``: always the checkpoint's size."""


@dataclass(frozen=True, slots=True)
class VerifiedExport:
    """An export that verified: its checkpoint, entry counts by kind, key agreement."""

    checkpoint: Checkpoint
    kinds: dict[str, int]
    public_key_matches: bool


def export_ledger(store: LedgerStore, out: Path) -> ExportSummary:
    """Write ``store``'s entries, latest checkpoint and verifier key into folder ``out``.

    Raises
    ------
    LedgerError
        If the ledger has no signed checkpoint yet, an entry under it is missing or
        not bytes in the database (corruption: nothing is written), or ``out``
        cannot be written.
    """
    stored = store.latest_checkpoint()
    if stored is None:
        raise LedgerError(
            "the ledger has no signed checkpoint to export",
            hint="Let the coordinator sign one (it does after every round), then export.",
        )
    size = stored.checkpoint.size
    note = stored.note
    if isinstance(store, SqlLedgerStore):
        note = with_stored_cosignatures(store.engine, note)
    lines = _entry_lines(store, size)  # read (and checked) before anything is written
    try:
        out.mkdir(parents=True, exist_ok=True)
        _write_atomic(out / ENTRIES_FILE, lines)
        _write_atomic(out / PUBLIC_KEY_FILE, [stored.verifier_key.strip() + "\n"])
        _write_atomic(out / CHECKPOINT_FILE, [note])
    except OSError as exc:
        raise LedgerError(f"{out}: cannot write the export ({exc.strerror})") from exc
    return ExportSummary(out, stored.checkpoint, store.size() - size, len(lines))


def _entry_lines(store: LedgerStore, size: int) -> list[str]:
    lines: list[str] = []
    for start in range(0, size, _CHUNK):
        end = min(start + _CHUNK, size)
        rows = store.entries(start, end)
        if len(rows) != end - start:  # a store that does not check its rows itself
            raise LedgerError(
                f"ledger corrupt: entries [{start}, {end}) returned {len(rows)} rows",
                hint=CORRUPT_HINT,
            )
        for offset, entry in enumerate(rows):
            record = {"index": start + offset, "entry": b64encode(entry)}
            lines.append(json.dumps(record, separators=(",", ":")) + "\n")
    return lines


def _write_atomic(path: Path, chunks: list[str]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8", newline="\n") as handle:
            handle.writelines(chunks)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def verify_export(folder: Path, verifier_key: Ed25519Verifier | str) -> VerifiedExport:
    """Verify an export against the ledger key the caller trusts.

    Checks that the checkpoint is signed by ``verifier_key``, that the entries are
    numbered 0, 1, … in order, that each is the canonical bytes of a valid ledger
    entry, that there are exactly as many as the checkpoint's size, and that their
    RFC 9162 root is the checkpoint's root.

    Raises
    ------
    NoteError
        If the checkpoint is malformed or not signed by ``verifier_key``.
    LedgerExportError
        If a file is missing or malformed, or the entries do not match the checkpoint.
    """
    verifier = (
        Ed25519Verifier.from_vkey(verifier_key) if isinstance(verifier_key, str) else verifier_key
    )
    checkpoint = open_checkpoint(_read(folder / CHECKPOINT_FILE), verifier)
    tree, kinds = MerkleTree(), Counter[str]()
    for number, line in enumerate(_read(folder / ENTRIES_FILE).splitlines()):
        leaf, entry = _entry(line, number, folder / ENTRIES_FILE)
        tree.append(leaf)
        kinds[entry.kind] += 1
    if tree.size != checkpoint.size:
        raise LedgerExportError(
            f"{folder / ENTRIES_FILE}: {tree.size} entries but the checkpoint covers "
            f"{checkpoint.size}"
        )
    if tree.root() != checkpoint.root_hash:
        raise LedgerExportError(
            f"{folder / ENTRIES_FILE}: the entries' root {tree.root().hex()} is not the signed "
            f"root {checkpoint.root_hash.hex()}: the entries were altered"
        )
    key_file = folder / PUBLIC_KEY_FILE
    matches = key_file.exists() and _read(key_file).strip() == verifier.to_vkey()
    return VerifiedExport(checkpoint, dict(kinds), matches)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LedgerExportError(f"{path}: cannot read the export file ({exc})") from exc


def _entry(line: str, number: int, path: Path) -> tuple[bytes, LedgerEntry]:
    where = f"{path}:{number + 1}"
    try:
        record = parse_json(line.encode("utf-8"))
    except EncodingError as exc:  # malformed, too deep, an integer too long: one line each
        raise LedgerExportError(f"{where}: not a valid export line: {exc.message}") from exc
    if not isinstance(record, dict) or set(record) != {"index", "entry"}:
        raise LedgerExportError(f'{where}: expected {{"index", "entry"}}, got {line[:80]!r}')
    if record["index"] != number or type(record["index"]) is not int:
        raise LedgerExportError(f"{where}: index {record['index']!r}, expected {number}")
    if not isinstance(record["entry"], str):
        raise LedgerExportError(f"{where}: entry is not base64 text")
    try:
        leaf = b64decode(record["entry"])
        return leaf, LedgerEntry.from_bytes(leaf, source=where)
    except (EncodingError, DocumentError) as exc:
        raise LedgerExportError(f"{where}: not a valid ledger entry: {exc.message}") from exc
