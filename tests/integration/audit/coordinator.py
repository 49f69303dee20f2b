"""A coordinator's ledger on SQLite or PostgreSQL, filled with a realistic job history.

The history uses real signed documents (the kernel's example policies and jobs,
signed site identities): four sites join, three train a two-round job, the
fourth is refused (its policy names another consortium), a second job starts
from the first one's model, the model is released, and factory-c revokes its
policy.  The ledger signs a checkpoint after every round (as the coordinator
does) and factory-a keeps the receipts of every entry about it.

The read API of docs/ledger-format.md is implemented minimally here, over the
:class:`~dure.server.ledger.service.Ledger` service, and served through an
``httpx.MockTransport`` (the real FastAPI app belongs to the service).  It serves
the entries its tables hold, unchecked, as a hostile coordinator would after
tampering with them (the real store refuses a table with a hole in it), and
:meth:`Coordinator.export` exports them the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import text
from tests.builders.audit import History, site_urn

from dure.client.audit.evidence import HeldReceipt
from dure.policies.encoding import b64encode
from dure.policies.entries import AggregateCommitted, LedgerEntry, PolicyRegistered, RoundOpened
from dure.policies.errors import DureError
from dure.policies.keys import SigningKey
from dure.policies.receipt import Receipt
from dure.server.ledger.errors import LedgerError
from dure.server.ledger.export import export_ledger
from dure.server.ledger.service import Ledger
from dure.server.ledger.sql import SqlLedgerStore

__all__ = ["NAME", "A", "B", "C", "Coordinator", "D", "read_api", "table_rows"]

NAME = "dure.test/consortium-ledger"
KEY = SigningKey.from_seed(b"\x5a" * 32)
A, B, C, D = (site_urn(n) for n in ("factory-a", "factory-b", "factory-c", "factory-d"))


def _about(entry: LedgerEntry, site: str) -> bool:
    """Whether the factory ``site`` gets a receipt for ``entry``."""
    if isinstance(entry, RoundOpened):
        return site in entry.sites
    if isinstance(entry, AggregateCommitted):
        return site in entry.contributors
    return getattr(entry, "site", None) == site


def table_rows(store: SqlLedgerStore, start: int, end: int) -> list[bytes]:
    """The leaves the entry table holds in ``[start, end)``, unchecked (gaps skipped)."""
    if not 0 <= start <= end <= store.size():
        raise LedgerError(f"entries [{start}, {end}) are outside the ledger")
    query = text("SELECT leaf FROM dure_ledger_entry WHERE idx >= :s AND idx < :e ORDER BY idx")
    with store.engine.connect() as conn:
        return [bytes(row[0]) for row in conn.execute(query, {"s": start, "e": end})]


def read_api(ledger: Ledger) -> httpx.MockTransport:
    """The ledger read routes (docs/ledger-format.md "Read API") over ``ledger``."""
    store = ledger.store

    def handler(request: httpx.Request) -> httpx.Response:
        q = {k: int(v) for k, v in request.url.params.items()}
        path = request.url.path
        try:
            if path == "/v1/ledger/checkpoint":
                stored = store.latest_checkpoint()
                assert stored is not None
                return httpx.Response(200, text=stored.note)
            if path == "/v1/ledger/public-key":
                return httpx.Response(200, text=ledger.public_key())
            if path == "/v1/ledger/entries":
                assert isinstance(store, SqlLedgerStore)
                rows = table_rows(store, q["start"], q["end"])
                items = [
                    {"index": q["start"] + i, "entry": b64encode(e)} for i, e in enumerate(rows)
                ]
                return httpx.Response(200, json={"entries": items})
            if path == "/v1/ledger/proof/inclusion":
                hashes = store.inclusion_proof(q["index"], q["size"])
                return httpx.Response(200, json={**q, "hashes": [b64encode(h) for h in hashes]})
            if path == "/v1/ledger/proof/consistency":
                hashes = store.consistency_proof(q["first"], q["second"])
                return httpx.Response(200, json={**q, "hashes": [b64encode(h) for h in hashes]})
        except DureError as exc:
            return httpx.Response(400, json={"error": exc.message})
        return httpx.Response(404)

    return httpx.MockTransport(handler)


@dataclass
class Coordinator:
    """A ledger on ``url`` and the history it holds."""

    url: str
    history: History = field(default_factory=History)
    receipts: dict[int, Receipt] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.store = SqlLedgerStore.from_url(self.url)
        self.ledger = Ledger(self.store, KEY, NAME)
        self.appended = 0

    def close(self) -> None:
        self.store.close()

    def transport(self) -> httpx.MockTransport:
        return read_api(self.ledger)

    def play_honest_history(self) -> None:
        h = self.history
        policies = h.join("factory-a", "factory-b", "factory-c")
        h.join("factory-d", consortium="elsewhere")
        self.sync()
        first = h.run_job(policies, rounds=2)
        h.refuse("bc-pick-place-1", D, None)
        self.sync()
        second = h.run_job(policies, rounds=2, parent=first, task="push")
        h.release(second, [A, B, C])
        self.sync()
        h.revoke("factory-c", policies[C], "retrain-without")
        self.sync()

    def sync(self) -> None:
        """Append the history's new entries, checkpoint after each round, keep a's receipts."""
        new = []
        for entry in self.history.entries[self.appended :]:
            index = self.ledger.append(entry)
            if isinstance(entry, AggregateCommitted):
                self.ledger.checkpoint()
            if _about(entry, A):
                new.append(index)
        self.appended = len(self.history.entries)
        self.ledger.checkpoint()
        self.receipts.update({i: self.ledger.receipt(i) for i in new})

    def held_receipts(self, folder: Path) -> tuple[HeldReceipt, ...]:
        """Write factory-a's receipts as its factory keeps them; return them."""
        folder.mkdir(parents=True, exist_ok=True)
        held = []
        for index, receipt in sorted(self.receipts.items()):
            entry = self.history.entries[index].to_bytes()
            path = folder / f"{index:012d}-{self.history.entries[index].kind}.json"
            value = {"entry": b64encode(entry), "receipt": json.loads(receipt.to_json())}
            path.write_text(json.dumps(value))
            held.append(HeldReceipt(path, entry, receipt))
        return tuple(held)

    def documents(self, folder: Path) -> Path:
        """Write every signed document the auditor collected into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        for number, envelope in enumerate(self.history.world.envelopes()):
            (folder / f"{number:03d}.dsse.json").write_bytes(envelope)
        return folder

    def operator_key(self, path: Path) -> Path:
        self.history.world.operator.public.save(path)
        return path

    def export(self, folder: Path) -> Path:
        """Export the ledger; a tampered one as its tables hold it (the store refuses)."""
        try:
            export_ledger(self.store, folder)
        except LedgerError:
            stored = self.store.latest_checkpoint()
            assert stored is not None
            rows = table_rows(self.store, 0, stored.checkpoint.size)
            lines = [json.dumps({"index": i, "entry": b64encode(e)}) for i, e in enumerate(rows)]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "entries.jsonl").write_text("".join(line + "\n" for line in lines))
            (folder / "checkpoint").write_text(stored.note)
            (folder / "public-key").write_text(stored.verifier_key + "\n")
        return folder

    def sql(self, statement: str, **params: object) -> None:
        """Run ``statement`` on the ledger database (the tampering a DBA could do)."""
        with self.store.engine.begin() as conn:
            conn.execute(text(statement), params)

    def leaf(self, index: int) -> bytes:
        return self.store.entries(index, index + 1)[0]

    def policies(self) -> dict[str, str]:
        """Site URN -> the policy id it registered (the first, for each site)."""
        found: dict[str, str] = {}
        for entry in self.history.entries:
            if isinstance(entry, PolicyRegistered):
                found.setdefault(entry.site, entry.policy_id)
        return found

    def index_of(self, kind: str, site: str | None = None, nth: int = 0) -> int:
        found = [
            i
            for i, e in enumerate(self.history.entries)
            if e.kind == kind and (site is None or getattr(e, "site", None) == site)
        ]
        return found[nth]
