"""The storages the ledger contract suite runs against."""

from __future__ import annotations

from dataclasses import dataclass, field

from dure.server.ledger.memory import MemoryLedgerStore
from dure.server.ledger.sql import SqlLedgerStore
from dure.server.ledger.store import LedgerStore

__all__ = ["Backend"]


@dataclass
class Backend:
    """One storage under test; ``open()`` gives another store on the same storage."""

    name: str
    url: str | None
    _memory: MemoryLedgerStore | None = None
    _opened: list[SqlLedgerStore] = field(default_factory=list)

    def open(self) -> LedgerStore:
        if self._memory is not None:
            return self._memory
        assert self.url is not None
        store = SqlLedgerStore.from_url(self.url)
        self._opened.append(store)
        return store

    def close(self) -> None:
        for store in self._opened:
            store.close()
