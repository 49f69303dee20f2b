"""The registry storage contract runs on SQLite and PostgreSQL, each test on a fresh database.

Every database is created by the alembic migrations (``dure coordinator db
upgrade``), so the suite also checks that the migrations build what the
repositories need.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.builders.ledger import postgres_schema

from dure.server.federation.registry import MemoryRegistry, SiteRegistry
from dure.server.storage.database import Database
from dure.server.storage.migrate import upgrade
from dure.server.storage.registry import SqlRegistry

POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)


@pytest.fixture(params=["sqlite", POSTGRES])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'coordinator.db'}"
        upgrade(url)
        yield url
        return
    with postgres_schema() as url:
        upgrade(url)
        yield url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database.from_url(db_url)
    yield database
    database.close()


@pytest.fixture(params=["memory", "sqlite", POSTGRES])
def site_registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SiteRegistry]:
    """Each :class:`SiteRegistry`: in memory, and SQL on SQLite and PostgreSQL."""
    if request.param == "memory":
        yield MemoryRegistry()
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'coordinator.db'}"
        upgrade(url)
        db = Database.from_url(url)
        yield SqlRegistry(db)
        db.close()
        return
    with postgres_schema() as url:
        upgrade(url)
        db = Database.from_url(url)
        yield SqlRegistry(db)
        db.close()
