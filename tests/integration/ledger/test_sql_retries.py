"""SqlLedgerStore retries lock timeouts a bounded number of times, then fails clearly."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from dure.policies import merkle
from dure.server.ledger.engine import create_ledger_engine
from dure.server.ledger.errors import LedgerError
from dure.server.ledger.sql import SqlLedgerStore


def hold_write_lock(path: Path, seconds: float, locked: threading.Event) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    locked.set()
    time.sleep(seconds)
    conn.execute("ROLLBACK")
    conn.close()


def store_with_short_timeout(path: Path, retries: int) -> SqlLedgerStore:
    SqlLedgerStore.from_url(f"sqlite:///{path}").close()  # create the schema
    engine = create_ledger_engine(f"sqlite:///{path}", connect_args={"timeout": 0.02})
    return SqlLedgerStore(engine, retries=retries)


def locked_for(path: Path, seconds: float) -> threading.Thread:
    locked = threading.Event()
    thread = threading.Thread(target=hold_write_lock, args=(path, seconds, locked))
    thread.start()
    assert locked.wait(5)
    return thread


def test_a_busy_database_is_retried_until_it_frees(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    store = store_with_short_timeout(path, retries=8)
    holder = locked_for(path, 0.15)
    assert store.append([b"after the lock"]) == 0
    holder.join()
    assert store.root(1) == merkle.root_hash([b"after the lock"])
    store.close()


def test_retries_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    store = store_with_short_timeout(path, retries=1)
    holder = locked_for(path, 1.0)
    with pytest.raises(LedgerError, match="locked"):
        store.append([b"never"])
    holder.join()
    assert store.size() == 0
    store.close()
