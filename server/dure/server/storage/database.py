"""One database for the coordinator: engine, transactions, schema.

The registry shares the ledger's engine handling
(:func:`~dure.server.ledger.engine.create_ledger_engine`: URL normalisation,
SQLite busy timeout and explicit ``BEGIN``), so a coordinator may keep its
registry and its ledger in one database and one connection pool.  Nothing is
built at import time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import SQLModel

from dure.server.ledger.engine import SQLITE_BEGIN, create_ledger_engine, prepare_engine
from dure.server.ledger.tables import LEDGER_TABLES
from dure.server.ledger.witness_tables import WITNESS_TABLES
from dure.server.storage.errors import StorageError
from dure.server.storage.tables import REGISTRY_TABLES

__all__ = ["ALL_TABLES", "Database"]

T = TypeVar("T")
ALL_TABLES = (*LEDGER_TABLES, *WITNESS_TABLES, *REGISTRY_TABLES)
"""Every table of the coordinator database: the ledger's, its publication's, the registry's."""
_RETRIES = 5


class Database:
    """Transactions on the coordinator database.

    Parameters
    ----------
    engine
        The engine (see :meth:`from_url`); SQLite engines are prepared to issue
        their own ``BEGIN`` so writers take the lock up front.
    """

    def __init__(self, engine: Engine) -> None:
        prepare_engine(engine)
        self.engine = engine

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Database:
        """Build the engine for ``url`` (``sqlite:///PATH`` or ``postgresql://…``)."""
        return cls(create_ledger_engine(url, **options))

    def create_all(self) -> None:
        """Create every missing table (tests; deployments run the alembic migrations)."""
        self.run(lambda conn: SQLModel.metadata.create_all(conn, tables=list(ALL_TABLES)), True)

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def run(self, work: Callable[[Connection], T], write: bool = False) -> T:
        """Run ``work`` in one transaction and return its result.

        SQLite busy errors are retried a few times.  An
        :class:`~sqlalchemy.exc.IntegrityError` propagates (callers turn it into
        a conflict); every other database error becomes :class:`StorageError`.
        """
        options = {SQLITE_BEGIN: "IMMEDIATE"} if write and self._sqlite else {}
        for attempt in range(_RETRIES + 1):
            try:
                with self.engine.connect() as raw:
                    conn = raw.execution_options(**options)
                    with conn.begin():
                        return work(conn)
            except IntegrityError:
                raise
            except DBAPIError as exc:
                if attempt < _RETRIES and self._busy(exc):
                    time.sleep(0.01 * 2**attempt)
                    continue
                raise StorageError(f"registry database error: {_describe(exc)}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    @property
    def _sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def _busy(self, exc: DBAPIError) -> bool:
        message = str(exc.orig).lower()
        return self._sqlite and ("locked" in message or "busy" in message)


def _describe(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
