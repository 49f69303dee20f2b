"""LedgerStore contract: concurrent writers never fork the log, skip or repeat an index."""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from collections import Counter

import pytest
from tests.contract.ledger.backends import Backend
from tests.contract.ledger.workers import append_worker, entry_for

from dure.policies import merkle
from dure.policies.checkpoint import Checkpoint, sign_checkpoint
from dure.policies.note import Ed25519Signer
from dure.server.ledger.errors import LedgerConflictError
from dure.server.ledger.store import LedgerStore

WRITERS, APPENDS = 4, 25


def check_log(store: LedgerStore, writers: int, appends: int) -> None:
    """Exactly writers x appends entries, each once, each writer's in its own order."""
    total = writers * appends
    assert store.size() == total
    entries = store.entries(0, total)
    assert Counter(entries) == Counter(
        entry_for(w, n) for w in range(writers) for n in range(appends)
    )
    for writer in range(writers):
        mine = [e for e in entries if e.startswith(f'{{"writer":{writer},'.encode())]
        assert mine == [entry_for(writer, n) for n in range(appends)]
    assert store.leaf_hashes(0, total) == [merkle.leaf_hash(e) for e in entries]
    assert store.root(total) == merkle.root_hash(entries)


def run_threads(target: object, count: int) -> None:
    errors: list[BaseException] = []

    def guarded(i: int) -> None:
        try:
            target(i)  # type: ignore[operator]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


def test_threads_appending_single_entries(backend: Backend) -> None:
    stores = [backend.open() for _ in range(WRITERS)]  # one store object per writer

    def write(writer: int) -> None:
        for n in range(APPENDS):
            stores[writer].append([entry_for(writer, n)])

    run_threads(write, WRITERS)
    check_log(backend.open(), WRITERS, APPENDS)


def test_threads_sharing_one_store_with_batches(store: LedgerStore) -> None:
    def write(writer: int) -> None:
        for start in range(0, APPENDS, 3):
            store.append([entry_for(writer, n) for n in range(start, min(start + 3, APPENDS))])

    run_threads(write, WRITERS)
    check_log(store, WRITERS, APPENDS)


def test_checkpoints_racing_appends_stay_consistent(
    store: LedgerStore, signer: Ed25519Signer
) -> None:
    vkey = signer.verifier().to_vkey()
    stored: list[int] = []

    def work(role: int) -> None:
        if role < 2:
            for n in range(APPENDS):
                store.append([entry_for(role, n)])
            return
        for _ in range(APPENDS):
            size = store.size()
            note = sign_checkpoint(Checkpoint(signer.name, size, store.root(size)), signer)
            # Another checker may store a larger one first: refusing is then the contract.
            with contextlib.suppress(LedgerConflictError):
                stored.append(store.put_checkpoint(note, vkey).checkpoint.size)

    run_threads(work, 4)
    check_log(store, 2, APPENDS)
    latest = store.latest_checkpoint()
    assert latest is not None and latest.checkpoint.size == max(stored)


@pytest.mark.slow
def test_processes_appending_concurrently(sql_backend: Backend) -> None:
    store = sql_backend.open()  # creates the schema before the writers start
    assert sql_backend.url is not None
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WRITERS)
    processes = [
        context.Process(target=append_worker, args=(sql_backend.url, writer, APPENDS, barrier))
        for writer in range(WRITERS)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0] * WRITERS
    check_log(store, WRITERS, APPENDS)
