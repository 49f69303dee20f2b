"""Admission before sampling: every site's policy against the job, with every reason."""

from __future__ import annotations

from decimal import Decimal
from itertools import combinations

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.builders.federation import (
    CONSORTIUM,
    plain_policy,
    supernode_key,
    term,
    with_prohibited_purpose,
    with_use_constraint,
)

from dure.policies.canonical import JsonValue
from dure.policies.entries import SiteAdmitted, SiteRefused
from dure.policies.examples import EXAMPLE_NOW, EXAMPLE_PURPOSE, example_job, example_policy_value
from dure.policies.identity import SiteIdentity
from dure.policies.keys import SigningKey
from dure.policies.policy import UsagePolicy
from dure.policies.signed import open_document, sign_document
from dure.server.federation.admission import (
    MAX_REASONS,
    admission_entries,
    admit,
    largest_feasible,
    reason_lines,
)
from dure.server.federation.registry import RegisteredPolicy, RegisteredSite


def _site(
    name: str, value: dict[str, JsonValue] | None, *, revoked: bool = False
) -> RegisteredSite:
    key = SigningKey.generate()
    identity = SiteIdentity.create(name, key, supernode_key()[0])
    if value is None:
        return RegisteredSite(identity, identity.document_id())
    envelope = sign_document("policy", UsagePolicy.from_value(value), key)
    opened = open_document(envelope, "policy", UsagePolicy, {key.key_id: key.public})
    registered = RegisteredPolicy(opened, revocation=None)
    if revoked:
        registered = RegisteredPolicy(opened, revocation=opened, mode="exclude-future")  # type: ignore[arg-type]
    return RegisteredSite(identity, identity.document_id(), registered)


def _forbidding_purpose(name: str) -> dict[str, JsonValue]:
    return with_prohibited_purpose(plain_policy(name))


def _with_use_constraint(name: str, constraint: dict[str, JsonValue]) -> dict[str, JsonValue]:
    return with_use_constraint(plain_policy(name), constraint)


def _decide(*sites: RegisteredSite, dp: bool = False, **kwargs: object):  # type: ignore[no-untyped-def]
    return admit(example_job(dp=dp), sites, consortium=CONSORTIUM, now=EXAMPLE_NOW, **kwargs)  # type: ignore[arg-type]


def _codes(decision: object) -> set[str]:
    return {r.code for r in decision.denials}  # type: ignore[attr-defined]


def test_sites_whose_policy_allows_the_job_are_admitted() -> None:
    decisions = _decide(*(_site(f"factory-{c}", plain_policy(f"factory-{c}")) for c in "abc"))
    assert all(d.admitted for d in decisions)
    entries = admission_entries("bc-pick-place-1", decisions, EXAMPLE_NOW)
    assert all(isinstance(e, SiteAdmitted) for e in entries)


def test_a_policy_forbidding_the_purpose_is_refused_with_its_reason() -> None:
    forbidding = _site("factory-x", _forbidding_purpose("factory-x"))
    sites = [*(_site(f"factory-{c}", plain_policy(f"factory-{c}")) for c in "abc"), forbidding]
    decisions = _decide(*sites)
    assert [d.admitted for d in decisions] == [True, True, True, False]
    refused = admission_entries("bc-pick-place-1", decisions, EXAMPLE_NOW)[-1]
    assert isinstance(refused, SiteRefused) and refused.site == "urn:dure:site:factory-x"
    assert refused.policy_id == decisions[-1].policy_id
    assert any(
        "[prohibition]" in r and "fires" in r and EXAMPLE_PURPOSE in r for r in refused.reasons
    )


def test_an_expired_policy_is_refused() -> None:
    expired = _with_use_constraint(
        "factory-x",
        term("dateTime", "lt", {"@value": "2026-11-02T00:00:00Z", "@type": "xsd:dateTime"}),
    )
    (decision,) = _decide(_site("factory-x", expired))
    assert "constraint.dateTime" in _codes(decision)


def test_a_revoked_policy_is_refused() -> None:
    (decision,) = _decide(_site("factory-x", plain_policy("factory-x"), revoked=True))
    assert "revocation" in _codes(decision)


def test_a_round_budget_below_the_jobs_rounds_is_refused_and_rounds_are_checked() -> None:
    few = _with_use_constraint("factory-x", term("count", "lteq", 2))
    (decision,) = _decide(_site("factory-x", few))  # the example job has 20 rounds
    assert "constraint.count" in _codes(decision)
    (late,) = _decide(_site("factory-y", plain_policy("factory-y")), round=21)
    assert "job.round" in _codes(late)


def test_an_epsilon_budget_already_spent_elsewhere_is_refused() -> None:
    site = _site("factory-x", example_policy_value("factory-x"))  # budget 10, job ε 4
    (fresh,) = _decide(site, dp=True, spent={site.urn: Decimal("6.0")})
    assert "constraint.dure:dpEpsilon" not in _codes(fresh)  # 6 + 4 is within 10
    (spent,) = _decide(site, dp=True, spent={site.urn: Decimal("6.5")})
    assert "constraint.dure:dpEpsilon" in _codes(spent)


def test_a_site_needing_more_contributors_than_can_be_admitted_is_refused() -> None:
    sites = [_site(f"factory-{c}", plain_policy(f"factory-{c}")) for c in "ab"]  # each needs 3
    decisions = _decide(*sites, _site("factory-x", _forbidding_purpose("factory-x")))
    assert not any(d.admitted for d in decisions)
    assert all("contributors.feasible" in _codes(d) for d in decisions[:2])


def test_a_site_without_a_policy_is_refused_with_a_null_policy_id() -> None:
    (decision,) = _decide(_site("factory-x", None))
    (entry,) = admission_entries("bc-pick-place-1", [decision], EXAMPLE_NOW)
    assert isinstance(entry, SiteRefused) and entry.policy_id is None
    assert entry.reasons == ("[policy] the site has registered no usage policy",)


def test_reason_lines_are_bounded() -> None:
    from dure.policies.decision import Reason

    lines = reason_lines([Reason("x", False, "m" * 3000)] * 100)
    assert len(lines) == MAX_REASONS and all(len(line) <= 2000 for line in lines)
    assert lines[-1] == f"and {100 - MAX_REASONS + 1} more reasons"


def _largest_by_brute_force(requirements: dict[str, int]) -> int:
    sites = sorted(requirements)
    sizes = [
        size
        for size in range(len(sites) + 1)
        for group in combinations(sites, size)
        if all(requirements[s] <= size for s in group)
    ]
    return max(sizes)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from("abcdefgh"), st.integers(1, 9), max_size=8))
def test_largest_feasible_is_the_largest_set_meeting_every_minimum(req: dict[str, int]) -> None:
    kept = largest_feasible(req)
    assert all(req[s] <= len(kept) for s in kept)
    assert len(kept) == _largest_by_brute_force(req)
