"""Replay: every invariant, broken on purpose, is reported at the exact entry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from tests.builders.audit import History, digest_of, site_urn

from dure.policies.audit.errors import AuditError
from dure.policies.audit.findings import VIOLATION_CODES
from dure.policies.audit.replay import replay
from dure.policies.entries import PolicyRegistered, SiteRegistered
from dure.policies.examples import EXAMPLE_NOW

A, B, C, D = (site_urn(n) for n in ("factory-a", "factory-b", "factory-c", "factory-d"))
Case = Callable[[], tuple[History, int, str]]


def _three() -> tuple[History, dict[str, str]]:
    history = History()
    return history, history.join("factory-a", "factory-b", "factory-c")


def _round(
    history: History,
    policies: dict[str, str],
    sites: list[str] | None = None,
    task: str = "pick-place",
) -> str:
    """Sign a two-round job, admit everyone, open round 1 for ``sites`` (default all)."""
    job = history.sign_job(rounds=2, task=task)
    for site, policy_id in policies.items():
        history.admit(job, site, policy_id)
    history.open_round(job, 1, sites or sorted(policies), None)
    return job


def unregistered_policy() -> tuple[History, int, str]:
    h, p = _three()
    job = _round(h, p)
    return h, h.contribute(job, 1, A, digest_of("never registered")), "policy.unregistered"


def wrong_site_policy() -> tuple[History, int, str]:
    h, p = _three()
    job = _round(h, p)
    return h, h.contribute(job, 1, A, p[B]), "policy.wrong_site"


def expired_policy() -> tuple[History, int, str]:
    h = History()
    p = h.join("factory-a", "factory-b")
    h.register_site("factory-c")
    p[C] = h.register_policy("factory-c", expires=EXAMPLE_NOW + timedelta(minutes=5))
    job = _round(h, p)
    return h, h.contribute(job, 1, C, p[C]), "policy.expired"


def revoked_before_round() -> tuple[History, int, str]:
    h, p = _three()
    job = h.sign_job(rounds=2)
    for site, policy_id in p.items():
        h.admit(job, site, policy_id)
    h.revoke("factory-b", p[B])
    h.open_round(job, 1, sorted(p), None)
    return h, h.contribute(job, 1, B, p[B]), "policy.revoked"


def never_admitted() -> tuple[History, int, str]:
    h, p = _three()
    h.join("factory-d")
    job = _round(h, p)
    return h, h.contribute(job, 1, D, digest_of("x")), "admission.missing"


def refused_then_contributed() -> tuple[History, int, str]:
    h, p = _three()
    job = _round(h, p)
    h.refuse(job, C, p[C])
    return h, h.contribute(job, 1, C, p[C]), "admission.refused"


def round_never_opened() -> tuple[History, int, str]:
    h, p = _three()
    job = _round(h, p)
    return h, h.contribute(job, 2, A, p[A]), "round.not_opened"


def not_sampled() -> tuple[History, int, str]:
    h, p = _three()
    job = _round(h, p, [A, B])
    return h, h.contribute(job, 1, C, p[C]), "round.site_not_sampled"


def sampled_not_admitted() -> tuple[History, int, str]:
    h, p = _three()
    job = h.sign_job()
    h.admit(job, A, p[A])
    return h, h.open_round(job, 1, [A, B], None), "round.site_not_admitted"


def contributed_twice() -> tuple[History, int, str]:
    h, p = _three()
    job = _round(h, p)
    h.contribute(job, 1, A, p[A])
    return h, h.contribute(job, 1, A, p[A]), "contribution.duplicate"


def round_opened_twice() -> tuple[History, int, str]:
    h, p = _three()
    job = _round(h, p)
    return h, h.open_round(job, 1, sorted(p), None), "round.duplicate"


def _contributed(h: History, p: dict[str, str], job: str) -> None:
    for site in sorted(p):
        h.contribute(job, 1, site, p[site])


def wrong_parent() -> tuple[History, int, str]:
    h, p = _three()
    job = _round(h, p)
    _contributed(h, p, job)
    h.aggregate(job, 1, sorted(p), digest_of("some other model"), "2.00")
    return h, len(h.entries) - 1, "aggregate.parent_mismatch"


def phantom_contributor() -> tuple[History, int, str]:
    h, p = _three()
    job = _round(h, p, [A, B])
    h.contribute(job, 1, A, p[A])
    h.contribute(job, 1, B, p[B])
    h.aggregate(job, 1, [A, B, C], None, "2.00")
    return h, len(h.entries) - 1, "aggregate.contributor_missing"


def aggregated_twice() -> tuple[History, int, str]:
    h, p = _three()
    job = _round(h, p)
    _contributed(h, p, job)
    h.aggregate(job, 1, sorted(p), None, "2.00")
    h.aggregate(job, 1, sorted(p), None, "2.00")
    return h, len(h.entries) - 1, "aggregate.duplicate"


def unknown_job() -> tuple[History, int, str]:
    h, p = _three()
    return h, h.admit("no-such-job", A, p[A]), "job.unknown"


def job_signed_twice_differently() -> tuple[History, int, str]:
    h, _ = _three()
    h.sign_job(rounds=2)
    return h, h.add(h.entries[-1].model_copy(update={"job_digest": digest_of("x")})), "job.conflict"


def policy_of_unregistered_site() -> tuple[History, int, str]:
    h = History()
    return h, _index(h, h.register_policy("factory-a")), "site.unregistered"


def _index(h: History, _: object) -> int:
    return len(h.entries) - 1


def key_changed() -> tuple[History, int, str]:
    h, _ = _three()
    first = h.entries[0]
    assert isinstance(first, SiteRegistered)
    changed = first.model_copy(update={"signing_key_id": digest_of("another key")})
    return h, h.add(changed), "site.key_changed"


def policy_of_two_sites() -> tuple[History, int, str]:
    h, p = _three()
    stolen = PolicyRegistered(time=h.now(), site=B, policy_id=p[A], expires=EXAMPLE_NOW)
    return h, h.add(stolen), "policy.conflict"


def model_committed_twice() -> tuple[History, int, str]:
    h, p = _three()
    model = h.run_job(p, rounds=1)
    job = _round(h, p, task="push")
    _contributed(h, p, job)
    h.aggregate(job, 1, sorted(p), None, "2.00")
    return h, h.add(h.entries.pop().model_copy(update={"model_digest": model})), "model.duplicate"


def released_unknown_model() -> tuple[History, int, str]:
    h, _ = _three()
    return h, h.release(digest_of("never trained"), [A]), "model.unknown"


def admitted_under_revoked_policy() -> tuple[History, int, str]:
    h, p = _three()
    job = h.sign_job()
    h.revoke("factory-a", p[A])
    return h, h.admit(job, A, p[A]), "admission.policy"


def rejected_in_unopened_round() -> tuple[History, int, str]:
    h, p = _three()
    job = _round(h, p)
    return h, h.reject(job, 3, A), "round.not_opened"


CASES: list[Case] = [
    unregistered_policy,
    wrong_site_policy,
    expired_policy,
    revoked_before_round,
    never_admitted,
    refused_then_contributed,
    round_never_opened,
    not_sampled,
    sampled_not_admitted,
    contributed_twice,
    round_opened_twice,
    wrong_parent,
    phantom_contributor,
    aggregated_twice,
    unknown_job,
    job_signed_twice_differently,
    policy_of_unregistered_site,
    key_changed,
    policy_of_two_sites,
    model_committed_twice,
    released_unknown_model,
    admitted_under_revoked_policy,
    rejected_in_unopened_round,
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_each_violation_is_reported_at_its_entry(case: Case) -> None:
    history, index, code = case()
    assert code in VIOLATION_CODES
    report = replay(history.pairs(), history.world.documents())
    found = {(v.index, v.code) for v in report.violations}
    assert (index, code) in found, [v.describe() for v in report.violations]
    assert not report.ok()
    assert all(v.index <= index for v in report.violations), "nothing reported past the fault"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_structural_violations_need_no_documents(case: Case) -> None:
    history, index, code = case()
    report = replay(history.pairs())
    assert (index, code) in {(v.index, v.code) for v in report.violations}


def test_revocation_during_a_round_does_not_void_that_round() -> None:
    h, p = _three()
    job = _round(h, p)
    h.revoke("factory-a", p[A])
    _contributed(h, p, job)
    assert replay(h.pairs(), h.world.documents()).violations == ()


def test_honest_history_passes_and_every_check_is_made() -> None:
    h = History()
    p = h.join("factory-a", "factory-b", "factory-c")
    h.join("factory-d", consortium="elsewhere")
    first = h.run_job(p, rounds=2)
    h.refuse("bc-pick-place-1", D, None)
    second = h.run_job(p, rounds=3, parent=first, task="push")
    h.release(second, [A, B])
    h.revoke("factory-c", p[C], "retrain-without")
    report = replay(h.pairs(), h.world.documents())
    assert report.violations == () and report.unverified == ()
    assert report.ok(strict=True)
    assert report.checked == 15 + 5 + 15 + 2  # allows, minimum, ε per contributor, release
    assert report.entries == len(h.entries)


def test_without_documents_checks_are_unverified_and_strict_fails() -> None:
    h, p = _three()
    h.release(h.run_job(p), [A])
    report = replay(h.pairs())
    assert report.ok() and not report.ok(strict=True)
    checks = {u.check for u in report.unverified}
    assert checks == {
        "policy.allows",
        "aggregate.min_contributors",
        "dp.budget",
        "release.recipients",
    }
    assert report.checked == 0


def test_indices_must_increase() -> None:
    h, _ = _three()
    with pytest.raises(AuditError, match="increasing"):
        replay([(1, h.entries[1]), (0, h.entries[0])])


def test_report_is_json_and_describes_entries() -> None:
    h, p = _three()
    job = _round(h, p)
    h.contribute(job, 1, A, digest_of("nope"))
    report = replay(h.pairs())
    value = report.to_json_value()
    assert value["entries"] == len(h.entries)
    first = report.first_violation
    assert first is not None and first.describe().startswith(f"entry {first.index} (")
    assert report.codes() == {"policy.unregistered"}
