"""Closed world: every term outside the profile denies, wherever it appears."""

from __future__ import annotations

import pytest
from tests.unit.policy.cases import (
    Case,
    add_constraint,
    add_prohibition,
    policy_value,
    put,
    seq,
    set_constraint,
    term,
)

from dure.policies.evaluation import vocabulary_problems
from dure.policies.policy import UsagePolicy

CLOSED_WORLD = [
    Case("unknown operand", False, "vocabulary.operand",
         policy=add_constraint("use", term("spatial", "isAnyOf", ["urn:x"]))),
    Case("odrl-prefixed operand is not the compact term", False, "vocabulary.operand",
         policy=add_constraint("use", term("odrl:purpose", "isAnyOf", ["urn:dure:purpose:x"]))),
    Case("unknown operand makes its permission fail", False, "constraint.unknown",
         policy=add_constraint("use", term("dure:futureTerm", "eq", True))),
    Case("unknown operator", False, "vocabulary.operator",
         policy=set_constraint("purpose", "urn:dure:purpose:x:v1", "neq")),
    Case("operator not allowed with operand", False, "vocabulary.operator",
         policy=set_constraint("purpose", "urn:dure:purpose:x:v1", "lteq")),
    Case("count isAnyOf", False, "vocabulary.operator",
         policy=set_constraint("count", ["50"], "isAnyOf")),
    Case("count as a string", False, "vocabulary.value", policy=set_constraint("count", "50")),
    Case("count as a boolean", False, "vocabulary.value", policy=set_constraint("count", True)),
    Case("negative count", False, "vocabulary.value", policy=set_constraint("count", -1)),
    Case("min contributors zero", False, "vocabulary.value",
         policy=set_constraint("dure:minContributors", 0)),
    Case("dateTime as a plain string", False, "vocabulary.value",
         policy=set_constraint("dateTime", "2027-11-01T00:00:00Z")),
    Case("dateTime typed as a date", False, "vocabulary.value",
         policy=set_constraint("dateTime", {"@value": "2027-11-01T00:00:00Z",
                                            "@type": "xsd:date"})),
    Case("dateTime not UTC", False, "vocabulary.value",
         policy=set_constraint("dateTime", {"@value": "2027-11-01T00:00:00+09:00",
                                            "@type": "xsd:dateTime"})),
    Case("epsilon as an integer", False, "vocabulary.value",
         policy=set_constraint("dure:dpEpsilon", 10)),
    Case("epsilon with exponent", False, "vocabulary.value",
         policy=set_constraint("dure:dpEpsilon", "1e1")),
    Case("delta of one", False, "vocabulary.value", policy=set_constraint("dure:dpDelta", "1")),
    Case("secure aggregation as a string", False, "vocabulary.value",
         policy=set_constraint("dure:secureAggregation", "true")),
    Case("empty any-of denies", False, "vocabulary.value",
         policy=set_constraint("dure:aggregation", [])),
    Case("unknown strategy name", False, "vocabulary.value",
         policy=set_constraint("dure:aggregation", ["fedavg", "fedfuture"])),
    Case("malformed purpose id", False, "vocabulary.value",
         policy=set_constraint("purpose", ["dure:purpose:bc-manipulation"])),
    Case("malformed forbidden purpose", False, "vocabulary.value",
         policy=put("prohibition", 0, "constraint", 0, "rightOperand",
                    value=["dure:purpose:military"])),
    Case("recipient not a party", False, "vocabulary.value",
         policy=set_constraint("recipient", ["factory-a"], action="distribute")),
    Case("unknown permission action still denies", False, "vocabulary.action",
         policy=lambda p: p["permission"].append(
             {"action": "print", "assignee": "urn:dure:consortium:robotics-coop"})),
    Case("unknown prohibition action fires", False, "prohibition",
         policy=add_prohibition("dure:export")),
    Case("unknown duty", False, "vocabulary.duty",
         policy=lambda p: p["permission"][0]["duty"].append({"action": "compensate"})),
    Case("unknown duty cannot be accepted", False, "duty",
         policy=lambda p: p["permission"][0]["duty"].append({"action": "compensate"}),
         job=lambda j: j["duties_accepted"].append("compensate")),
    Case("job accepts an unknown duty", False, "vocabulary.duty",
         job=lambda j: j["duties_accepted"].append("dure:somethingNew")),
    Case("count in a prohibition", False, "vocabulary.operand",
         policy=add_prohibition("use", term("count", "lteq", 100))),
    Case("count in a prohibition fires", False, "prohibition",
         policy=add_prohibition("use", term("count", "gteq", 100))),
    Case("unknown selector operand", False, "vocabulary.operand",
         policy=lambda p: p["target"]["refinement"].append(term("dure:shift", "isAnyOf", ["n"]))),
    Case("unknown selector operand empties the selector", False, "selector",
         policy=lambda p: p["target"]["refinement"].append(term("dure:shift", "isAnyOf", ["n"]))),
    Case("rule operand used as a selector", False, "vocabulary.operand",
         job=lambda j: j["episode_selector"].append(term("purpose", "eq", "x"))),
    Case("selector operator not allowed", False, "vocabulary.operator",
         job=put("episode_selector", 0, "operator", value="isAllOf")),
    Case("unknown episode source", False, "vocabulary.value",
         job=lambda j: j["episode_selector"].append(term("dure:source", "isAnyOf", ["dreamt"]))),
    Case("everything unknown at once", False, "vocabulary.action",
         policy=seq(add_prohibition("dure:x", term("dure:y", "dure:z", 1)),
                    add_constraint("derive", term("dure:w", "eq", 1)))),
]  # fmt: skip


@pytest.mark.parametrize("case", CLOSED_WORLD, ids=lambda case: case.id)
def test_unknown_terms_deny(case: Case) -> None:
    decision = case.run()
    assert not decision.allowed
    assert case.code in {reason.code for reason in decision.denials}, decision.summary()
    vocabulary = [r for r in decision.reasons if r.code.startswith("vocabulary")]
    assert vocabulary, "the vocabulary check is always listed"


def test_vocabulary_problems_name_the_location() -> None:
    policy = policy_value()
    add_constraint("derive", term("dure:w", "eq", 1))(policy)
    add_prohibition("dure:x")(policy)
    problems = vocabulary_problems(UsagePolicy.from_value(policy))
    messages = sorted(p.message for p in problems)
    assert messages == [
        "permission[1].constraint[1]: unknown leftOperand 'dure:w'",
        "prohibition[1]: unknown action 'dure:x'",
    ]
    assert all(not p.ok for p in problems)
