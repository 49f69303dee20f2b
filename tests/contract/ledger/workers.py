"""Writer processes for the multi-process ledger tests (importable by spawned children)."""

from __future__ import annotations

from multiprocessing.synchronize import Barrier

from dure.server.ledger.sql import SqlLedgerStore

__all__ = ["append_worker", "entry_for"]


def entry_for(writer: int, number: int) -> bytes:
    """The distinct entry bytes writer ``writer`` appends as its ``number``-th."""
    return f'{{"writer":{writer},"n":{number}}}'.encode()


def append_worker(url: str, writer: int, count: int, start_together: Barrier) -> None:
    """Append ``count`` entries, alternating single entries and batches of 4.

    Every writer first opens its store, then waits for the others, so their
    transactions really race instead of running one process after another.
    """
    store = SqlLedgerStore.from_url(url, create=False)
    start_together.wait(timeout=60)
    try:
        start, batch = 0, 1
        while start < count:
            numbers = range(start, min(start + batch, count))
            store.append([entry_for(writer, n) for n in numbers])
            start, batch = numbers.stop, 5 - batch
    finally:
        store.close()
