"""A coordinator's ledger per test, on SQLite and on PostgreSQL (a fresh schema each)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from tests.builders.ledger import postgres_schema
from tests.integration.audit.coordinator import Coordinator

POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)
NewCoordinator = Callable[[], Coordinator]


@pytest.fixture(params=["sqlite", POSTGRES])
def new_coordinator(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NewCoordinator]:
    """Make coordinators (each with its own database) on the parametrised backend."""
    with ExitStack() as stack:
        made: list[Coordinator] = []

        def make() -> Coordinator:
            if request.param == "sqlite":
                url = f"sqlite:///{tmp_path / f'ledger-{len(made)}.db'}"
            else:
                url = stack.enter_context(postgres_schema())
            made.append(Coordinator(url))
            stack.callback(made[-1].close)  # closed before its schema is dropped
            return made[-1]

        yield make


@pytest.fixture
def coordinator(new_coordinator: NewCoordinator) -> Coordinator:
    """A coordinator whose ledger holds the honest history."""
    made = new_coordinator()
    made.play_honest_history()
    return made
