"""The storage contract of the audit ledger, and the checkpoint rule every store applies.

A :class:`LedgerStore` keeps an append-only RFC 9162 Merkle log: the entries (the
exact leaf bytes), the hashes of its perfect subtrees (so roots and proofs for any
past size are O(log n) look-ups, computed with the kernel's pure functions in
:mod:`dure.policies.tree`), and the log's signed checkpoints.  One contract test
suite (``tests/contract/ledger/``) runs against every implementation:
:class:`~dure.server.ledger.memory.MemoryLedgerStore` and
:class:`~dure.server.ledger.sql.SqlLedgerStore` on SQLite and PostgreSQL.

Stores are self-contained drivers; the only shared logic is pure
(:func:`admit_checkpoint` here, the Merkle math in the kernel).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from dure.policies.checkpoint import Checkpoint, check_consistent, open_checkpoint
from dure.policies.encoding import Digest
from dure.policies.errors import ProofError
from dure.policies.note import Ed25519Verifier
from dure.policies.tree import GetNode, consistency_path, tree_root
from dure.server.ledger.errors import LedgerConflictError, LedgerError, LedgerRangeError

__all__ = [
    "CORRUPT_HINT",
    "LedgerStore",
    "StoredCheckpoint",
    "admit_checkpoint",
    "check_range",
    "checked_rows",
]

CORRUPT_HINT = (
    "The ledger's database was altered or damaged outside the coordinator: stop the "
    "coordinator, restore the database from a backup or a verified export, and alert the "
    "consortium; never export or serve it as it is."
)


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """A signed checkpoint note as stored, the verifier key it was checked with, its body."""

    note: str
    verifier_key: str
    checkpoint: Checkpoint


class LedgerStore(Protocol):
    """Append-only storage of one RFC 9162 Merkle log and its signed checkpoints.

    Appending (the lifecycle every implementation follows):

    1. ``append`` MUST be atomic: either every entry of the batch is stored, with
       its leaf hash and every tree node it completes, or none is.
    2. Appends MUST be serialised across every writer that shares the storage
       (threads, API workers, processes, machines): the entries of one batch get
       consecutive indices starting at the returned index, no index is ever
       skipped, duplicated or reused, and the log never forks.
    3. ``append`` MUST return only after the batch is durable; a caller that got
       an index may hand out a receipt for it.
    4. Implementations SHOULD retry transient failures (lock timeouts,
       serialisation failures) a bounded number of times, then raise
       :class:`~dure.server.ledger.errors.LedgerError`.
    5. Appending one entry SHOULD cost O(log n) node writes, and a batch of ``k``
       entries SHOULD be one transaction.

    Reading: indices start at 0; ``entries`` and ``leaf_hashes`` take
    ``start`` inclusive, ``end`` exclusive and MUST raise
    :class:`~dure.server.ledger.errors.LedgerRangeError` unless
    ``0 <= start <= end <= size()``.  ``root``, ``inclusion_proof`` and
    ``consistency_proof`` MUST return exactly what RFC 9162 §2.1 defines for any
    past size (the kernel's :mod:`dure.policies.merkle` is the reference) and
    MUST raise :class:`~dure.policies.merkle.ProofRequestError` for a size past
    ``size()`` or an index or pair of sizes RFC 9162 has no proof for.

    Checkpoints: ``put_checkpoint`` MUST apply :func:`admit_checkpoint` and the
    write in one serialised step (no append or other checkpoint in between), so
    it refuses a note that is not signed by the given key, describes a tree
    this log does not have, is smaller than the stored checkpoint, comes from
    another origin, or is inconsistent with it.  A note of the same size and root
    (for example with witness cosignatures added) replaces the stored one.
    """

    def append(self, entries: Sequence[bytes]) -> int:
        """Append ``entries`` atomically and return the index of the first one.

        An empty batch appends nothing and returns the current size.
        """
        ...

    def size(self) -> int:
        """Return the number of entries in the log."""
        ...

    def entries(self, start: int, end: int) -> list[bytes]:
        """Return the leaf bytes of entries ``start`` to ``end - 1``, in order."""
        ...

    def leaf_hashes(self, start: int, end: int) -> list[Digest]:
        """Return the leaf hashes of entries ``start`` to ``end - 1``, in order."""
        ...

    def node(self, level: int, index: int) -> bytes:
        """Return the hash of complete perfect subtree ``(level, index)`` (a ``GetNode``)."""
        ...

    def root(self, size: int) -> Digest:
        """Return the root hash the log had at ``size`` entries."""
        ...

    def inclusion_proof(self, index: int, size: int) -> list[Digest]:
        """Return the RFC 9162 inclusion proof of entry ``index`` in the tree of ``size``."""
        ...

    def consistency_proof(self, first: int, second: int) -> list[Digest]:
        """Return the RFC 9162 consistency proof from size ``first`` to ``second``."""
        ...

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        """Return the last stored checkpoint, or ``None`` if none was stored yet."""
        ...

    def put_checkpoint(self, note: str, verifier_key: str) -> StoredCheckpoint:
        """Check ``note`` with :func:`admit_checkpoint`, store it and return it."""
        ...


def check_range(start: int, end: int, size: int) -> None:
    """Raise :class:`LedgerRangeError` unless ``0 <= start <= end <= size``."""
    if not 0 <= start <= end <= size:
        raise LedgerRangeError(f"entries [{start}, {end}) are outside the ledger of {size} entries")


def checked_rows(
    rows: Sequence[tuple[int, object]], start: int, end: int, what: str
) -> list[bytes]:
    """Return the values of rows ``(index, value)`` read for ``[start, end)``, checked.

    A store reads rows it wrote itself; one missing under the head or a value that
    is not bytes means the database was altered behind the ledger's back, and every
    reader fails closed rather than serve or export a log with a hole in it.

    Raises
    ------
    LedgerError
        If an index in ``[start, end)`` is missing (naming the first one) or a
        value is not bytes (naming its index and the type stored).
    """
    values: list[bytes] = []
    for expected, (index, value) in enumerate(rows, start):
        if index != expected:
            break
        if not isinstance(value, bytes | bytearray | memoryview):
            raise LedgerError(
                f"ledger corrupt: the {what} of entry {index} is stored as "
                f"{type(value).__name__}, not bytes",
                hint=CORRUPT_HINT,
            )
        values.append(bytes(value))
    if len(values) != end - start:
        raise LedgerError(
            f"ledger corrupt: entry {start + len(values)} is missing from the database, "
            f"below its head (entries [{start}, {end}) asked)",
            hint=CORRUPT_HINT,
        )
    return values


def admit_checkpoint(
    note: str,
    verifier_key: str,
    previous: StoredCheckpoint | None,
    size: int,
    get_node: GetNode,
) -> StoredCheckpoint:
    """Decide whether a signed checkpoint may be stored on top of ``previous``.

    Parameters
    ----------
    note
        The signed checkpoint note (C2SP tlog-checkpoint).
    verifier_key
        The log's note verifier key ``name+keyid+base64``; the note must carry a
        valid signature by it.
    previous
        The stored checkpoint, if any.
    size, get_node
        The log's current size and its perfect-subtree hashes.

    Raises
    ------
    NoteError
        If the key or the note is malformed, or the note is not signed by the key.
    LedgerConflictError
        If the checkpoint is past the log's size, its root is not the log's root at
        its size, or it does not extend ``previous`` (other origin, smaller size,
        failed consistency proof).
    """
    checkpoint = open_checkpoint(note, Ed25519Verifier.from_vkey(verifier_key))
    if checkpoint.size > size:
        raise LedgerConflictError(
            f"checkpoint of size {checkpoint.size} is past the log's {size} entries"
        )
    root = tree_root(get_node, checkpoint.size)
    if root != checkpoint.root_hash:
        raise LedgerConflictError(
            f"checkpoint root {checkpoint.root_hash.hex()} at size {checkpoint.size} is not "
            f"this log's root {root.hex()}"
        )
    if previous is not None:
        _check_extends(previous.checkpoint, checkpoint, get_node)
    return StoredCheckpoint(note, verifier_key, checkpoint)


def _check_extends(old: Checkpoint, new: Checkpoint, get_node: GetNode) -> None:
    proof = consistency_path(get_node, old.size, new.size) if 0 < old.size <= new.size else []
    try:
        check_consistent(old, new, proof)
    except ProofError as exc:
        raise LedgerConflictError(
            f"checkpoint of size {new.size} does not extend the stored checkpoint of size "
            f"{old.size}: {exc.message}"
        ) from exc
