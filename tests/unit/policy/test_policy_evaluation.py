"""Every constraint of the profile, allowed and denied, as one table over the examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from tests.unit.policy.cases import (
    Case,
    add_constraint,
    add_prohibition,
    decide,
    drop_permission,
    job_value,
    policy_value,
    put,
    seq,
    set_constraint,
    term,
)

from dure.policies.evaluation import (
    dp_budget,
    evaluate,
    min_contributors_required,
    vocabulary_problems,
)
from dure.policies.examples import (
    example_context,
    example_job,
    example_policy,
)
from dure.policies.policy import UsagePolicy

V1 = "urn:dure:purpose:bc-manipulation:v1"
OUTSIDER = "urn:dure:site:outsider"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def dt(text: str) -> dict[str, str]:
    return {"@value": text, "@type": "xsd:dateTime"}


CASES = [
    Case("baseline", True),
    # 1. purposes allowed and forbidden
    Case("purpose other version", False, "constraint.purpose",
         job=put("purpose", value="urn:dure:purpose:bc-manipulation:v2")),
    Case("purpose unversioned pattern", True,
         job=put("purpose", value="urn:dure:purpose:bc-assembly:v7")),
    Case("purpose unversioned is no prefix match", False, "constraint.purpose",
         job=put("purpose", value="urn:dure:purpose:bc-assembly-x:v1")),
    Case("purpose eq", True, policy=set_constraint("purpose", V1, "eq")),
    Case("purpose eq other", False, "constraint.purpose",
         policy=set_constraint("purpose", "urn:dure:purpose:other:v1", "eq")),
    Case("purpose isNoneOf hit", False, "constraint.purpose",
         policy=set_constraint("purpose", [V1], "isNoneOf")),
    Case("purpose isNoneOf miss", True,
         policy=set_constraint("purpose", ["urn:dure:purpose:other"], "isNoneOf")),
    Case("prohibition wins over permission", False, "prohibition",
         policy=seq(set_constraint("purpose", ["urn:dure:purpose:military:v1"]),
                    set_constraint("purpose", ["urn:dure:purpose:military:v1"], action="derive")),
         job=put("purpose", value="urn:dure:purpose:military:v1")),
    Case("derive purpose checked separately", False, "permission.derive",
         policy=set_constraint("purpose", ["urn:dure:purpose:other:v1"], action="derive")),
    # 2. recipients, consortium, coordinator
    Case("recipient outside the list", False, "constraint.recipient",
         job=put("recipients", value=["urn:dure:site:factory-a", OUTSIDER])),
    Case("recipient consortium urn", True,
         job=put("recipients", value=["urn:dure:consortium:robotics-coop"])),
    Case("no recipients needs no distribute", True,
         policy=drop_permission("distribute"), job=put("recipients", value=[])),
    Case("recipients need distribute", False, "permission.distribute",
         policy=drop_permission("distribute")),
    Case("recipient isNoneOf hit", False, "constraint.recipient",
         policy=add_constraint("distribute", term("recipient", "isNoneOf",
                                                  ["urn:dure:site:factory-c"]))),
    Case("recipient constraint on use", False, "constraint.recipient",
         policy=add_constraint("use", term("recipient", "isAnyOf", ["urn:dure:site:factory-a"]))),
    Case("recipient prohibited", False, "prohibition",
         policy=add_prohibition("distribute",
                                term("recipient", "isAnyOf", ["urn:dure:site:factory-b"]))),
    Case("distribute prohibition without recipients", True,
         policy=add_prohibition("distribute"), job=put("recipients", value=[])),
    Case("coordinator other", False, "constraint.dure:coordinator",
         job=put("coordinator", value="urn:dure:coordinator:elsewhere")),
    Case("coordinator isAnyOf", True,
         policy=set_constraint("dure:coordinator",
                               ["urn:dure:coordinator:x", "urn:dure:coordinator:robotics-coop"],
                               "isAnyOf")),
    Case("evaluator in another consortium", False, "job.consortium",
         context={"consortium": "other"}),
    Case("assignee other consortium", False, "assignee",
         policy=put("permission", 0, "assignee", value="urn:dure:consortium:other")),
    # 4. minimum contributors
    Case("job minimum below policy", False, "constraint.dure:minContributors",
         job=put("min_contributors", value=2)),
    Case("counted contributors below policy", False, "constraint.dure:minContributors",
         policy=set_constraint("dure:minContributors", 5),
         job=put("min_contributors", value=5), context={"round": 1, "contributors": 4}),
    Case("counted contributors meet policy", True,
         policy=set_constraint("dure:minContributors", 5),
         job=put("min_contributors", value=5), context={"round": 1, "contributors": 5}),
    Case("counted contributors below job", False, "job.contributors",
         job=put("min_contributors", value=4), context={"round": 1, "contributors": 3}),
    # 5. aggregation
    Case("secure aggregation required, job plain", False, "constraint.dure:secureAggregation",
         policy=set_constraint("dure:secureAggregation", True)),
    Case("secure aggregation required, job secure", True,
         policy=set_constraint("dure:secureAggregation", True),
         job=put("aggregation", "secure", value=True)),
    Case("secure aggregation not required, job secure", True,
         job=put("aggregation", "secure", value=True)),
    Case("strategy not accepted", False, "constraint.dure:aggregation",
         job=put("aggregation", "strategy", value="fedmedian")),
    Case("robust strategy accepted", True, job=put("aggregation", "strategy", value="krum")),
    Case("strategy isNoneOf", False, "constraint.dure:aggregation",
         policy=set_constraint("dure:aggregation", ["fedavg"], "isNoneOf")),
    Case("strategy prohibited", False, "prohibition",
         policy=add_prohibition("use", term("dure:aggregation", "isAnyOf", ["fedavg"]))),
    # 6. differential privacy
    Case("budget needs dp", False, "constraint.dure:dpEpsilon", job=put("dp", value=None)),
    Case("budget exactly used", True, context={"epsilon_spent": "6.0"}),
    Case("budget overrun", False, "constraint.dure:dpEpsilon", context={"epsilon_spent": "6.5"}),
    Case("budget overrun during rounds", False, "constraint.dure:dpEpsilon",
         context={"epsilon_spent": "7", "round": 5}),
    Case("job epsilon above budget", False, "constraint.dure:dpEpsilon",
         job=put("dp", "epsilon", value="10.5")),
    Case("no budget, no dp", True, policy=lambda p: p.__setitem__("permission", [
        {**r, "constraint": [c for c in r["constraint"]
                             if not c["leftOperand"].startswith("dure:dp")]}
        for r in p["permission"]]), job=put("dp", value=None)),
    Case("delta above bound", False, "constraint.dure:dpDelta",
         job=put("dp", "delta", value="0.0001")),
    Case("delta at bound", True, job=put("dp", "delta", value="0.00001")),
    Case("delta without dp", False, "constraint.dure:dpDelta", job=put("dp", value=None)),
    Case("clip above bound", False, "constraint.dure:dpClip", job=put("dp", "clip", value="6")),
    Case("clip at bound", True, job=put("dp", "clip", value="5.00")),
    Case("adaptive clipping cannot be bounded", False, "constraint.dure:dpClip",
         job=put("dp", "mode", value="server-adaptive")),
    Case("client-side fixed clipping", True, job=put("dp", "mode", value="client-fixed")),
    # 7. expiry and rounds
    Case("policy expired", False, "constraint.dateTime",
         context={"now": at("2027-11-01T00:00:00Z")},
         job=seq(put("issued", value="2027-10-01T00:00:00Z"),
                 put("expires", value="2028-01-01T00:00:00Z"))),
    Case("policy lteq expiry instant", True,
         policy=set_constraint("dateTime", dt("2026-11-15T09:00:00Z"), "lteq")),
    Case("policy lt expiry instant", False, "constraint.dateTime",
         policy=set_constraint("dateTime", dt("2026-11-15T09:00:00Z"), "lt")),
    Case("policy not yet valid", False, "constraint.dateTime",
         policy=add_constraint("use", term("dateTime", "gteq", dt("2026-12-01T00:00:00Z")))),
    Case("policy valid from", True,
         policy=add_constraint("use", term("dateTime", "gt", dt("2026-11-15T08:59:59Z")))),
    Case("use prohibited after a date", False, "prohibition",
         policy=add_prohibition("use", term("dateTime", "gteq", dt("2026-11-15T00:00:00Z")))),
    Case("job expired", False, "job.validity", context={"now": at("2027-01-30T00:00:00Z")}),
    Case("job not yet issued", False, "job.validity",
         context={"now": at("2026-10-31T23:59:59Z")}),
    Case("rounds above maximum", False, "constraint.count", job=put("rounds", value=51)),
    Case("rounds at maximum", True, job=put("rounds", value=50), context={"round": 50}),
    Case("rounds lt", False, "constraint.count",
         policy=set_constraint("count", 20, "lt")),
    Case("round beyond the job", False, "job.round", context={"round": 21}),
    # 8. derivation and release
    Case("training needs derive", False, "permission.derive", policy=drop_permission("derive")),
    Case("derive prohibited", False, "prohibition", policy=add_prohibition("derive")),
    Case("use prohibited outright", False, "prohibition", policy=add_prohibition("use")),
    Case("no permission at all", False, "permission.use", policy=put("permission", value=[])),
    Case("second permission grants", True,
         policy=lambda p: p["permission"].insert(0, {
             "action": "use", "assignee": "urn:dure:consortium:robotics-coop",
             "constraint": [term("purpose", "eq", "urn:dure:purpose:other:v1")], "duty": []})),
    # 9. duties
    Case("duty not accepted", False, "duty", job=put("duties_accepted", value=["attribute"])),
    Case("no duties accepted", False, "duty", job=put("duties_accepted", value=[])),
    # 10. revocation
    Case("revoked", False, "revocation", context={"revoked": True}),
    # 3. episodes
    Case("job selects a task the policy excludes", False, "selector",
         job=put("episode_selector", 0, "rightOperand", value=["assembly"])),
    Case("tag contradiction", False, "selector",
         job=put("episode_selector", value=[term("dure:tag", "isAllOf",
                                                 ["customer-confidential"])])),
    Case("time range empty", False, "selector",
         job=put("episode_selector", value=[
             term("dure:recordedAt", "gteq", dt("2026-06-01T00:00:00Z")),
             term("dure:recordedAt", "lt", dt("2026-06-01T00:00:00Z"))])),
    Case("no job selector", True, job=put("episode_selector", value=[])),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_every_constraint(case: Case) -> None:
    decision = case.run()
    assert decision.allowed is case.allowed, decision.summary()
    if case.code is not None:
        assert case.code in {reason.code for reason in decision.denials}, decision.summary()
    if case.allowed:
        assert not decision.denials


def test_example_job_is_allowed_with_every_check_listed() -> None:
    decision = evaluate(example_policy(), example_job(), example_context())
    assert decision.allowed
    codes = [reason.code for reason in decision.reasons]
    expected = {
        "revocation", "vocabulary", "job.validity", "permission.use", "permission.derive",
        "permission.distribute", "prohibition", "selector", "constraint.purpose",
        "constraint.dure:dpEpsilon", "duty", "assignee",
    }  # fmt: skip
    assert expected <= set(codes)
    assert len(decision.reasons) > 20


def test_failed_permission_lists_every_candidate() -> None:
    policy = policy_value()
    policy["permission"].insert(
        0,
        {"action": "use", "assignee": "urn:dure:consortium:robotics-coop",
         "constraint": [term("count", "lteq", 1)], "duty": []},
    )  # fmt: skip
    job = job_value()
    job["purpose"] = "urn:dure:purpose:other:v1"
    decision = decide(policy, job)
    assert not decision.allowed
    messages = [reason.message for reason in decision.denials]
    assert any(m.startswith("permission[0] (use) constraint[0]: count") for m in messages)
    assert any(m.startswith("permission[1] (use) constraint[0]: purpose") for m in messages)
    assert any("none of permission[0], permission[1] grants 'use'" in m for m in messages)


def test_messages_name_term_and_values() -> None:
    decision = decide(policy_value(), job_value(), epsilon_spent="6.5")
    assert [r.code for r in decision.denials] == ["constraint.dure:dpEpsilon", "permission.use"]
    denial = decision.denials[0]
    assert "'10.0'" in denial.message and "6.5" in denial.message and "10.5" in denial.message


def test_decision_json_and_summary() -> None:
    decision = decide(policy_value(), job_value(), revoked=True)
    value: Any = decision.to_json_value()
    assert value["allowed"] is False
    assert value["reasons"][0] == {
        "code": "revocation",
        "ok": False,
        "message": "the policy has been revoked by its site",
    }
    assert decision.summary().splitlines()[0] == "denied"
    assert isinstance(value["selector"], list) and len(value["selector"]) == 4


def test_selector_is_policy_refinement_then_job_selector() -> None:
    decision = evaluate(example_policy(), example_job(), example_context())
    operands = [t.left_operand for t in decision.selector.terms]
    assert operands == ["dure:task", "dure:tag", "dure:task", "dure:success"]


def test_min_contributors_required_is_the_strictest() -> None:
    strict = policy_value()
    strict["permission"][1]["constraint"].append(term("dure:minContributors", "gteq", 7))
    policies = [example_policy(), UsagePolicy.from_value(strict)]
    assert min_contributors_required(policies) == 7
    assert min_contributors_required([example_policy()]) == 3
    assert min_contributors_required([]) == 1


def test_dp_budget() -> None:
    assert dp_budget(example_policy()) == Decimal("10.0")
    assert dp_budget(example_policy(dp_epsilon=None)) is None
    tighter = policy_value()
    tighter["permission"][1]["constraint"].append(term("dure:dpEpsilon", "lteq", "2.5"))
    assert dp_budget(UsagePolicy.from_value(tighter)) == Decimal("2.5")


def test_vocabulary_problems_empty_for_example() -> None:
    assert vocabulary_problems(example_policy()) == ()


def test_examples_agree_at_their_issue_time_plus_a_fortnight() -> None:
    issued = datetime(2031, 5, 2, 7, 30, tzinfo=UTC)
    policy = example_policy("plant-9", issued=issued, secure_aggregation=True)
    job = example_job(issued=issued, secure_aggregation=True, task="push")
    decision = evaluate(policy, job, example_context(now=issued + timedelta(days=14)))
    assert decision.allowed, decision.summary()
