"""The API's proof readers answer exactly what the ledger store answers, on each database."""

from __future__ import annotations

import asyncio
import random

import pytest

from dure.policies.merkle import ProofRequestError
from dure.server.api.proofs import PostgresProofs, ThreadedProofs, proof_reader
from dure.server.ledger.sql import SqlLedgerStore
from dure.server.storage.database import Database


def test_proofs_match_the_store(db_url: str, db: Database) -> None:
    store = SqlLedgerStore(db.engine)
    store.append([b'{"n":%d}' % i for i in range(300)])
    reader = proof_reader(db_url, store, connections=2)
    expected = PostgresProofs if db.engine.dialect.name == "postgresql" else ThreadedProofs
    assert isinstance(reader, expected)
    rng = random.Random(3)
    pairs = [(rng.randrange(size), size) for size in rng.sample(range(1, 301), 40)]
    ranges = [(rng.randrange(1, size + 1), size) for size in rng.sample(range(1, 301), 40)]

    async def check() -> None:
        try:
            # more concurrent proofs than connections: the pool makes them wait their turn
            inclusions = await asyncio.gather(*(reader.inclusion(i, n) for i, n in pairs))
            consistencies = await asyncio.gather(*(reader.consistency(m, n) for m, n in ranges))
            assert inclusions == [store.inclusion_proof(i, n) for i, n in pairs]
            assert consistencies == [store.consistency_proof(m, n) for m, n in ranges]
            for bad in ((300, 300), (0, 301), (5, 0)):
                with pytest.raises(ProofRequestError):
                    await reader.inclusion(*bad)
            for bad in ((0, 5), (6, 5), (1, 301)):
                with pytest.raises(ProofRequestError):
                    await reader.consistency(*bad)
        finally:
            await reader.close()

    asyncio.run(check())
