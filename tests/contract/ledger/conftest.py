"""One ledger-store fixture over every implementation: memory, SQLite, PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.builders.ledger import postgres_schema
from tests.contract.ledger.backends import Backend

from dure.policies.note import Ed25519Signer
from dure.server.ledger.memory import MemoryLedgerStore
from dure.server.ledger.store import LedgerStore


def _backend(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if name == "memory":
        backend = Backend(name, None, MemoryLedgerStore())
        yield backend
        return
    if name == "sqlite":
        backend = Backend(name, f"sqlite:///{tmp_path / 'ledger.db'}")
        yield backend
        backend.close()
        return
    with postgres_schema() as url:
        backend = Backend(name, url)
        yield backend
        backend.close()


POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)


@pytest.fixture(params=["memory", "sqlite", POSTGRES])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from _backend(request.param, request, tmp_path)


@pytest.fixture(params=["sqlite", POSTGRES])
def sql_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from _backend(request.param, request, tmp_path)


@pytest.fixture
def store(backend: Backend) -> LedgerStore:
    return backend.open()


@pytest.fixture(scope="session")
def signer() -> Ed25519Signer:
    return Ed25519Signer.from_seed("dure.test/ledger", bytes(range(32)))
