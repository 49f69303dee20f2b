"""An in-memory ledger store, for tests, simulations and as the contract's reference."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from dure.policies.encoding import Digest
from dure.policies.tree import MerkleTree
from dure.server.ledger.store import StoredCheckpoint, admit_checkpoint, check_range

__all__ = ["MemoryLedgerStore"]


class MemoryLedgerStore:
    """A :class:`~dure.server.ledger.store.LedgerStore` kept in this process's memory.

    Backed by the kernel's :class:`~dure.policies.tree.MerkleTree`; one lock
    serialises appends, reads and checkpoint writes between threads.  Nothing survives
    the process.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tree = MerkleTree()
        self._entries: list[bytes] = []
        self._checkpoint: StoredCheckpoint | None = None

    def append(self, entries: Sequence[bytes]) -> int:
        """Append ``entries`` and return the index of the first one."""
        batch = [bytes(entry) for entry in entries]
        with self._lock:
            first = self._tree.size
            for entry in batch:
                self._tree.append(entry)
            self._entries.extend(batch)
            return first

    def size(self) -> int:
        """Return the number of entries."""
        return self._tree.size

    def entries(self, start: int, end: int) -> list[bytes]:
        """Return entries ``start`` to ``end - 1``."""
        with self._lock:
            check_range(start, end, len(self._entries))
            return self._entries[start:end]

    def leaf_hashes(self, start: int, end: int) -> list[Digest]:
        """Return the leaf hashes of entries ``start`` to ``end - 1``."""
        with self._lock:
            check_range(start, end, self._tree.size)
            return [self._tree.leaf_hash_at(i) for i in range(start, end)]

    def node(self, level: int, index: int) -> bytes:
        """Return the hash of complete perfect subtree ``(level, index)``."""
        with self._lock:
            return self._tree.node(level, index)

    def root(self, size: int) -> Digest:
        """Return the root at ``size`` entries."""
        with self._lock:
            return self._tree.root_at(size)

    def inclusion_proof(self, index: int, size: int) -> list[Digest]:
        """Return the inclusion proof of ``index`` in the tree of ``size``."""
        with self._lock:
            return self._tree.inclusion_proof(index, size)

    def consistency_proof(self, first: int, second: int) -> list[Digest]:
        """Return the consistency proof from ``first`` to ``second``."""
        with self._lock:
            return self._tree.consistency_proof(first, second)

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        """Return the last stored checkpoint."""
        return self._checkpoint

    def put_checkpoint(self, note: str, verifier_key: str) -> StoredCheckpoint:
        """Store ``note`` if :func:`admit_checkpoint` accepts it."""
        with self._lock:
            stored = admit_checkpoint(
                note, verifier_key, self._checkpoint, self._tree.size, self._tree.node
            )
            self._checkpoint = stored
            return stored
