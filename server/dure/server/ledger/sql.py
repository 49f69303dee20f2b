"""The audit ledger on SQL: SQLite on one machine, PostgreSQL for a consortium.

:class:`SqlLedgerStore` implements :class:`~dure.server.ledger.store.LedgerStore`
over the tables of :mod:`dure.server.ledger.tables`, with the tree nodes computed
by the kernel's pure :func:`~dure.policies.tree.integrate` and proofs by its
:func:`~dure.policies.tree.inclusion_path` and
:func:`~dure.policies.tree.consistency_path`: each proof is one query for the
O(log n) node hashes it needs.

Appends are serialised: on SQLite every write transaction starts with
``BEGIN IMMEDIATE`` (the database's single writer lock, in WAL mode so readers
carry on); on PostgreSQL it locks the head row with ``SELECT … FOR UPDATE``.
Lock timeouts and serialisation failures are retried a bounded number of times.
A lost connection (the server restarted, ``57P01`` admin shutdown, ``08xxx``,
refused while it starts) is retried with backoff for up to ``reconnect_timeout``
seconds.  When the connection is lost while committing, the commit may or may
not have happened; only idempotent writes are retried then: a retried append
first checks, under the head lock, whether the entries it sent are already at
the index it was given (same leaf hashes), and returns that index instead of
appending them twice; a retried checkpoint returns the stored note if it is the
same.  The engine is passed in (or built by
:func:`~dure.server.ledger.engine.create_ledger_engine` from a URL), never at
import time.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, insert, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.sql.elements import TextClause
from sqlmodel import SQLModel

from dure.policies.checkpoint import Checkpoint
from dure.policies.encoding import Digest
from dure.policies.errors import NoteError
from dure.policies.merkle import ProofRequestError, leaf_hash
from dure.policies.note import SignedNote
from dure.policies.tree import (
    GetNode,
    consistency_path,
    inclusion_path,
    integrate,
    perfect_subtrees,
    tree_root,
)
from dure.server.ledger.engine import (
    SQLITE_BEGIN,
    check_database_exists,
    create_ledger_engine,
    prepare_engine,
)
from dure.server.ledger.errors import LedgerError
from dure.server.ledger.store import (
    StoredCheckpoint,
    admit_checkpoint,
    check_range,
    checked_rows,
)
from dure.server.ledger.tables import LEDGER_TABLES

__all__ = ["SqlLedgerStore"]

T = TypeVar("T")
_ENTRY, _NODE, _HEAD, _CHECKPOINT = LEDGER_TABLES
_PLACEHOLDER = bytes(32)
# SPEC: PostgreSQL appendix A: serialization_failure, deadlock_detected, lock_not_available.
_RETRY_STATES = frozenset({"40001", "40P01", "55P03"})
# Class 08 (connection exception) and 57P01-57P03 (the server shut down or is starting).
_RECONNECT_STATES = frozenset({"57P01", "57P02", "57P03"})
_SIZE = select(_HEAD.c.size).where(_HEAD.c.id == 1)
_LOCKED_SIZE = _SIZE.with_for_update()  # SQLite renders no FOR UPDATE: BEGIN IMMEDIATE locks


class SqlLedgerStore:
    """A :class:`~dure.server.ledger.store.LedgerStore` on SQLite or PostgreSQL.

    Parameters
    ----------
    engine
        A fresh engine for the ledger's database (see :func:`create_ledger_engine`).
    retries
        How many times a lock timeout or serialisation failure is retried before
        :class:`~dure.server.ledger.errors.LedgerError` is raised.
    reconnect_timeout
        For how many seconds a lost or refused connection is retried (a database
        restart) before :class:`~dure.server.ledger.errors.LedgerError` is raised.
    """

    def __init__(
        self, engine: Engine, *, retries: int = 8, reconnect_timeout: float = 30.0
    ) -> None:
        prepare_engine(engine)
        self._engine = engine
        self._retries = retries
        self._reconnect_timeout = reconnect_timeout

    @classmethod
    def from_url(cls, url: str, *, create: bool = True, **options: Any) -> SqlLedgerStore:
        """Open the ledger at ``url``, creating its tables when ``create`` is true.

        Raises
        ------
        LedgerError
            If the database cannot be reached, or holds no ledger and ``create``
            is false.
        """
        engine = create_ledger_engine(url, **options)
        if not create:
            check_database_exists(engine)
        store = cls(engine)
        if create:
            store.create_schema()
        else:
            store.size()
        return store

    @property
    def engine(self) -> Engine:
        """The engine the store runs on."""
        return self._engine

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def create_schema(self) -> None:
        """Create the ledger's tables and head row if missing (idempotent)."""

        def work(conn: Connection) -> None:
            SQLModel.metadata.create_all(conn, tables=list(LEDGER_TABLES))
            if conn.execute(_SIZE).first() is None:
                conn.execute(insert(_HEAD).values(id=1, size=0))

        try:
            self._transaction(work, write=True, idempotent=True)  # creates only what is missing
        except LedgerError as exc:
            if not isinstance(exc.__cause__, IntegrityError):
                raise  # another process created the head row first: fine

    # -- appends --------------------------------------------------------------

    def append(self, entries: Sequence[bytes]) -> int:
        """Append ``entries`` in one transaction and return the first one's index."""
        batch = [bytes(entry) for entry in entries]
        hashes = [leaf_hash(entry) for entry in batch]
        sent: list[int] = []  # the index a previous attempt appended at, if its commit was lost

        def work(conn: Connection) -> int:
            if sent and self._holds(conn, sent[-1], hashes):
                return sent[-1]  # the lost commit happened: do not append twice
            first = self._append(conn, batch, hashes)
            sent.append(first)
            return first

        return self._transaction(work, write=True, idempotent=True)

    def append_within(self, conn: Connection, entries: Sequence[bytes]) -> int:
        """Append ``entries`` inside the caller's open write transaction on this engine.

        For a caller that writes other rows in the same transaction (the registry
        with its ledger entry): both commit together or neither does.  The
        caller's transaction MUST be a write transaction (``BEGIN IMMEDIATE`` on
        SQLite, see :class:`~dure.server.storage.database.Database`); on
        PostgreSQL this locks the head row until the caller commits.  Nothing is
        retried here: the caller's transaction is.
        """
        return self._append(conn, [bytes(entry) for entry in entries])

    def _holds(self, conn: Connection, first: int, hashes: list[Digest]) -> bool:
        """Whether entries ``first``… have ``hashes`` (under the head lock)."""
        if self._locked_size(conn) < first + len(hashes):
            return False
        query = select(_ENTRY.c.leaf_hash).where(
            _ENTRY.c.idx >= first, _ENTRY.c.idx < first + len(hashes)
        )
        stored = [bytes(row[0]) for row in conn.execute(query.order_by(_ENTRY.c.idx))]
        return stored == hashes

    def _append(
        self, conn: Connection, batch: list[bytes], hashes: list[Digest] | None = None
    ) -> int:
        size = self._locked_size(conn)
        if not batch:
            return size
        hashes = hashes or [leaf_hash(entry) for entry in batch]
        frontier = _fetch_nodes(conn, perfect_subtrees(0, size))
        nodes = integrate(_lookup(frontier), size, hashes)
        conn.execute(
            insert(_ENTRY),
            [
                {"idx": size + i, "leaf": entry, "leaf_hash": hashes[i]}
                for i, entry in enumerate(batch)
            ],
        )
        conn.execute(insert(_NODE), [{"level": lv, "idx": ix, "hash": h} for lv, ix, h in nodes])
        conn.execute(update(_HEAD).where(_HEAD.c.id == 1).values(size=size + len(batch)))
        return size

    # -- reads ----------------------------------------------------------------

    def size(self) -> int:
        """Return the number of entries."""
        return self._transaction(self._size, write=False)

    def entries(self, start: int, end: int) -> list[bytes]:
        """Return entries ``start`` to ``end - 1``; a missing or mistyped row is corruption."""
        return self._rows(_ENTRY.c.leaf, start, end, "leaf")

    def leaf_hashes(self, start: int, end: int) -> list[Digest]:
        """Return the leaf hashes of entries ``start`` to ``end - 1``."""
        return [Digest(h) for h in self._rows(_ENTRY.c.leaf_hash, start, end, "leaf hash")]

    def _rows(self, column: Any, start: int, end: int, what: str) -> list[bytes]:
        def work(conn: Connection) -> list[tuple[int, object]]:
            check_range(start, end, self._size(conn))
            query = select(_ENTRY.c.idx, column).where(_ENTRY.c.idx >= start, _ENTRY.c.idx < end)
            return [(int(i), v) for i, v in conn.execute(query.order_by(_ENTRY.c.idx)).all()]

        return checked_rows(self._transaction(work, write=False), start, end, what)

    def node(self, level: int, index: int) -> bytes:
        """Return the hash of complete perfect subtree ``(level, index)``."""
        found = self._transaction(lambda conn: _fetch_nodes(conn, [(level, index)]), write=False)
        if (level, index) not in found:
            raise ProofRequestError(f"subtree ({level}, {index}) is not complete in the ledger")
        return found[(level, index)]

    def root(self, size: int) -> Digest:
        """Return the root at ``size`` entries."""
        return self._with_nodes(size, lambda get: tree_root(get, size))

    def inclusion_proof(self, index: int, size: int) -> list[Digest]:
        """Return the inclusion proof of ``index`` in the tree of ``size``."""
        return self._with_nodes(size, lambda get: inclusion_path(get, index, size))

    def consistency_proof(self, first: int, second: int) -> list[Digest]:
        """Return the consistency proof from ``first`` to ``second``."""
        return self._with_nodes(second, lambda get: consistency_path(get, first, second))

    def _with_nodes(self, size: int, compute: Callable[[GetNode], T]) -> T:
        """Run a pure tree computation twice: once to learn its nodes, once on them.

        The kernel's algorithms choose which nodes to read from the sizes alone,
        never from hash values, so a dry run over placeholder hashes names exactly
        the nodes the real run needs; they are fetched in one query.
        """
        wanted: set[tuple[int, int]] = set()

        def record(level: int, index: int) -> bytes:
            wanted.add((level, index))
            return _PLACEHOLDER

        def work(conn: Connection) -> dict[tuple[int, int], bytes]:
            current = self._size(conn)
            if not 0 <= size <= current:
                raise ProofRequestError(f"size {size} is outside 0..{current}, the ledger's size")
            compute(record)  # raises ProofRequestError for impossible requests
            return _fetch_nodes(conn, wanted)

        nodes = self._transaction(work, write=False)
        return compute(_lookup(nodes))

    # -- checkpoints ----------------------------------------------------------

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        """Return the last stored checkpoint."""
        return self._transaction(_latest_checkpoint, write=False)

    def put_checkpoint(self, note: str, verifier_key: str) -> StoredCheckpoint:
        """Store ``note`` if :func:`admit_checkpoint` accepts it (under the append lock)."""

        def work(conn: Connection) -> StoredCheckpoint:
            size = self._locked_size(conn)
            latest = _latest_checkpoint(conn)
            if latest is not None and (latest.note, latest.verifier_key) == (note, verifier_key):
                return latest  # already stored (e.g. by an attempt whose commit was lost)
            stored = admit_checkpoint(note, verifier_key, latest, size, _node_reader(conn))
            conn.execute(
                insert(_CHECKPOINT).values(
                    size=stored.checkpoint.size, note=note, verifier_key=verifier_key
                )
            )
            return stored

        return self._transaction(work, write=True, idempotent=True)

    # -- transactions ---------------------------------------------------------

    def _size(self, conn: Connection) -> int:
        row = conn.execute(_SIZE).first()
        if row is None:
            raise LedgerError(
                f"no ledger in {self._engine.url.render_as_string(hide_password=True)}",
                hint="Point --db at the coordinator's ledger database, or create it first.",
            )
        return int(row[0])

    def _locked_size(self, conn: Connection) -> int:
        row = conn.execute(_LOCKED_SIZE).first()
        if row is None:
            raise LedgerError("the ledger has no head row; create its schema first")
        return int(row[0])

    def _transaction(
        self, work: Callable[[Connection], T], *, write: bool, idempotent: bool = False
    ) -> T:
        """Run ``work`` in one transaction, retrying transient failures.

        ``write`` starts SQLite transactions with ``BEGIN IMMEDIATE``, taking the
        database's writer lock up front; on PostgreSQL ``work`` locks the head row.
        Reads on PostgreSQL run in autocommit (see :meth:`_options`).  Only an
        ``idempotent`` ``work`` (one that notices its own earlier commit) is
        retried after the connection was lost while committing.
        """
        deadline = time.monotonic() + self._reconnect_timeout
        attempt = 0
        while True:
            committing = False
            try:
                with self._engine.connect() as conn:
                    conn.execution_options(**self._options(write))
                    with conn.begin() as transaction:
                        result = work(conn)
                        committing = True
                        transaction.commit()
                    return result
            except DBAPIError as exc:
                reconnect = self._lost(exc)
                if reconnect and committing and not idempotent:
                    raise LedgerError(
                        f"the ledger database connection was lost while committing "
                        f"({_describe(exc)}); the write may or may not be stored"
                    ) from exc
                if reconnect and time.monotonic() < deadline:
                    attempt += 1
                    time.sleep(min(0.01 * 2 ** min(attempt, 6), 0.5))
                    continue
                if attempt < self._retries and self._transient(exc, committing):
                    attempt += 1
                    time.sleep(min(0.005 * 2**attempt, 0.5))
                    continue
                raise LedgerError(f"ledger database error: {_describe(exc)}") from exc

    def _lost(self, exc: DBAPIError) -> bool:
        """Whether ``exc`` is a lost, refused or shut-down PostgreSQL connection."""
        if self._engine.dialect.name == "sqlite" or isinstance(exc, IntegrityError):
            return False
        state = getattr(exc.orig, "sqlstate", None)
        if state is None:  # no server answer: the connection failed or dropped
            return isinstance(exc, OperationalError) or exc.connection_invalidated
        return exc.connection_invalidated or state.startswith("08") or state in _RECONNECT_STATES

    def _options(self, write: bool) -> dict[str, str]:
        """SQLite writers take the lock up front; PostgreSQL readers skip BEGIN/COMMIT.

        Reads need no snapshot: stored entries and nodes never change and the size
        only grows, so each statement may see its own committed state.
        """
        if self._engine.dialect.name == "sqlite":
            return {SQLITE_BEGIN: "IMMEDIATE"} if write else {}
        return {} if write else {"isolation_level": "AUTOCOMMIT"}

    def _transient(self, exc: DBAPIError, committing: bool) -> bool:
        """Whether retrying ``exc`` is safe and may succeed."""
        if isinstance(exc, IntegrityError):
            return False  # never paper over a duplicate index
        if self._engine.dialect.name == "sqlite":  # SQLITE_BUSY / SQLITE_LOCKED only
            message = str(exc.orig).lower()
            return "locked" in message or "busy" in message
        if committing:
            return False  # the commit may have happened: retrying could append twice
        state = getattr(exc.orig, "sqlstate", None)
        if state is None:  # no server answer: the connection failed or dropped
            return isinstance(exc, OperationalError)
        return exc.connection_invalidated or state in _RETRY_STATES or state.startswith("08")


def _describe(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)


def _fetch_nodes(conn: Connection, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    wanted = list(keys)
    if not wanted:
        return {}
    params: dict[str, int] = {}
    for n, (level, index) in enumerate(wanted):
        params[f"l{n}"], params[f"i{n}"] = level, index
    rows = conn.execute(_node_query(len(wanted)), params)
    return {(int(level), int(index)): bytes(h) for level, index, h in rows}


@functools.lru_cache(maxsize=128)
def _node_query(count: int) -> TextClause:
    """``SELECT`` nodes by an OR of primary-key equalities, one statement per key count.

    Plain SQL text: building the same query as SQLAlchemy expressions costs more
    than running it, and SQLite plans a row-value ``IN`` list as a full scan.
    """
    match = " OR ".join(f"(level = :l{n} AND idx = :i{n})" for n in range(count))
    return text(f"SELECT level, idx, hash FROM {_NODE.name} WHERE {match}")


def _lookup(nodes: dict[tuple[int, int], bytes]) -> GetNode:
    def get(level: int, index: int) -> bytes:
        try:
            return nodes[(level, index)]
        except KeyError as exc:
            raise LedgerError(f"ledger node ({level}, {index}) is missing from storage") from exc

    return get


def _node_reader(conn: Connection) -> GetNode:
    def get(level: int, index: int) -> bytes:
        found = _fetch_nodes(conn, [(level, index)])
        return _lookup(found)(level, index)

    return get


def _latest_checkpoint(conn: Connection) -> StoredCheckpoint | None:
    query = select(_CHECKPOINT.c.note, _CHECKPOINT.c.verifier_key)
    row = conn.execute(query.order_by(_CHECKPOINT.c.id.desc()).limit(1)).first()
    if row is None:
        return None
    note, key = str(row[0]), str(row[1])
    try:
        return StoredCheckpoint(note, key, Checkpoint.from_text(SignedNote.from_text(note).text))
    except NoteError as exc:
        raise LedgerError(f"the stored checkpoint is malformed: {exc.message}") from exc
