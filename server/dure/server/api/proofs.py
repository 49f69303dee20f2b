"""Inclusion and consistency proofs for the ledger read API, without blocking the event loop.

The proof routes are the API's hot path (receipts, witnesses and auditors all
call them).  :class:`PostgresProofs` answers each proof in **one** round trip on
its own small pool of asynchronous psycopg connections (autocommit, statements
prepared by the server): the kernel's pure
:func:`~dure.policies.tree.inclusion_path` /
:func:`~dure.policies.tree.consistency_path` first run over placeholder hashes
to learn which perfect-subtree nodes they read (they choose nodes from the sizes
alone), then one statement fetches the ledger's size and exactly those nodes, in
one snapshot, and the algorithm runs again on the real hashes.  Other databases
(SQLite) use :class:`ThreadedProofs`, the ledger store's own methods in a worker
thread.  Both answer exactly what
:class:`~dure.server.ledger.store.LedgerStore` answers, and both also feed
:class:`~dure.server.api.proof_cache.CachedProofs` (the ledger's size, runs of
stored nodes), which :func:`proof_reader` puts in front of them: proofs from
memory, the database for what memory does not hold (``DURE_PROOF_CACHE_ENTRIES``
bounds the copy; ``0`` turns it off).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool

from dure.policies.encoding import Digest
from dure.policies.errors import DocumentError
from dure.policies.merkle import ProofRequestError
from dure.policies.tree import GetNode, consistency_path, inclusion_path
from dure.server.api.proof_cache import MAX_ENTRIES, CachedProofs, NodeSource, checked_runs
from dure.server.ledger.sql import SqlLedgerStore
from dure.server.ledger.store import LedgerStore
from dure.server.storage.errors import StorageError

__all__ = ["CACHE_VARIABLE", "PostgresProofs", "ProofReader", "ThreadedProofs", "proof_reader"]

CACHE_VARIABLE = "DURE_PROOF_CACHE_ENTRIES"

T = TypeVar("T")
_PLACEHOLDER = bytes(32)
# One snapshot: the head row (level -1 carries the size) and the wanted nodes.
_QUERY = (
    "SELECT -1::smallint, size, NULL::bytea FROM dure_ledger_head WHERE id = 1 "
    "UNION ALL SELECT n.level, n.idx, n.hash FROM dure_ledger_node n "
    "JOIN unnest(%s::smallint[], %s::bigint[]) AS w(level, idx) "
    "ON n.level = w.level AND n.idx = w.idx"
)
_SIZE = "SELECT size FROM dure_ledger_head WHERE id = 1"
# Runs of nodes, each joined in index order; only well-formed hashes are counted.
_RUNS = (
    "SELECT w.n, count(x.hash), string_agg(x.hash, ''::bytea ORDER BY x.idx) "
    "FROM unnest(%s::int[], %s::smallint[], %s::bigint[], %s::bigint[]) AS w(n, level, lo, hi) "
    "LEFT JOIN dure_ledger_node x ON x.level = w.level AND x.idx >= w.lo AND x.idx < w.hi "
    "AND length(x.hash) = 32 GROUP BY w.n ORDER BY w.n"
)
_RUN = text(
    "SELECT hash FROM dure_ledger_node WHERE level = :level AND idx >= :lo AND idx < :hi "
    "ORDER BY idx"
)


class ProofReader(Protocol):
    """Proofs of the ledger, awaited by the read routes."""

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
        """Load what makes later proofs fast (called once at startup; never raises)."""
        ...


class ThreadedProofs:
    """The ledger store's proofs, each in a worker thread (any database)."""

    def __init__(self, store: LedgerStore, engine: Engine | None = None) -> None:
        self._store = store
        self._engine = engine

    async def inclusion(self, index: int, size: int) -> list[Digest]:
        """See :meth:`ProofReader.inclusion`."""
        return await run_in_threadpool(self._store.inclusion_proof, index, size)

    async def consistency(self, first: int, second: int) -> list[Digest]:
        """See :meth:`ProofReader.consistency`."""
        return await run_in_threadpool(self._store.consistency_proof, first, second)

    async def close(self) -> None:
        """Nothing to release: the store's engine belongs to the services."""

    async def warm(self) -> None:
        """Nothing to load."""

    async def ledger_size(self) -> int:
        """The ledger's number of entries."""
        return await run_in_threadpool(self._store.size)

    async def node_runs(self, runs: list[tuple[int, int, int]]) -> list[bytes]:
        """See :meth:`~dure.server.api.proof_cache.NodeSource.node_runs` (a SQL engine needed)."""
        engine = self._engine
        if engine is None:
            raise StorageError("this ledger store has no SQL engine to read nodes from")

        def read(level: int, lo: int, hi: int) -> list[bytes]:
            with engine.connect() as conn:
                rows = conn.execute(_RUN, {"level": level, "lo": lo, "hi": hi})
                return [bytes(row[0]) for row in rows]

        return await run_in_threadpool(checked_runs, runs, read)


class PostgresProofs:
    """One-round-trip proofs on PostgreSQL over a small pool of async connections.

    Parameters
    ----------
    conninfo
        A libpq connection string or ``postgresql://`` URI.
    connections
        How many connections at most (opened on first use).
    """

    def __init__(self, conninfo: str, *, connections: int = 8) -> None:
        self._conninfo = conninfo
        self._size = connections
        self._idle: list[Any] = []
        self._open = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: asyncio.Condition | None = None

    async def inclusion(self, index: int, size: int) -> list[Digest]:
        """See :meth:`ProofReader.inclusion`."""
        return await self._prove(size, lambda get: inclusion_path(get, index, size))

    async def consistency(self, first: int, second: int) -> list[Digest]:
        """See :meth:`ProofReader.consistency`."""
        return await self._prove(second, lambda get: consistency_path(get, first, second))

    async def ledger_size(self) -> int:
        """The ledger's number of entries (one statement)."""
        rows = await self._fetch(_SIZE, ())
        if not rows:
            raise StorageError("the ledger has no head row; create its schema first")
        return int(rows[0][0])

    async def node_runs(self, runs: list[tuple[int, int, int]]) -> list[bytes]:
        """See :meth:`~dure.server.api.proof_cache.NodeSource.node_runs` (one statement)."""
        columns = [list(range(len(runs)))] + [list(column) for column in zip(*runs, strict=True)]
        rows = await self._fetch(_RUNS, tuple(columns), binary=True)
        joined = []
        for (level, lo, hi), (_, count, hashes) in zip(runs, rows, strict=True):
            if count != hi - lo:
                raise StorageError(
                    f"ledger nodes ({level}, {lo}..{hi - 1}) are missing or malformed"
                )
            joined.append(bytes(hashes or b""))
        return joined

    async def warm(self) -> None:
        """Nothing to load: connections open on first use."""

    async def close(self) -> None:
        """Close every idle connection."""
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()
        self._open -= len(idle)

    async def _prove(self, size: int, compute: Callable[[GetNode], list[Digest]]) -> list[Digest]:
        wanted: list[tuple[int, int]] = []

        def record(level: int, index: int) -> bytes:
            wanted.append((level, index))
            return _PLACEHOLDER

        compute(record)  # raises ProofRequestError for a request no tree has a proof for
        levels = "{" + ",".join(str(lv) for lv, _ in wanted) + "}"
        indices = "{" + ",".join(str(ix) for _, ix in wanted) + "}"
        rows = await self._fetch(_QUERY, (levels, indices))
        nodes = {(int(lv), int(ix)): h for lv, ix, h in rows}
        current = next((ix for (lv, ix) in nodes if lv == -1), None)
        if current is None or size > current:
            raise ProofRequestError(f"size {size} is outside 0..{current}, the ledger's size")
        return compute(_lookup(nodes))

    async def _fetch(
        self, query: str, params: tuple[Any, ...], *, binary: bool = False
    ) -> list[tuple[Any, ...]]:
        """Run ``query`` on a pooled connection (array parameters as literals: cheaper)."""
        import psycopg

        connection = await self._acquire()
        try:
            cursor = connection.cursor(binary=binary)
            await cursor.execute(query, params, prepare=True)
            rows: list[tuple[Any, ...]] = await cursor.fetchall()
        except psycopg.Error as exc:
            await self._discard(connection)
            raise StorageError(f"ledger database error: {str(exc).strip()[:200]}") from exc
        await self._release(connection)
        return rows

    async def _acquire(self) -> Any:
        import psycopg

        ready = self._condition()
        async with ready:
            while not self._idle and self._open >= self._size:
                await ready.wait()
            if self._idle:
                return self._idle.pop()
            self._open += 1
        try:
            return await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        except psycopg.Error as exc:
            await self._discard(None)
            raise StorageError(f"cannot reach the ledger database: {exc}") from exc

    async def _release(self, connection: Any) -> None:
        ready = self._condition()
        async with ready:
            self._idle.append(connection)
            ready.notify()

    async def _discard(self, connection: Any) -> None:
        if connection is not None:
            await connection.close()
        ready = self._condition()
        async with ready:
            self._open -= 1
            ready.notify()

    def _condition(self) -> asyncio.Condition:
        """The pool's condition, remade (dropping connections) if the event loop changed."""
        loop = asyncio.get_running_loop()
        if self._ready is None or self._loop is not loop:
            for connection in self._idle:  # bound to the old loop: close at the libpq level
                connection.pgconn.finish()
            self._loop, self._ready, self._idle, self._open = loop, asyncio.Condition(), [], 0
        return self._ready


def _lookup(nodes: dict[tuple[int, int], Any]) -> GetNode:
    def get(level: int, index: int) -> bytes:
        try:
            return bytes(nodes[(level, index)])
        except KeyError as exc:
            raise StorageError(f"ledger node ({level}, {index}) is missing from storage") from exc

    return get


def proof_reader(url: str, store: LedgerStore, *, connections: int = 8) -> ProofReader:
    """The fastest reader for ``url``: an in-memory copy of the tree over the database reader.

    The database reader is async on PostgreSQL, threads elsewhere; a store without a
    SQL engine gets the threaded reader alone.
    """
    from sqlalchemy.engine import make_url

    from dure.server.ledger.engine import normalise_url

    parsed = make_url(normalise_url(url))
    cached = _cache_entries()
    if not isinstance(store, SqlLedgerStore):
        return ThreadedProofs(store)
    source: NodeSource = ThreadedProofs(store, store.engine)
    if parsed.get_backend_name() == "postgresql":
        conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        source = PostgresProofs(conninfo, connections=connections)
    return CachedProofs(source, max_entries=cached) if cached else source


def _cache_entries() -> int:
    """``DURE_PROOF_CACHE_ENTRIES``: entries whose nodes a worker keeps in memory (0: none)."""
    raw = os.environ.get(CACHE_VARIABLE, "").strip()
    if not raw:
        return MAX_ENTRIES
    if not raw.isdigit():
        raise DocumentError(
            f"{CACHE_VARIABLE}={raw!r} is not a whole number of entries",
            hint=f"Set {CACHE_VARIABLE} to 0 (no in-memory copy) or a count such as 4194304.",
        )
    return int(raw)
