"""Proofs from an in-memory copy of the ledger's tree, synced from the database by size.

A ledger stores its tree as the hashes of complete perfect subtrees, node
``(level, index)`` covering leaves ``[index·2^level, (index+1)·2^level)``
(:mod:`dure.policies.tree`).  Such a node never changes once stored, and a proof
for a tree of ``size`` entries reads only nodes that lie inside ``[0, size)``.
:class:`CachedProofs` therefore keeps every stored node of the first
``cached`` entries in memory (one ``bytearray`` per level, 32 bytes a node,
about 64 bytes an entry) and answers a proof whose size is at most ``cached``
without the database, exactly as the store would: the same nodes, the same pure
:func:`~dure.policies.tree.inclusion_path` / :func:`~dure.policies.tree.consistency_path`.

A request naming a larger size *syncs* the copy first: one statement reads the
ledger's size, one more the nodes the new entries completed, checked complete
and well formed (the append that raised the size committed them in the same
transaction, so they are visible).  Only then is ``cached`` raised, so a proof
never reads a node that is not loaded, however the ledger grows meanwhile.
While one sync runs, other requests beyond ``cached`` (and any request past
``max_entries``, the memory bound, or past the ledger's size) go to the
wrapped reader, which answers from the database in one round trip and refuses
what it refuses.  The app starts loading the whole copy at startup (seconds for a
million entries; until it is loaded the database answers), else the first
request does; a failed or interrupted sync leaves ``cached`` as it was
(a failed one is logged, and for a second the database answers alone).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from dure.policies.encoding import DIGEST_SIZE, Digest
from dure.policies.errors import DureError
from dure.policies.tree import consistency_path, inclusion_path
from dure.server.storage.errors import StorageError

__all__ = ["CachedProofs", "NodeSource", "checked_runs", "node_runs"]

MAX_ENTRIES = 1 << 22
"""Default bound: 4,194,304 entries, about 256 MiB of hashes per worker."""
_CHUNK = 1 << 16  # nodes per run read (2 MiB): keeps each statement and each await short
_RETRY_S = 1.0  # after a failed sync, the database answers alone this long
_log = logging.getLogger("dure.server.api")


class NodeSource(Protocol):
    """A database proof reader that also reads the ledger's size and runs of stored nodes."""

    async def inclusion(self, index: int, size: int) -> list[Digest]:
        """The RFC 9162 inclusion proof of ``index`` in the tree of ``size``."""
        ...

    async def consistency(self, first: int, second: int) -> list[Digest]:
        """The RFC 9162 consistency proof from ``first`` to ``second``."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...

    async def warm(self) -> None:
        """Nothing to load (a database reader)."""
        ...

    async def ledger_size(self) -> int:
        """The ledger's current number of entries."""
        ...

    async def node_runs(self, runs: list[tuple[int, int, int]]) -> list[bytes]:
        """For each ``(level, lo, hi)``, the hashes of nodes ``lo..hi-1`` of that level, joined.

        Raises
        ------
        StorageError
            If a node is missing or not 32 bytes, or the database fails.
        """
        ...


def node_runs(cached: int, size: int) -> list[tuple[int, int, int]]:
    """The ``(level, lo, hi)`` runs of nodes complete at ``size`` but not at ``cached``.

    Node ``(level, i)`` is complete at ``n`` entries when ``i < n >> level``; runs
    are cut to at most ``_CHUNK`` nodes.
    """
    runs = []
    level = 0
    while size >> level:
        lo, hi = cached >> level, size >> level
        runs += [(level, a, min(a + _CHUNK, hi)) for a in range(lo, hi, _CHUNK)]
        level += 1
    return runs


class CachedProofs:
    """A :class:`~dure.server.api.proofs.ProofReader` answering from memory (module doc).

    Parameters
    ----------
    source
        The database reader: answers what memory does not, and feeds the copy.
    max_entries
        Keep at most this many entries' nodes in memory.
    """

    def __init__(self, source: NodeSource, *, max_entries: int = MAX_ENTRIES) -> None:
        self._source = source
        self._max = max_entries
        self._levels: list[bytearray] = []
        self._cached = 0
        self._syncing = False
        self._retry_at = 0.0

    @property
    def cached(self) -> int:
        """How many entries' nodes are in memory: proofs up to this size need no database."""
        return self._cached

    async def inclusion(self, index: int, size: int) -> list[Digest]:
        """See :meth:`ProofReader.inclusion`."""
        if await self._covers(size):
            return inclusion_path(self._node, index, size)
        return await self._source.inclusion(index, size)

    async def consistency(self, first: int, second: int) -> list[Digest]:
        """See :meth:`ProofReader.consistency`."""
        if await self._covers(second):
            return consistency_path(self._node, first, second)
        return await self._source.consistency(first, second)

    async def close(self) -> None:
        """Close the source's connections (the copy stays usable)."""
        await self._source.close()

    async def warm(self) -> None:
        """Load the copy now (the app does at startup); a failure is logged, not raised."""
        await self._covers(self._max)

    async def sync(self) -> int:
        """Load the nodes of entries appended since the last sync; return the ledger's size."""
        self._syncing = True
        try:
            size = await self._source.ledger_size()
            target = min(size, self._max)
            if target > self._cached:
                await self._load(target)
            return size
        finally:
            self._syncing = False

    async def _covers(self, size: int) -> bool:
        if size <= self._cached:
            return True
        if self._syncing or self._cached >= self._max or time.monotonic() < self._retry_at:
            return False
        try:
            await self.sync()
        except DureError as exc:  # the database reader answers, and fails, on its own
            _log.error("proof cache: sync from %d entries failed: %s", self._cached, exc.message)
            self._retry_at = time.monotonic() + _RETRY_S
            return False
        return size <= self._cached

    async def _load(self, target: int) -> None:
        cached, levels = self._cached, self._levels
        for level, run in enumerate(levels):  # drop what an interrupted sync left
            del run[(cached >> level) * DIGEST_SIZE :]
        for batch in _batches(node_runs(cached, target)):
            for (level, lo, hi), hashes in zip(
                batch, await self._source.node_runs(batch), strict=True
            ):
                while len(levels) <= level:
                    levels.append(bytearray())
                if len(levels[level]) != lo * DIGEST_SIZE or len(hashes) != (hi - lo) * DIGEST_SIZE:
                    raise StorageError(f"ledger nodes ({level}, {lo}..{hi - 1}) did not load whole")
                levels[level] += hashes
        self._cached = target

    def _node(self, level: int, index: int) -> bytes:
        offset = index * DIGEST_SIZE
        return bytes(self._levels[level][offset : offset + DIGEST_SIZE])


def _batches(runs: list[tuple[int, int, int]]) -> list[list[tuple[int, int, int]]]:
    """Group runs into statements of at most ``_CHUNK`` nodes each."""
    batches: list[list[tuple[int, int, int]]] = [[]]
    total = 0
    for run in runs:
        if batches[-1] and total + run[2] - run[1] > _CHUNK:
            batches.append([])
            total = 0
        batches[-1].append(run)
        total += run[2] - run[1]
    return batches


def checked_runs(
    runs: list[tuple[int, int, int]], read: Callable[[int, int, int], list[bytes]]
) -> list[bytes]:
    """Join each run's hashes as read by ``read``; refuse a missing or malformed node."""
    joined = []
    for level, lo, hi in runs:
        hashes = read(level, lo, hi)
        if len(hashes) != hi - lo or any(len(h) != DIGEST_SIZE for h in hashes):
            raise StorageError(f"ledger nodes ({level}, {lo}..{hi - 1}) are missing or malformed")
        joined.append(b"".join(hashes))
    return joined
