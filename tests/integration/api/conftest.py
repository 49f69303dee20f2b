"""The coordinator app through FastAPI's TestClient, on a temporary database.

``world`` runs on a SQLite file; ``any_world`` also on a fresh PostgreSQL schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.builders.api import World, build_world
from tests.builders.ledger import postgres_schema


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with build_world(f"sqlite:///{tmp_path / 'coordinator.db'}") as built:
        yield built


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    if request.param == "sqlite":
        with build_world(f"sqlite:///{tmp_path / 'coordinator.db'}") as built:
            yield built
        return
    with postgres_schema() as url, build_world(url) as built:
        yield built
