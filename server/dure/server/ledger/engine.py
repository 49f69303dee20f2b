"""Database engines for the ledger: URL handling and SQLite transaction control.

Nothing here runs at import time: an engine is built when a caller asks for one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from dure.server.ledger.errors import LedgerError

__all__ = [
    "SQLITE_BEGIN",
    "check_database_exists",
    "check_database_url",
    "create_ledger_engine",
    "normalise_url",
    "prepare_engine",
]

SQLITE_BEGIN = "dure_sqlite_begin"
"""Execution option naming the SQLite ``BEGIN`` mode (``IMMEDIATE`` for writers)."""
_SQLITE_MODES = ("DEFERRED", "IMMEDIATE", "EXCLUSIVE")


def normalise_url(url: str) -> str:
    """Map ``postgresql://`` and ``postgres://`` URLs to the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def check_database_url(url: str) -> str:
    """Return ``url`` if SQLAlchemy can parse it as a database URL.

    Raises
    ------
    LedgerError
        If it cannot (no scheme, a malformed host or port...).
    """
    try:
        make_url(url)
    except (ArgumentError, ValueError) as exc:  # e.g. a malformed port: int() fails
        shown = re.sub(r"//[^/@]*@", "//…@", url[:200])  # never echo a password
        raise LedgerError(
            f"{shown!r} is not a database URL",
            hint="Give sqlite:///PATH or postgresql://USER@HOST/DB (--db, or its variable).",
        ) from exc
    return url


def create_ledger_engine(url: str, **options: Any) -> Engine:
    """Build an engine for the ledger at ``url`` (``sqlite:///path`` or ``postgresql://…``).

    SQLite gets a 30 s busy timeout; an in-memory SQLite database one shared
    connection.  Other databases get ``pool_pre_ping``: a pooled connection that
    died with a server restart is replaced when checked out, not used and failed.
    Extra ``options`` go to :func:`sqlalchemy.create_engine`.

    Raises
    ------
    LedgerError
        If ``url`` is not a database URL.
    """
    url = check_database_url(normalise_url(url))
    if url.startswith("sqlite"):
        options.setdefault("connect_args", {}).setdefault("timeout", 30.0)
        if url in ("sqlite://", "sqlite:///:memory:"):
            options.setdefault("poolclass", StaticPool)
    else:
        options.setdefault("pool_pre_ping", True)
    return create_engine(url, **options)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    mode = connection.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
    if mode not in _SQLITE_MODES:
        raise LedgerError(f"SQLite BEGIN mode {mode!r} is not one of {_SQLITE_MODES}")
    connection.exec_driver_sql(f"BEGIN {mode}")


def prepare_engine(engine: Engine) -> None:
    """Make a SQLite engine issue its own ``BEGIN`` (idempotent; other dialects untouched).

    pysqlite's implicit transactions are turned off and every transaction starts
    with ``BEGIN <mode>``, ``mode`` being the connection's :data:`SQLITE_BEGIN`
    execution option (``DEFERRED`` unless set), in WAL mode.
    """
    if engine.dialect.name == "sqlite" and not event.contains(engine, "begin", _sqlite_begin):
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)


def check_database_exists(engine: Engine) -> None:
    """Refuse a SQLite file that does not exist (connecting would create an empty one)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or database in (None, "", ":memory:"):
        return
    if not Path(database).is_file():
        raise LedgerError(
            f"no ledger database at {database}",
            hint="Pass the coordinator's ledger as --db sqlite:///PATH or a PostgreSQL URL.",
        )
