"""Ledger appends (entries/s) and proof latency at 100,000 entries, per store.

Stores: in memory, SQLite (a file in a temporary folder, WAL, synchronous FULL)
and PostgreSQL (``DURE_BENCH_POSTGRES``, default the local test server; a fresh
schema dropped afterwards).  Appends are measured as single-entry transactions and
as batches of 100.  Then each SQL store is filled to 100,000 entries and random
inclusion proofs (at size 100,000) and consistency proofs (from a random size to
100,000) are timed one call at a time: p50 and p99 in microseconds, each call a
fresh transaction, as an API request would make.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

from dure.policies import merkle
from dure.server.ledger.engine import normalise_url
from dure.server.ledger.memory import MemoryLedgerStore
from dure.server.ledger.sql import SqlLedgerStore
from dure.server.ledger.store import LedgerStore

POSTGRES = os.environ.get("DURE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
TARGET = 100_000
SAMPLES = 1_000
SINGLES = {"memory": 20_000, "sqlite": 1_000, "postgres": 1_000}
BATCHES = {"memory": 200, "sqlite": 100, "postgres": 100}

console = Console(highlight=False)


def _entry(i: int) -> bytes:
    # About the size of a real contribution_accepted entry (~400 bytes).
    return (b'{"kind":"bench","n":%d,"pad":"' % i) + b"x" * 360 + b'"}'


def _rate(store: LedgerStore, count: int, batch: int) -> float:
    start_index = store.size()
    started = time.perf_counter()
    for first in range(0, count, batch):
        store.append([_entry(start_index + first + j) for j in range(batch)])
    return count / (time.perf_counter() - started)


def _percentiles(call: Callable[[int], object], args: list[int]) -> tuple[float, float]:
    times: list[float] = []
    for arg in args:
        started = time.perf_counter_ns()
        call(arg)
        times.append((time.perf_counter_ns() - started) / 1_000)
    times.sort()
    return times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]


def _fill(store: LedgerStore, target: int) -> float:
    started = time.perf_counter()
    while (size := store.size()) < target:
        store.append([_entry(size + j) for j in range(min(1000, target - size))])
    return time.perf_counter() - started


def _proofs(name: str, store: LedgerStore, figures: dict[str, float]) -> None:
    figures[f"{name}_fill_to_100k_s"] = _fill(store, TARGET)
    rng = random.Random(7)
    indices = [rng.randrange(TARGET) for _ in range(SAMPLES)]
    firsts = [rng.randrange(1, TARGET) for _ in range(SAMPLES)]
    root = store.root(TARGET)
    for index in indices[:20]:  # the timed proofs are real ones
        leaf = merkle.leaf_hash(store.entries(index, index + 1)[0])
        merkle.verify_inclusion(leaf, index, TARGET, store.inclusion_proof(index, TARGET), root)
    p50, p99 = _percentiles(lambda i: store.inclusion_proof(i, TARGET), indices)
    figures[f"{name}_inclusion_p50_us"], figures[f"{name}_inclusion_p99_us"] = p50, p99
    p50, p99 = _percentiles(lambda m: store.consistency_proof(m, TARGET), firsts)
    figures[f"{name}_consistency_p50_us"], figures[f"{name}_consistency_p99_us"] = p50, p99


def _appends(name: str, store: LedgerStore, figures: dict[str, float]) -> None:
    figures[f"{name}_append_single_per_s"] = _rate(store, SINGLES[name], 1)
    figures[f"{name}_append_batch100_per_s"] = _rate(store, BATCHES[name] * 100, 100)


@contextmanager
def _postgres() -> Iterator[str | None]:
    schema = f"bench_{uuid.uuid4().hex}"
    admin = create_engine(normalise_url(POSTGRES))
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except OperationalError as exc:
        console.print(f"[yellow]PostgreSQL unavailable at {POSTGRES}: {exc.orig}[/]")
        yield None
        return
    try:
        sep = "&" if "?" in POSTGRES else "?"
        yield f"{POSTGRES}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def _sql(name: str, url: str, figures: dict[str, float]) -> None:
    store = SqlLedgerStore.from_url(url)
    try:
        _appends(name, store, figures)
        _proofs(name, store, figures)
    finally:
        store.close()


def _table(figures: dict[str, float]) -> Table:
    table = Table(title="audit ledger")
    for column in (
        "store",
        "single/s",
        "batch100/s",
        "incl p50",
        "incl p99",
        "cons p50",
        "cons p99",
    ):
        table.add_column(column, justify="right")
    for name in ("memory", "sqlite", "postgres"):
        cells = [
            figures.get(f"{name}_{key}")
            for key in (
                "append_single_per_s",
                "append_batch100_per_s",
                "inclusion_p50_us",
                "inclusion_p99_us",
                "consistency_p50_us",
                "consistency_p99_us",
            )
        ]
        table.add_row(name, *("-" if c is None else f"{c:,.0f}" for c in cells))
    table.caption = "appends in entries/s; proofs in µs at 100,000 entries"
    return table


def main() -> dict[str, float]:
    figures: dict[str, float] = {}
    memory = MemoryLedgerStore()
    _appends("memory", memory, figures)
    _proofs("memory", memory, figures)
    with tempfile.TemporaryDirectory() as folder:
        _sql("sqlite", f"sqlite:///{Path(folder) / 'ledger.db'}", figures)
    with _postgres() as url:
        if url is not None:
            _sql("postgres", url, figures)
    console.print(_table(figures))
    for name in ("memory", "sqlite", "postgres"):
        if f"{name}_fill_to_100k_s" in figures:
            console.print(f"{name}: filled to 100,000 in {figures[f'{name}_fill_to_100k_s']:.1f} s")
    return {key: round(value, 1) for key, value in figures.items()}


if __name__ == "__main__":
    main()
