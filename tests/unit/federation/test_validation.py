"""Validating replies: update shape, finiteness, norm; the signed claim; the contributors."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from tests.builders.federation import plain_policy, supernode_key, with_min_contributors

from dure.policies.contribution import ContributionClaim, state_digest
from dure.policies.examples import example_job
from dure.policies.identity import SiteIdentity
from dure.policies.keys import SigningKey
from dure.policies.policy import UsagePolicy
from dure.policies.signed import open_document, sign_document
from dure.server.federation.registry import RegisteredPolicy, RegisteredSite
from dure.server.federation.validation import (
    ClaimContext,
    check_claim,
    check_update,
    settle_contributors,
    update_norm,
)

REF = {"w": np.zeros((2, 3), np.float32), "b": np.zeros(3, np.float32)}


def test_a_valid_update_passes() -> None:
    update = {"w": np.full((2, 3), 0.5, np.float32), "b": np.ones(3, np.float32)}
    assert check_update(update, REF, Decimal("10")) == []
    assert update_norm(update, REF) == pytest.approx(np.sqrt(6 * 0.25 + 3))


@pytest.mark.parametrize(
    "update,expected",
    [
        ({"w": REF["w"]}, "missing ['b']"),
        ({**REF, "extra": REF["b"]}, "unexpected ['extra']"),
        ({**REF, "w": np.zeros((3, 2), np.float32)}, "tensor 'w'"),
        ({**REF, "b": np.zeros(3, np.float64)}, "tensor 'b': float64"),
        ({**REF, "b": np.array([0, np.nan, 0], np.float32)}, "non-finite"),
        ({**REF, "b": np.array([0, np.inf, 0], np.float32)}, "non-finite"),
        ({**REF, "b": np.array([0, 11, 0], np.float32)}, "exceeds the job's norm bound 10"),
    ],
)
def test_bad_updates_are_rejected_with_a_reason(
    update: dict[str, np.ndarray], expected: str
) -> None:
    reasons = check_update(update, REF, Decimal("10"))
    assert len(reasons) == 1 and expected in reasons[0]


def _site(name: str = "factory-a") -> tuple[RegisteredSite, SigningKey]:
    key = SigningKey.generate()
    identity = SiteIdentity.create(name, key, supernode_key()[0])
    envelope = sign_document("policy", UsagePolicy.from_value(plain_policy(name)), key)
    opened = open_document(envelope, "policy", UsagePolicy, {key.key_id: key.public})
    return RegisteredSite(identity, identity.document_id(), RegisteredPolicy(opened)), key


def _signed_claim(
    site: RegisteredSite,
    key: SigningKey,
    update: dict[str, np.ndarray],
    changes: dict[str, object] | None = None,
) -> bytes:
    assert site.policy is not None
    value: dict[str, object] = {
        "job_id": example_job().job_id,
        "job_digest": "11" * 32,
        "round": 1,
        "site": site.urn,
        "update_digest": state_digest(update),
        "examples": 40,
        "episodes_root": "33" * 32,
        "policy_id": site.policy.policy_id,
        "issued": "2026-11-15T09:00:00Z",
    }
    value.update(changes or {})
    return sign_document("contribution", ContributionClaim.model_validate(value), key).to_json()


def test_a_claim_matching_the_update_is_accepted() -> None:
    site, key = _site()
    update = {"w": REF["w"] + 1, "b": REF["b"]}
    context = ClaimContext(example_job(), "11" * 32, 1, site)
    opened, problems = check_claim(_signed_claim(site, key, update), context, update, 40)
    assert problems == [] and opened is not None


@pytest.mark.parametrize(
    "changes,examples,expected",
    [
        ({"round": 2}, 40, "claim round is 2 but should be 1"),
        ({"job_digest": "22" * 32}, 40, "claim job_digest"),
        ({"policy_id": "44" * 32}, 40, "claim policy_id"),
        ({"site": "urn:dure:site:factory-b"}, 40, "claim site"),
        ({}, 41, "claim examples is 40 but should be 41"),
        ({"examples": 0}, 0, "reports 0 training examples"),
    ],
)
def test_claims_that_disagree_with_the_reply_are_rejected(
    changes: dict[str, object], examples: int, expected: str
) -> None:
    site, key = _site()
    context = ClaimContext(example_job(), "11" * 32, 1, site)
    _, problems = check_claim(_signed_claim(site, key, REF, changes), context, REF, examples)
    assert any(expected in p for p in problems), problems


def test_an_update_tampered_after_signing_is_rejected() -> None:
    site, key = _site()
    claim = _signed_claim(site, key, REF)
    tampered = {**REF, "b": REF["b"] + np.float32(1e-3)}
    _, problems = check_claim(claim, ClaimContext(example_job(), "11" * 32, 1, site), tampered, 40)
    assert problems and problems[0].startswith("claim update_digest")


def test_a_claim_signed_by_another_key_or_malformed_is_rejected() -> None:
    site, _ = _site()
    context = ClaimContext(example_job(), "11" * 32, 1, site)
    opened, problems = check_claim(
        _signed_claim(site, SigningKey.generate(), REF), context, REF, 40
    )
    assert opened is None and "does not verify with factory-a's key" in problems[0]
    opened, problems = check_claim(b"{not json", context, REF, 40)
    assert opened is None and problems


def _policy(minimum: int) -> UsagePolicy:
    return UsagePolicy.from_value(with_min_contributors(plain_policy("factory-a"), minimum))


def test_contributors_at_or_above_the_minimum_are_aggregated() -> None:
    job = example_job()  # min_contributors 3
    settled = settle_contributors(job, 1, {f"s{i}": _policy(3) for i in range(3)})
    assert settled.aborted is None and len(settled.kept) == 3 and settled.required == 3


def test_below_the_minimum_the_round_is_aborted_with_the_reason() -> None:
    settled = settle_contributors(example_job(), 4, {"s1": _policy(3), "s2": _policy(2)})
    assert settled.kept == frozenset() and settled.aborted is not None
    assert settled.aborted.startswith("round 4 aborted: 2 valid contributions, 0 of them")
    assert "s1" in settled.dropped


def test_a_site_asking_for_more_than_answered_is_dropped_and_the_rest_aggregated() -> None:
    policies = {"s1": _policy(3), "s2": _policy(3), "s3": _policy(3), "big": _policy(5)}
    settled = settle_contributors(example_job(), 1, policies)
    assert settled.kept == {"s1", "s2", "s3"} and settled.aborted is None
    assert "requires at least 5 contributors" in settled.dropped["big"]
