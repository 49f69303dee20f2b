"""Jobs, nonces, rounds, retrain requests and auditors on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from dure.policies.errors import SignatureError
from dure.policies.examples import EXAMPLE_NOW, example_job
from dure.policies.keys import SigningKey
from dure.policies.signed import sign_document
from dure.server.storage.auditors import SqlAuditorStore
from dure.server.storage.database import Database
from dure.server.storage.errors import ConflictError, NotFoundError, StorageError
from dure.server.storage.jobs import SqlJobStore
from dure.server.storage.nonces import SqlNonceStore
from dure.server.storage.retrains import SqlRetrainStore
from dure.server.storage.rounds import RoundRecord, SqlRoundStore
from dure.server.storage.tables import JobRow

NOW = EXAMPLE_NOW


def test_jobs_are_verified_stored_once_and_reopened(db: Database) -> None:
    operator = SigningKey.generate()
    store = SqlJobStore(db, {operator.key_id: operator.public})
    envelope = sign_document("job", example_job(dp=False), operator)
    record, entry = store.register(envelope, NOW)
    assert entry.job_id == record.job.job_id == "bc-pick-place-1"
    assert entry.job_digest == record.opened.document_id
    assert entry.operator_key_id == operator.key_id
    with pytest.raises(ConflictError):
        store.register(envelope, NOW)
    with pytest.raises(ConflictError):  # same job id, other content
        store.register(sign_document("job", example_job(dp=False, rounds=7), operator), NOW)
    with pytest.raises(SignatureError):
        store.register(sign_document("job", example_job(task="push"), SigningKey.generate()), NOW)
    assert [r.job.job_id for r in store.jobs()] == ["bc-pick-place-1"]
    assert store.by_digest(entry.job_digest) == store.job("bc-pick-place-1")
    assert store.by_digest("0" * 64) is None
    with pytest.raises(NotFoundError):
        store.job("nope")


def test_a_job_edited_in_the_database_fails_verification(db: Database) -> None:
    operator = SigningKey.generate()
    store = SqlJobStore(db, {operator.key_id: operator.public})
    store.register(sign_document("job", example_job(dp=False), operator), NOW)
    store.register(sign_document("job", example_job(task="push"), operator), NOW)
    table = JobRow.__table__  # type: ignore[attr-defined]
    other = store.job("bc-push-1").opened.envelope.to_json().decode()
    db.run(
        lambda c: c.execute(
            update(table).where(table.c.job_id == "bc-pick-place-1").values(envelope=other)
        ),
        write=True,
    )
    with pytest.raises(StorageError):
        store.job("bc-pick-place-1")


def test_a_nonce_is_claimed_once_until_it_expires(db: Database) -> None:
    nonces = SqlNonceStore(db)
    assert nonces.claim("a" * 32, "k", expires=1000, now=900)
    assert not nonces.claim("a" * 32, "k", expires=1000, now=950)
    assert nonces.claim("b" * 32, "k", expires=1000, now=950)
    # once its window has passed the nonce is purged (its request is refused as stale anyway)
    assert nonces.claim("a" * 32, "k", expires=2000, now=1001)


def test_concurrent_claims_of_one_nonce_have_one_winner(db: Database) -> None:
    nonces = SqlNonceStore(db)
    results: list[bool] = []
    barrier = threading.Barrier(6)

    def claim() -> None:
        barrier.wait()
        results.append(nonces.claim("c" * 32, "k", expires=10**9, now=0))

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 5 + [True]


def test_round_records_are_replaced_and_listed_in_order(db: Database) -> None:
    rounds = SqlRoundStore(db)
    rounds.record(RoundRecord("job-b", 1, "committed", ("s1",), ("s1",), "ab" * 32, "0.5"), NOW)
    rounds.record(RoundRecord("job-a", 2, "open", ("s1", "s2")), NOW)
    rounds.record(RoundRecord("job-a", 1, "aborted", reason="too few"), NOW)
    rounds.record(RoundRecord("job-a", 2, "stopped", reason="revoked"), NOW + timedelta(1))
    listed = rounds.rounds()
    assert [(r.job_id, r.round, r.status) for r in listed] == [
        ("job-a", 1, "aborted"),
        ("job-a", 2, "stopped"),
        ("job-b", 1, "committed"),
    ]
    assert listed[1].updated == "2026-11-16T09:00:00Z" and listed[1].sampled == ()
    assert rounds.rounds("job-b")[0].contributors == ("s1",)
    with pytest.raises(ValueError):
        RoundRecord("job-a", 1, "finished")  # type: ignore[arg-type]


def test_retrain_requests_get_ids_and_keep_their_fields(db: Database) -> None:
    retrains = SqlRetrainStore(db)
    first = retrains.add(
        model_digest="aa" * 32,
        site="urn:dure:site:factory-c",
        parent_model=None,
        replaces=("aa" * 32,),
        requested_by="k",
        now=NOW,
    )
    second = retrains.add(
        model_digest="bb" * 32,
        site="urn:dure:site:factory-c",
        parent_model="cc" * 32,
        replaces=("bb" * 32, "dd" * 32),
        requested_by="k",
        now=NOW,
    )
    assert second.id > first.id
    assert retrains.requests() == [first, second]
    assert retrains.requests(model_digest="bb" * 32) == [second]


def test_auditors_are_named_once_per_site(db: Database) -> None:
    auditors = SqlAuditorStore(db)
    key = SigningKey.generate().public
    auditors.add("factory-a", "sme audit", key, NOW)
    auditors.add("factory-b", "sme audit", key, NOW)
    with pytest.raises(ConflictError):
        auditors.add("factory-a", "again", key, NOW)
    assert [a.site for a in auditors.by_key(key.key_id)] == ["factory-a", "factory-b"]
    assert auditors.auditors("factory-a")[0].key == key
    assert auditors.auditors("factory-c") == []
