"""Alembic environment of the coordinator database (ledger and registry tables).

Run through :func:`dure.server.storage.migrate.upgrade` (``dure coordinator db
upgrade --db URL``), which passes the URL, or an open connection, in the
config's ``attributes``; nothing here reads a file or the environment.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, MetaData

from dure.server.storage.database import ALL_TABLES, Database

__all__: list[str] = []


def _metadata() -> MetaData:
    metadata = MetaData()
    for table in ALL_TABLES:
        table.to_metadata(metadata)
    return metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=_metadata(), compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def _online() -> None:
    attributes = context.config.attributes
    connection = attributes.get("connection")
    if isinstance(connection, Connection):
        _run(connection)
        return
    db = Database.from_url(str(attributes["url"]))
    try:
        with db.engine.connect() as conn:
            _run(conn)
    finally:
        db.close()


if context.is_offline_mode():  # pragma: no cover - Dure only migrates online
    raise SystemExit("offline (SQL script) migrations are not supported; pass --db URL")
_online()
