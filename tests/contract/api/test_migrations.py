"""The alembic migrations build exactly the tables the code declares, and are idempotent."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData

from dure.server.ledger.sql import SqlLedgerStore
from dure.server.storage.database import ALL_TABLES, Database
from dure.server.storage.migrate import current_revision, head_revision, upgrade


def test_the_migrated_schema_matches_the_tables(db: Database) -> None:
    metadata = MetaData()
    for table in ALL_TABLES:
        table.to_metadata(metadata)
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_upgrade_is_idempotent_and_leaves_an_empty_ledger(db_url: str, db: Database) -> None:
    assert current_revision(db_url) == head_revision() is not None
    assert upgrade(db_url) == head_revision()
    store = SqlLedgerStore(db.engine)
    assert store.size() == 0
    store.create_schema()  # the ledger's own idempotent creation agrees with the migration
    assert store.append([b'{"x":1}']) == 0
