"""Builders for the policy tests: example documents as mutable JSON, and small mutators."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dure.policies.decision import Decision
from dure.policies.evaluation import evaluate
from dure.policies.examples import example_context, example_job_value, example_policy_value
from dure.policies.job import JobManifest
from dure.policies.policy import UsagePolicy

__all__ = [
    "Case",
    "add_constraint",
    "add_prohibition",
    "constraint",
    "decide",
    "drop_permission",
    "job_value",
    "permission",
    "policy_value",
    "put",
    "seq",
    "set_constraint",
    "term",
]

Json = Any
Mutation = Callable[[Json], None]


def policy_value(**options: Any) -> Json:
    return copy.deepcopy(example_policy_value(**options))


def job_value(**options: Any) -> Json:
    return copy.deepcopy(example_job_value(**options))


def term(operand: str, operator: str, value: Json) -> Json:
    return {"leftOperand": operand, "operator": operator, "rightOperand": value}


def permission(policy: Json, action: str) -> Json:
    return next(p for p in policy["permission"] if p["action"] == action)


def constraint(policy: Json, operand: str, action: str = "use") -> Json:
    rule = permission(policy, action)
    return next(c for c in rule["constraint"] if c["leftOperand"] == operand)


def put(*path: str | int, value: Json) -> Mutation:
    """Set the value at ``path`` (keys and list indexes)."""

    def mutate(document: Json) -> None:
        target = document
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = copy.deepcopy(value)

    return mutate


def seq(*mutations: Mutation) -> Mutation:
    def mutate(document: Json) -> None:
        for mutation in mutations:
            mutation(document)

    return mutate


def set_constraint(
    operand: str, value: Json, operator: str | None = None, action: str = "use"
) -> Mutation:
    """Change the right operand (and optionally the operator) of an example constraint."""

    def mutate(policy: Json) -> None:
        found = constraint(policy, operand, action)
        found["rightOperand"] = copy.deepcopy(value)
        if operator is not None:
            found["operator"] = operator

    return mutate


def add_constraint(action: str, added: Json) -> Mutation:
    def mutate(policy: Json) -> None:
        permission(policy, action)["constraint"].append(copy.deepcopy(added))

    return mutate


def drop_permission(action: str) -> Mutation:
    def mutate(policy: Json) -> None:
        policy["permission"] = [p for p in policy["permission"] if p["action"] != action]

    return mutate


def add_prohibition(action: str, *terms: Json) -> Mutation:
    def mutate(policy: Json) -> None:
        policy["prohibition"].append({"action": action, "constraint": list(terms)})

    return mutate


def _nothing(_: Json) -> None:
    return None


@dataclass(frozen=True)
class Case:
    """One table row: mutate the example policy and job, evaluate, expect a verdict."""

    id: str
    allowed: bool
    code: str | None = None  # a reason code expected among the denials
    policy: Mutation = _nothing
    job: Mutation = _nothing
    context: dict[str, Any] = field(default_factory=dict)

    def run(self) -> Decision:
        policy, job = policy_value(), job_value()
        self.policy(policy)
        self.job(job)
        return decide(policy, job, **self.context)


def decide(policy: Json, job: Json, **context: Any) -> Decision:
    return evaluate(
        UsagePolicy.from_value(policy), JobManifest.from_value(job), example_context(**context)
    )
