"""Properties: parsers never fail unexpectedly; evaluation is deterministic and fails closed."""

from __future__ import annotations

import contextlib
import copy
import json
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.policy.cases import job_value, policy_value, term

from dure.policies.document import CanonicalDocument
from dure.policies.errors import DocumentError, EncodingError
from dure.policies.evaluation import evaluate
from dure.policies.examples import EXAMPLE_NOW, example_context
from dure.policies.job import JobManifest
from dure.policies.policy import UsagePolicy
from dure.policies.revocation import Revocation

Json = Any
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MODELS: list[type[CanonicalDocument]] = [UsagePolicy, JobManifest, Revocation]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.text(max_size=12)
    | st.sampled_from(["use", "purpose", "isAnyOf", "2026-11-01T00:00:00Z", "8.0", "fedavg"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=16,
)


def parse_or_refuse(model: type[CanonicalDocument], data: bytes) -> CanonicalDocument | None:
    try:
        return model.from_json_bytes(data)
    except (DocumentError, EncodingError):
        return None


@SETTINGS
@given(st.sampled_from(MODELS), st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_are_refused(model: type[CanonicalDocument], data: bytes) -> None:
    parse_or_refuse(model, data)
    with contextlib.suppress(DocumentError, EncodingError):
        model.from_canonical_bytes(data)


@SETTINGS
@given(st.sampled_from(MODELS), json_values)
def test_arbitrary_json_parses_or_is_refused(model: type[CanonicalDocument], value: Json) -> None:
    assert parse_or_refuse(model, json.dumps(value).encode()) is None  # never a valid document


def paths(value: Json, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


WORDS = [
    "use", "derive", "distribute", "attribute", "purpose", "recipient", "count", "dateTime",
    "isAnyOf", "isNoneOf", "eq", "lteq", "gteq", "8.0", "0.5", "fedavg", "krum",
    "urn:dure:site:factory-b", "urn:dure:purpose:x:v2", "2026-12-01T00:00:00Z", "xsd:dateTime",
]  # fmt: skip


def similar(value: Json) -> st.SearchStrategy[Json]:
    """Values of the same JSON type, often valid ones, so that many mutants still parse."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.integers(-5, 100)
    if isinstance(value, str):
        return st.sampled_from(WORDS) | st.text(max_size=6)
    if isinstance(value, list):
        return st.lists(st.sampled_from(value), max_size=len(value) + 1) if value else st.just([])
    return json_values


@st.composite
def mutated_documents(draw: st.DrawFn) -> tuple[type[CanonicalDocument], Json]:
    choices: list[tuple[type[CanonicalDocument], Json]] = [
        (UsagePolicy, policy_value()),
        (JobManifest, job_value()),
    ]
    model, value = draw(st.sampled_from(choices))
    value = copy.deepcopy(value)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths(value)[1:]))
        parent = value
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["similar", "similar", "replace", "delete", "insert"]))
        if action == "similar":
            parent[path[-1]] = draw(similar(parent[path[-1]]))
        elif action == "replace":
            parent[path[-1]] = draw(json_values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(json_values)
        else:
            parent.insert(path[-1], draw(json_values))
    return model, value


@SETTINGS
@given(mutated_documents())
def test_mutated_examples_parse_round_trip_and_evaluate(
    mutation: tuple[type[CanonicalDocument], Json],
) -> None:
    model, value = mutation
    document = parse_or_refuse(model, json.dumps(value).encode())
    if document is None:
        return
    data = document.to_canonical_bytes()
    assert model.from_canonical_bytes(data) == document
    policy = (
        document if isinstance(document, UsagePolicy) else UsagePolicy.from_value(policy_value())
    )
    job = document if isinstance(document, JobManifest) else JobManifest.from_value(job_value())
    first = evaluate(policy, job, example_context())
    assert first == evaluate(policy, job, example_context())


# --- monotonicity: less permission, more constraint or more prohibition never allows more ---


def mostly(good: Any, *bad: Any) -> st.SearchStrategy[Any]:
    """The good value nine times in ten, else one of the bad ones, so many cases are allowed."""
    return st.integers(0, 9).flatmap(
        lambda roll: st.just(good) if roll < 9 or not bad else st.sampled_from(bad)
    )


V1 = "urn:dure:purpose:bc-manipulation:v1"
SITES = ["urn:dure:site:factory-a", "urn:dure:site:factory-b"]
jobs = st.fixed_dictionaries(
    {
        "purpose": mostly(V1, "urn:dure:purpose:bc-manipulation:v2",
                          "urn:dure:purpose:bc-assembly:v3", "urn:dure:purpose:military:v1"),
        "rounds": mostly(20, 1, 50, 51),
        "min_contributors": mostly(3, 1, 5),
        "recipients": mostly(SITES, [], [*SITES, "urn:dure:site:outsider"],
                             ["urn:dure:consortium:robotics-coop"]),
        "coordinator": mostly("urn:dure:coordinator:robotics-coop", "urn:dure:coordinator:other"),
        "duties_accepted": mostly(["attribute", "dure:logToLedger"], ["attribute"]),
        "strategy": mostly("fedavg", "krum", "fedmedian"),
        "secure": mostly(False, True),
        "dp": mostly(("4.0", "1.0", "server-fixed"), None, ("9.0", "1.0", "client-fixed"),
                     ("2.0", "6.0", "server-fixed"), ("2.0", "1.0", "server-adaptive")),
    }
)  # fmt: skip
contexts = st.fixed_dictionaries(
    {
        "now": mostly(EXAMPLE_NOW, EXAMPLE_NOW + timedelta(days=400)),
        "round": mostly(0, 1, 20, 60),
        "contributors": mostly(None, 2, 3, 5),
        "epsilon_spent": mostly("0", "6", "7.5"),
        "revoked": mostly(False, True),
    }
)
policies = st.fixed_dictionaries(
    {
        "secure_aggregation": mostly(False, True),
        "dp_epsilon": mostly("10.0", None, "5.0"),
        "on_revocation": st.sampled_from(["exclude-future", "retrain-without"]),
    }
)
FAR = {"@value": "2030-01-01T00:00:00Z", "@type": "xsd:dateTime"}
extra_terms = st.sampled_from(
    [
        # often satisfied by the generated jobs, so the stricter policy still allows sometimes
        term("count", "lteq", 100),
        term("dure:minContributors", "gteq", 2),
        term("dure:aggregation", "isAnyOf", ["fedavg", "krum"]),
        term("purpose", "isNoneOf", ["urn:dure:purpose:military"]),
        term("recipient", "isAnyOf", SITES),
        term("dure:dpEpsilon", "lteq", "20.0"),
        term("dateTime", "lt", FAR),
        term("dure:secureAggregation", "eq", False),
        # rarely or never satisfied
        term("count", "lteq", 10),
        term("dure:secureAggregation", "eq", True),
        term("purpose", "isAnyOf", ["urn:dure:purpose:military"]),
        term("dure:futureTerm", "eq", 1),
        term("count", "neq", 3),
    ]
)
prohibited_terms = st.sampled_from(
    [
        term("purpose", "isAnyOf", ["urn:dure:purpose:military"]),
        term("dure:aggregation", "isAnyOf", ["fedmedian"]),
        term("recipient", "isAnyOf", ["urn:dure:site:outsider"]),
        term("dateTime", "gteq", FAR),
        term("dure:coordinator", "eq", "urn:dure:coordinator:other"),
        term("purpose", "isNoneOf", ["urn:dure:purpose:bc-manipulation"]),
        term("count", "lteq", 100),  # not allowed in a prohibition: always fires
        term("dure:futureTerm", "eq", 1),
    ]
)


def build_job(choice: dict[str, Any]) -> Json:
    job = job_value()
    for key in ("purpose", "rounds", "min_contributors", "recipients", "coordinator",
                "duties_accepted"):  # fmt: skip
        job[key] = choice[key]
    job["aggregation"]["strategy"] = choice["strategy"]
    job["aggregation"]["secure"] = choice["secure"]
    if choice["dp"] is None:
        job["dp"] = None
    else:
        epsilon, clip, mode = choice["dp"]
        job["dp"].update(epsilon=epsilon, clip=clip, mode=mode)
    return job


def allowed(policy: Json, job: Json, context: dict[str, Any]) -> bool:
    decision = evaluate(
        UsagePolicy.from_value(policy), JobManifest.from_value(job), example_context(**context)
    )
    assert decision.allowed is not bool(decision.denials)
    return decision.allowed


@SETTINGS
@given(policies, jobs, contexts, st.booleans(), st.data())
def test_removing_permissions_never_allows_more(
    options: dict[str, Any],
    choice: dict[str, Any],
    context: dict[str, Any],
    no_release: bool,
    data: st.DataObject,
) -> None:
    policy, job = policy_value(**options), build_job(choice)
    if no_release:
        job["recipients"] = []
    spare = copy.deepcopy(policy["permission"][0])  # a second "use" grant, for another purpose
    spare["constraint"][0] = term("purpose", "eq", "urn:dure:purpose:military:v1")
    policy["permission"].append(spare)
    kept = data.draw(st.sets(st.sampled_from(range(4)), min_size=2, max_size=3))
    narrower = copy.deepcopy(policy)
    narrower["permission"] = [policy["permission"][i] for i in sorted(kept)]
    if allowed(narrower, job, context):
        assert allowed(policy, job, context)


@SETTINGS
@given(policies, jobs, contexts, st.sampled_from(range(3)), extra_terms)
def test_adding_a_constraint_never_allows_more(
    options: dict[str, Any],
    choice: dict[str, Any],
    context: dict[str, Any],
    index: int,
    added: Json,
) -> None:
    policy, job = policy_value(**options), build_job(choice)
    stricter = copy.deepcopy(policy)
    stricter["permission"][index]["constraint"].append(added)
    if allowed(stricter, job, context):
        assert allowed(policy, job, context)


@SETTINGS
@given(policies, jobs, contexts, st.sampled_from(["use", "derive", "distribute", "x"]),
       st.lists(prohibited_terms, min_size=1, max_size=2))  # fmt: skip
def test_adding_a_prohibition_never_allows_more(
    options: dict[str, Any],
    choice: dict[str, Any],
    context: dict[str, Any],
    action: str,
    terms: list[Json],
) -> None:
    policy, job = policy_value(**options), build_job(choice)
    stricter = copy.deepcopy(policy)
    stricter["prohibition"].append({"action": action, "constraint": terms})
    if allowed(stricter, job, context):
        assert allowed(policy, job, context)


@SETTINGS
@given(policies, jobs, contexts)
def test_evaluation_is_deterministic_and_revocation_always_denies(
    options: dict[str, Any], choice: dict[str, Any], context: dict[str, Any]
) -> None:
    policy = UsagePolicy.from_value(policy_value(**options))
    job = JobManifest.from_value(build_job(choice))
    ctx = example_context(**context)
    decision = evaluate(policy, job, ctx)
    again = evaluate(
        UsagePolicy.from_canonical_bytes(policy.to_canonical_bytes()),
        JobManifest.from_canonical_bytes(job.to_canonical_bytes()),
        example_context(**context),
    )
    assert decision == again
    if ctx.revoked:
        assert not decision.allowed
