"""Ledger engines: URL normalisation, in-memory SQLite, a missing database."""

from __future__ import annotations

from pathlib import Path

import pytest

from dure.policies import merkle
from dure.server.ledger.engine import normalise_url
from dure.server.ledger.errors import LedgerError
from dure.server.ledger.sql import SqlLedgerStore


@pytest.mark.parametrize(
    "url,expected",
    [
        ("postgresql://u@h:5432/db", "postgresql+psycopg://u@h:5432/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///ledger.db", "sqlite:///ledger.db"),
    ],
)
def test_postgres_urls_use_psycopg(url: str, expected: str) -> None:
    assert normalise_url(url) == expected


def test_an_in_memory_sqlite_ledger_works() -> None:
    store = SqlLedgerStore.from_url("sqlite://")
    entries = [b"a", b"b", b"c"]
    assert store.append(entries) == 0
    assert store.root(3) == merkle.root_hash(entries)
    assert store.inclusion_proof(1, 3) == merkle.inclusion_proof(entries, 1)
    store.close()


def test_opening_a_missing_ledger_without_create_fails(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no ledger database"):
        SqlLedgerStore.from_url(f"sqlite:///{tmp_path / 'absent.db'}", create=False)
    assert not (tmp_path / "absent.db").exists()
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(LedgerError, match=r"no such table|no ledger"):
        SqlLedgerStore.from_url(f"sqlite:///{empty}", create=False)
