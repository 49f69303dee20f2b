"""Replay with signed documents: the kernel's evaluation re-run, ε, minimums, releases."""

from __future__ import annotations

from dataclasses import replace

from tests.builders.audit import History, site_urn

from dure.policies.audit.documents import (
    DocumentProblem,
    DocumentSource,
    open_job,
    open_policy,
    site_key,
)
from dure.policies.audit.replay import replay
from dure.policies.entries import JobSigned
from dure.policies.keys import SigningKey
from dure.policies.policy import UsagePolicy
from dure.policies.signed import sign_document

A, B, C = (site_urn(n) for n in ("factory-a", "factory-b", "factory-c"))


def _violations(history: History, documents: DocumentSource | None = None) -> set[tuple[int, str]]:
    report = replay(history.pairs(), documents or history.world.documents())
    return {(v.index, v.code) for v in report.violations}


def test_a_policy_that_does_not_allow_the_job_is_caught_at_the_contribution() -> None:
    h = History()
    p = h.join("factory-a", "factory-b")
    h.register_site("factory-c")
    p[C] = h.register_policy("factory-c", tasks=("assembly",))  # no pick-place episodes
    job = h.sign_job()
    for site, policy_id in p.items():
        h.admit(job, site, policy_id)
    h.open_round(job, 1, sorted(p), None)
    index = h.contribute(job, 1, C, p[C])
    report = replay(h.pairs(), h.world.documents())
    assert {(v.index, v.code) for v in report.violations} == {(index, "policy.denied")}
    assert "selector: no episode can match" in report.violations[0].message


def test_the_evaluation_sees_the_recipients() -> None:
    h = History()
    p = h.join("factory-a", "factory-b", "factory-c", members=("factory-a", "factory-b"))
    model = h.run_job(p, rounds=1)  # the job names factory-c as a recipient
    denied = {(i, code) for i, code in _violations(h) if code == "policy.denied"}
    assert len(denied) == 3
    assert model


def test_epsilon_over_the_budget_is_caught_at_the_aggregate() -> None:
    h = History()
    p = h.join("factory-a", "factory-b", "factory-c", dp_epsilon="5.0")
    first = h.run_job(p, rounds=2)
    h.run_job(p, rounds=2, parent=first, task="push")
    aggregates = [i for i, e in h.pairs() if e.kind == "aggregate_committed"]
    found = _violations(h)
    over = sorted(i for i, code in found if code == "dp.budget_exceeded")
    assert over == [aggregates[2], aggregates[3]]  # 4 + 2 > 5, then 4 + 4 > 5
    assert {i for i, code in found if code == "policy.denied"}  # admission would have refused


def test_a_job_spending_more_than_it_declared_or_hiding_epsilon() -> None:
    h = History()
    p = h.join("factory-a", "factory-b", "factory-c")
    job = h.sign_job(rounds=2)
    for site, policy_id in p.items():
        h.admit(job, site, policy_id)
    h.open_round(job, 1, sorted(p), None)
    for site in sorted(p):
        h.contribute(job, 1, site, p[site])
    h.aggregate(job, 1, sorted(p), None, None)
    hidden = len(h.entries) - 1
    h.open_round(job, 2, sorted(p), h.entries[-1].model_dump()["model_digest"])
    for site in sorted(p):
        h.contribute(job, 2, site, p[site])
    h.aggregate(job, 2, sorted(p), h.entries[-5].model_dump()["model_digest"], "4.50")
    found = _violations(h)
    assert (hidden, "dp.unrecorded") in found
    assert (len(h.entries) - 1, "dp.job_exceeded") in found


def test_too_few_contributors_for_the_job_and_the_policies() -> None:
    h = History()
    p = h.join("factory-a", "factory-b", "factory-c")
    job = h.sign_job()
    for site, policy_id in p.items():
        h.admit(job, site, policy_id)
    h.open_round(job, 1, sorted(p), None)
    for site in (A, B):
        h.contribute(job, 1, site, p[site])
    h.aggregate(job, 1, [A, B], None, "0.20")
    assert _violations(h) == {(len(h.entries) - 1, "aggregate.too_few_contributors")}


def test_release_to_a_party_no_job_named() -> None:
    h = History()
    p = h.join("factory-a", "factory-b", "factory-c")
    model = h.run_job(p, rounds=1)
    index = h.release(model, [A, "urn:dure:site:factory-z"])
    assert _violations(h) == {(index, "release.recipient_not_allowed")}


def test_a_policy_document_signed_by_another_key_is_a_violation() -> None:
    h = History()
    p = h.join("factory-a", "factory-b", "factory-c")
    h.run_job(p, rounds=1)
    forged = sign_document("policy", _policy(h, p[A]), h.world.site("factory-b").key)
    documents = h.world.documents()
    documents = replace(documents, policies={**documents.policies, p[A]: forged.to_json()})
    found = _violations(h, documents)
    assert (1, "policy.document") in found


def test_a_job_signed_by_an_unpinned_key_is_a_violation() -> None:
    h = History()
    p = h.join("factory-a", "factory-b", "factory-c")
    h.run_job(p, rounds=1, key=SigningKey.from_seed(b"\x42" * 32))
    job_index = next(i for i, e in h.pairs() if e.kind == "job_signed")
    assert (job_index, "job.document") in _violations(h)


def test_an_identity_that_is_not_the_registered_one_is_a_violation() -> None:
    h = History()
    h.join("factory-a", "factory-b")
    documents = h.world.documents()
    a, b = h.world.site("factory-a"), h.world.site("factory-b")
    swapped = {a.identity_id: b.identity.to_json(), b.identity_id: b.identity.to_json()}
    assert _violations(h, replace(documents, identities=swapped)) == {(0, "site.identity")}


def test_pinned_site_keys_replace_identity_documents() -> None:
    h = History()
    p = h.join("factory-a", "factory-b", "factory-c")
    h.run_job(p, rounds=1)
    documents = h.world.documents()
    keys = {party.urn: party.key.public for party in h.world.sites.values()}
    pinned = replace(documents, identities={}, site_keys=keys)
    report = replay(h.pairs(), pinned)
    assert report.ok(strict=True)
    wrong = replace(pinned, site_keys={**keys, A: h.world.site("factory-b").key.public})
    assert (0, "site.identity") in {(v.index, v.code) for v in replay(h.pairs(), wrong).violations}


def test_document_lookups_say_what_is_missing() -> None:
    h = History()
    p = h.join("factory-a")
    empty = DocumentSource()
    key = site_key(empty, A, h.world.site("factory-a").identity_id, "0" * 64)
    assert isinstance(key, DocumentProblem) and key.missing
    policy = open_policy(empty, p[A], A, key)
    assert isinstance(policy, DocumentProblem) and policy.missing
    job_entry = JobSigned(
        time=h.now(),
        job_id="j",
        job_digest="0" * 64,
        operator_key_id="0" * 64,
        purpose="urn:dure:purpose:x:v1",
    )
    job = open_job(empty, job_entry)
    assert isinstance(job, DocumentProblem) and job.missing
    assert DocumentSource().empty and not h.world.documents().empty


def _policy(h: History, policy_id: str) -> UsagePolicy:
    return UsagePolicy.from_canonical_bytes(h.world.policies[policy_id].payload)
