"""A registry write and its ledger entry commit together or not at all (SQLite, PostgreSQL).

The failure is injected between the two steps: a real SQL ledger store whose
in-transaction append writes the entry, then raises (a crash before commit).
Afterwards neither the registry row nor the entry is visible, and the next
write lands at the index the failed one would have taken.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from sqlalchemy import Connection
from tests.builders.api import make_party

from dure.policies.dsse import Envelope
from dure.policies.entries import LedgerEntry
from dure.policies.examples import EXAMPLE_NOW, example_job_value
from dure.policies.job import JobManifest
from dure.policies.keys import SigningKey, VerifyKey
from dure.policies.signed import sign_document
from dure.server.ledger.errors import LedgerError
from dure.server.ledger.sql import SqlLedgerStore
from dure.server.storage.database import Database
from dure.server.storage.errors import ConflictError
from dure.server.storage.jobs import SqlJobStore
from dure.server.storage.registry import SqlRegistry

NOW = EXAMPLE_NOW


class _CrashAfterAppend(SqlLedgerStore):
    """A SQL ledger store that fails right after writing its entry, before the commit."""

    def append_within(self, conn: Connection, entries: Sequence[bytes]) -> int:
        super().append_within(conn, entries)
        raise LedgerError("injected crash between the registry write and the commit")


def _stores(db: Database) -> tuple[SqlLedgerStore, SqlRegistry, SqlRegistry]:
    store = SqlLedgerStore(db.engine)
    crashing = _CrashAfterAppend(db.engine)
    return store, SqlRegistry(db, ledger=store), SqlRegistry(db, ledger=crashing)


def _entry_at(store: SqlLedgerStore, index: int, entry: LedgerEntry) -> None:
    assert store.entries(index, index + 1) == [entry.to_bytes()]


def test_a_site_registration_and_its_entry_are_one_transaction(db: Database) -> None:
    store, registry, crashing = _stores(db)
    party = make_party("factory-a")
    with pytest.raises(LedgerError, match="injected crash"):
        crashing.register_site_ledgered(party.identity, NOW)
    assert registry.sites() == () and store.size() == 0
    done = registry.register_site_ledgered(party.identity, NOW)
    assert done.index == 0 and store.size() == 1
    _entry_at(store, 0, done.entry)
    assert [s.name for s in registry.sites()] == ["factory-a"]


def test_a_policy_and_its_revocation_are_each_one_transaction(db: Database) -> None:
    store, registry, crashing = _stores(db)
    party = make_party("factory-a")
    registry.register_site_ledgered(party.identity, NOW)
    with pytest.raises(LedgerError, match="injected crash"):
        crashing.register_policy_ledgered(party.policy, NOW)
    assert registry.site("factory-a").policy is None and registry.policies() == []
    assert store.size() == 1
    policy = registry.register_policy_ledgered(party.policy, NOW)
    assert policy.index == 1
    _entry_at(store, 1, policy.entry)
    with pytest.raises(LedgerError, match="injected crash"):
        crashing.revoke_ledgered(party.revocation(), NOW)
    current = registry.site("factory-a").policy
    assert current is not None and not current.revoked and store.size() == 2
    revoked = registry.revoke_ledgered(party.revocation(), NOW)
    assert revoked.index == 2 and registry.policy(policy.entry.policy_id).registered.revoked
    _entry_at(store, 2, revoked.entry)


def test_a_job_and_its_entry_are_one_transaction(db: Database) -> None:
    operator = SigningKey.generate()
    keys: dict[str, VerifyKey] = {operator.key_id: operator.public}
    store = SqlLedgerStore(db.engine)
    jobs = SqlJobStore(db, keys, ledger=store)
    crashing = SqlJobStore(db, keys, ledger=_CrashAfterAppend(db.engine))
    job: Envelope = sign_document(
        "job", JobManifest.from_value(example_job_value(dp=False)), operator
    )
    with pytest.raises(LedgerError, match="injected crash"):
        crashing.register_ledgered(job, NOW)
    assert jobs.jobs() == [] and store.size() == 0
    record, entry, index = jobs.register_ledgered(job, NOW)
    assert index == 0 and [r.job.job_id for r in jobs.jobs()] == [record.job.job_id]
    _entry_at(store, 0, entry)


def test_a_refused_registration_appends_nothing(db: Database) -> None:
    store, registry, _ = _stores(db)
    party = make_party("factory-a")
    registry.register_site_ledgered(party.identity, NOW)
    registry.register_policy_ledgered(party.policy, NOW)
    size = store.size()
    with pytest.raises(ConflictError, match="already registered"):
        registry.register_policy_ledgered(party.policy, NOW)
    assert store.size() == size
