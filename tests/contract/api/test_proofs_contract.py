"""The API's proof readers answer exactly what the ledger store answers, on each database."""

from __future__ import annotations

import asyncio
import random

import pytest
from sqlalchemy import text

from dure.policies.errors import DocumentError
from dure.policies.merkle import ProofRequestError
from dure.server.api.proof_cache import CachedProofs, node_runs
from dure.server.api.proofs import (
    CACHE_VARIABLE,
    PostgresProofs,
    ProofReader,
    ThreadedProofs,
    proof_reader,
)
from dure.server.ledger.errors import LedgerError
from dure.server.ledger.sql import SqlLedgerStore
from dure.server.storage.database import Database
from dure.server.storage.errors import StorageError


def _entries(start: int, end: int) -> list[bytes]:
    return [b'{"n":%d}' % i for i in range(start, end)]


async def _check_against(reader: ProofReader, store: SqlLedgerStore, size: int, seed: int) -> None:
    rng = random.Random(seed)
    pairs = [(rng.randrange(n), n) for n in rng.sample(range(1, size + 1), 40)]
    ranges = [(rng.randrange(1, n + 1), n) for n in rng.sample(range(1, size + 1), 40)]
    # more concurrent proofs than connections: the pool makes them wait their turn
    inclusions = await asyncio.gather(*(reader.inclusion(i, n) for i, n in pairs))
    consistencies = await asyncio.gather(*(reader.consistency(m, n) for m, n in ranges))
    assert inclusions == [store.inclusion_proof(i, n) for i, n in pairs]
    assert consistencies == [store.consistency_proof(m, n) for m, n in ranges]


def test_proofs_match_the_store(db_url: str, db: Database) -> None:
    store = SqlLedgerStore(db.engine)
    store.append(_entries(0, 300))
    reader = proof_reader(db_url, store, connections=2)
    assert isinstance(reader, CachedProofs)
    source = reader._source  # the database reader the copy is fed by
    expected = PostgresProofs if db.engine.dialect.name == "postgresql" else ThreadedProofs
    assert isinstance(source, expected)

    async def check() -> None:
        try:
            await _check_against(source, store, 300, seed=3)  # the database path alone
            await _check_against(reader, store, 300, seed=4)  # from memory
            assert reader.cached == 300
            for bad in ((300, 300), (0, 301), (5, 0)):
                with pytest.raises(ProofRequestError):
                    await reader.inclusion(*bad)
            for bad in ((0, 5), (6, 5), (1, 301)):
                with pytest.raises(ProofRequestError):
                    await reader.consistency(*bad)
        finally:
            await reader.close()

    asyncio.run(check())


def test_the_copy_follows_a_ledger_another_worker_appends_to(db_url: str, db: Database) -> None:
    store = SqlLedgerStore(db.engine)
    store.append(_entries(0, 100))
    reader = proof_reader(db_url, store, connections=2)
    other = SqlLedgerStore.from_url(db_url, create=False)  # another worker's connection
    assert isinstance(reader, CachedProofs)

    async def check() -> None:
        try:
            assert await reader.inclusion(7, 100) == store.inclusion_proof(7, 100)
            assert reader.cached == 100
            for grown in (101, 128, 129, 1000, 1025):
                other.append(_entries(other.size(), grown))
                assert await reader.inclusion(grown - 1, grown) == store.inclusion_proof(
                    grown - 1, grown
                )
                assert reader.cached == grown
                await _check_against(reader, store, grown, seed=grown)
            with pytest.raises(ProofRequestError, match=r"outside 0\.\.1025"):
                await reader.consistency(5, 1026)  # beyond the ledger: the database refuses
        finally:
            await reader.close()
            other.close()

    asyncio.run(check())


def test_a_missing_node_fails_the_sync_and_the_database_answers(db_url: str, db: Database) -> None:
    store = SqlLedgerStore(db.engine)
    store.append(_entries(0, 64))
    reader = proof_reader(db_url, store, connections=2)
    assert isinstance(reader, CachedProofs)

    async def check() -> None:
        try:
            await reader.inclusion(0, 64)
            store.append(_entries(64, 80))
            with db.engine.begin() as conn:
                conn.execute(text("DELETE FROM dure_ledger_node WHERE level = 2 AND idx = 17"))
            # the sync fails (logged); the database answers what does not need that node
            assert await reader.inclusion(70, 80) == store.inclusion_proof(70, 80)
            assert reader.cached == 64
            with pytest.raises((StorageError, LedgerError), match=r"\(2, 17\)"):
                await reader.inclusion(64, 80)  # its path holds node (2, 17)
            with pytest.raises(StorageError, match=r"\(2, 16\.\.19\)"):
                await reader.sync()
            assert await reader.inclusion(3, 64) == store.inclusion_proof(3, 64)
        finally:
            await reader.close()

    asyncio.run(check())


def test_node_runs_name_exactly_the_nodes_the_new_entries_complete() -> None:
    assert node_runs(0, 5) == [(0, 0, 5), (1, 0, 2), (2, 0, 1)]
    assert node_runs(5, 8) == [(0, 5, 8), (1, 2, 4), (2, 1, 2), (3, 0, 1)]
    assert node_runs(8, 8) == []


def test_past_the_memory_bound_proofs_come_from_the_database(db_url: str, db: Database) -> None:
    store = SqlLedgerStore(db.engine)
    store.append(_entries(0, 300))
    source = proof_reader(db_url, store, connections=2)
    assert isinstance(source, CachedProofs)
    reader = CachedProofs(source._source, max_entries=100)

    async def check() -> None:
        try:
            await _check_against(reader, store, 300, seed=5)
            assert reader.cached == 100
        finally:
            await reader.close()

    asyncio.run(check())


def test_the_copy_is_configured_by_its_variable(
    db_url: str, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqlLedgerStore(db.engine)
    monkeypatch.setenv(CACHE_VARIABLE, "0")
    assert not isinstance(proof_reader(db_url, store), CachedProofs)
    monkeypatch.setenv(CACHE_VARIABLE, "many")
    with pytest.raises(DocumentError, match=CACHE_VARIABLE):
        proof_reader(db_url, store)
