"""The factory keeps only receipts that verify against its pinned ledger key and concern it."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from dure.client.federation.receipts import ReceiptBox
from dure.policies.contribution import epsilon_spent_by
from dure.policies.encoding import b64encode
from dure.policies.entries import AggregateCommitted, SiteAdmitted
from dure.policies.keys import SigningKey
from dure.server.ledger.memory import MemoryLedgerStore
from dure.server.ledger.service import Ledger

T = "2026-11-15T09:00:00Z"
A, B = "urn:dure:site:factory-a", "urn:dure:site:factory-b"


def _ledger() -> tuple[Ledger, list[dict[str, object]]]:
    ledger = Ledger(MemoryLedgerStore(), SigningKey.generate(), "dure.test/ledger")
    entries = [
        SiteAdmitted(time=T, job_id="j1", site=A, policy_id="44" * 32),
        SiteAdmitted(time=T, job_id="j1", site=B, policy_id="55" * 32),
        AggregateCommitted(
            time=T,
            job_id="j1",
            round=1,
            model_digest="66" * 32,
            parent_model=None,
            contributors=(A, B),
            epsilon_spent="0.75",
            strategy="fedavg",
        ),
    ]
    ledger.append_all(entries)
    ledger.checkpoint()
    items = [
        {"entry": b64encode(e.to_bytes()), "receipt": json.loads(ledger.receipt(i).to_json())}
        for i, e in enumerate(entries)
    ]
    return ledger, items


def test_valid_receipts_about_the_site_are_kept_in_ledger_order(tmp_path: Path) -> None:
    ledger, items = _ledger()
    box = ReceiptBox(tmp_path, ledger.public_key(), A)
    kept = box.accept(json.dumps([items[2], items[0]]))
    assert (kept.kept, kept.problems) == (2, ())
    assert [e.kind for e in box.entries()] == ["site_admitted", "aggregate_committed"]
    assert epsilon_spent_by(box.entries(), A) == Decimal("0.75")
    assert box.epsilon_spent() == Decimal("0.75")
    assert box.epsilon_spent(exclude_job="j1") == 0
    assert [e.kind for e in box.entries("aggregate_committed", skip_job="j1")] == []


def test_receipts_about_another_site_are_refused(tmp_path: Path) -> None:
    ledger, items = _ledger()
    kept = ReceiptBox(tmp_path, ledger.public_key(), A).accept(json.dumps([items[1]]))
    assert kept.kept == 0 and "not about urn:dure:site:factory-a" in kept.problems[0]


def test_receipts_that_do_not_verify_are_refused(tmp_path: Path) -> None:
    ledger, items = _ledger()
    other = Ledger(MemoryLedgerStore(), SigningKey.generate(), "dure.test/ledger")
    assert ReceiptBox(tmp_path, other.public_key(), A).accept(json.dumps(items[:1])).kept == 0
    forged = dict(items[0])
    forged["entry"] = items[1]["entry"]
    box = ReceiptBox(tmp_path, ledger.public_key(), B)
    result = box.accept(json.dumps([forged]))
    assert result.kept == 0 and result.problems
    assert box.accept("not json").problems and box.accept('[{"x": 1}]').problems
    assert box.entries() == []
