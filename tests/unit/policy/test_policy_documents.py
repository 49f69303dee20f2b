"""Parsing, canonical bytes and ids of usage policies, job manifests and revocations."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.unit.policy.cases import job_value, policy_value

from dure.policies.canonical import canonical_bytes
from dure.policies.document import CanonicalDocument
from dure.policies.encoding import sha256, to_hex
from dure.policies.errors import DocumentError, EncodingError
from dure.policies.examples import example_job, example_policy
from dure.policies.job import DEFAULT_TRAINING, JobManifest
from dure.policies.policy import TypedLiteral, UsagePolicy
from dure.policies.revocation import Revocation, effective_mode

Json = Any


def revocation_value(policy: UsagePolicy, mode: str = "exclude-future") -> Json:
    return {
        "type": "dure/revocation/v1",
        "site": policy.site,
        "policy_id": policy.document_id(),
        "issued": "2026-12-01T00:00:00Z",
        "mode": mode,
        "reason": "line 3 reassigned to a customer project",
    }


DOCUMENTS: list[tuple[type[CanonicalDocument], Json]] = [
    (UsagePolicy, policy_value()),
    (JobManifest, {**job_value(), "training": DEFAULT_TRAINING.model_dump(mode="json")}),
    (Revocation, revocation_value(example_policy())),
]


@pytest.mark.parametrize(("model", "value"), DOCUMENTS, ids=lambda x: getattr(x, "__name__", ""))
def test_canonical_round_trip(model: type[CanonicalDocument], value: Json) -> None:
    document = model.from_value(value)
    data = document.to_canonical_bytes()
    again = model.from_canonical_bytes(data)
    assert again == document and hash(again) == hash(document)
    assert again.to_canonical_bytes() == data
    assert data == canonical_bytes(value)  # the examples are already in full form
    assert document.document_id() == to_hex(sha256(data))
    assert model.from_json_bytes(json.dumps(value, indent=2).encode()) == document


def test_policy_bytes_are_pinned() -> None:
    # A golden id: any change to serialisation changes every policy id, so it must be deliberate.
    data = example_policy().to_canonical_bytes()
    assert data.startswith(b'{"@context":["http://www.w3.org/ns/odrl.jsonld",{"dure":')
    assert b'"rightOperand":{"@type":"xsd:dateTime","@value":"2027-11-01T00:00:00Z"}' in data
    assert example_policy().document_id() == to_hex(sha256(data))


def test_omitted_defaults_parse_but_are_not_canonical() -> None:
    value = policy_value()
    del value["prohibition"]
    del value["permission"][2]["duty"]
    policy = UsagePolicy.from_json_bytes(json.dumps(value).encode())
    assert policy.prohibition == ()
    with pytest.raises(DocumentError, match="full form; differing top-level fields: "
                       "permission, prohibition"):  # fmt: skip
        UsagePolicy.from_canonical_bytes(canonical_bytes(value))
    full = policy.to_canonical_bytes()
    assert UsagePolicy.from_canonical_bytes(full) == policy


def test_non_canonical_bytes_refused() -> None:
    with pytest.raises(EncodingError):
        UsagePolicy.from_canonical_bytes(json.dumps(policy_value(), indent=1).encode())


def test_right_operand_shapes_survive() -> None:
    policy = example_policy()
    refinement = policy.target.refinement
    assert refinement[0].right_operand == ("pick-place", "push", "reach", "drawer-open")
    expiry = policy.permission[0].constraint[2].right_operand
    assert expiry == TypedLiteral("2027-11-01T00:00:00Z", "xsd:dateTime")
    assert policy.permission[0].constraint[5].right_operand is False
    assert policy.permission[0].constraint[3].right_operand == 50


def mutated(base: Json, path: tuple[str | int, ...], new: Json) -> Json:
    value = json.loads(json.dumps(base))
    target = value
    for step in path[:-1]:
        target = target[step]
    if new is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = new
    return value


DELETE = object()

POLICY_ERRORS = [
    (("permission", 0, "foo"), 1, "unknown field 'permission[0].foo'"),
    (("target", "odrl:scope"), "x", "unknown field 'target.odrl:scope'"),
    (("permission", 0, "constraint", 0, "unit"), "m", "unknown field"),
    (("permission", 0, "constraint", 0, "and"), [], "unknown field"),
    (("uid",), "urn:dure:policy:other:training", "must be urn:dure:policy:factory-a:<label>"),
    (("target", "source"), "urn:dure:dataset:other", "the assigner's own dataset"),
    (("assigner",), "urn:dure:org:factory-a", "expected urn:dure:site:<name>"),
    (("@context",), ["http://www.w3.org/ns/odrl.jsonld"], "@context must be exactly"),
    (("@context", 1, "dure"), "https://example.com/", "@context must be exactly"),
    (("@type",), "Offer", "@type: Input should be 'Set'"),
    (("profile",), "https://dure.dev/odrl/profile/v2", "profile"),
    (("dure:issued",), "2026-11-01T00:00:00+00:00", "not a UTC timestamp"),
    (("dure:issued",), "2026-02-30T00:00:00Z", "dure:issued"),
    (("dure:onRevocation",), "forget", "dure:onRevocation"),
    (("permission", 0, "assignee"), 7, "permission[0].assignee"),
    (("permission", 0, "constraint", 0, "rightOperand"), None, "rightOperand must be"),
    (("permission", 0, "constraint", 0, "rightOperand"), [1, 2], "rightOperand must be"),
    (("permission", 0, "constraint", 0, "rightOperand"), {"@value": "x"}, "rightOperand must"),
    (("permission", 0, "constraint", 0, "leftOperand"), DELETE, "missing required field"),
    (("permission",), DELETE, "missing required field 'permission'"),
    (("permission",), {}, "permission"),
    (("prohibition", 0, "duty"), [], "unknown field 'prohibition[0].duty'"),
]


@pytest.mark.parametrize(("path", "new", "message"), POLICY_ERRORS, ids=str)
def test_policy_structure_errors_name_the_field(
    path: tuple[str | int, ...], new: Json, message: str
) -> None:
    with pytest.raises(DocumentError) as caught:
        UsagePolicy.from_value(mutated(policy_value(), path, new), source="factory-a.policy.json")
    assert message in caught.value.message
    assert caught.value.message.startswith("factory-a.policy.json: invalid usage policy: ")


def test_unknown_field_hint_says_remove() -> None:
    with pytest.raises(DocumentError) as caught:
        UsagePolicy.from_value(mutated(policy_value(), ("extra",), 1))
    assert "Remove the unknown field 'extra'" in caught.value.hint


JOB_ERRORS = [
    (("dp", "sigma"), "1", "unknown field 'dp.sigma'"),
    (("type",), "dure/job/v2", "type"),
    (("job_id",), "Has Spaces", "is not a name"),
    (("consortium",), "urn:dure:site:x", "expected urn:dure:consortium:<name>"),
    (("coordinator",), "robotics-coop", "expected urn:dure:coordinator:<name>"),
    (("purpose",), "urn:dure:purpose:bc-manipulation", "expected urn:dure:purpose:<name>:v<N>"),
    (("code_hash",), "AB" * 32, "64 lowercase hex"),
    (("rounds",), 0, "rounds"),
    (("rounds",), "20", "rounds"),
    (("rounds",), True, "rounds"),
    (("aggregation", "strategy"), "fedsomething", "aggregation.strategy"),
    (("aggregation", "norm_bound"), "1e3", "not a decimal string"),
    (("aggregation", "norm_bound"), "-1", "not a decimal string"),
    (("aggregation", "secure"), "yes", "aggregation.secure"),
    (("dp", "epsilon"), "0", "greater than 0"),
    (("dp", "delta"), "1.0", "below 1"),
    (("dp", "mode"), "local", "dp.mode"),
    (("dp",), DELETE, "missing required field 'dp'"),
    (("min_contributors",), 0, "min_contributors"),
    (("recipients",), ["urn:dure:site:a", "urn:dure:site:a"], "lists a value twice"),
    (("recipients",), ["factory-a"], "not a party URN"),
    (("expires",), "2026-10-01T00:00:00Z", "expires must be later than issued"),
    (("model", "parameters"), -1, "model.parameters"),
    (("episode_selector", 0, "extra"), 1, "unknown field 'episode_selector[0].extra'"),
]


@pytest.mark.parametrize(("path", "new", "message"), JOB_ERRORS, ids=str)
def test_job_structure_errors_name_the_field(
    path: tuple[str | int, ...], new: Json, message: str
) -> None:
    with pytest.raises(DocumentError) as caught:
        JobManifest.from_value(mutated(job_value(), path, new), source="job.json")
    assert message in caught.value.message


def test_float_is_an_encoding_error() -> None:
    data = json.dumps(job_value()).replace('"epsilon": "4.0"', '"epsilon": 4.0').encode()
    with pytest.raises(EncodingError, match="binary floating-point"):
        JobManifest.from_json_bytes(data)


def test_top_level_must_be_an_object() -> None:
    with pytest.raises(DocumentError, match="must be a JSON object, got list"):
        JobManifest.from_json_bytes(b"[]")


def test_job_helpers() -> None:
    job = example_job()
    assert job.required_actions == ("use", "derive", "distribute")
    assert job.dp is not None and str(job.dp.epsilon_value) == "4.0"
    assert str(job.aggregation.norm_bound_value) == "10.0"
    assert example_job(members=()).required_actions == ("use", "derive")


@pytest.mark.parametrize(
    ("promised", "asked", "effective"),
    [
        ("exclude-future", "exclude-future", "exclude-future"),
        ("exclude-future", "retrain-without", "exclude-future"),
        ("retrain-without", "exclude-future", "exclude-future"),
        ("retrain-without", "retrain-without", "retrain-without"),
    ],
)
def test_revocation_asks_for_less_never_more(promised: str, asked: str, effective: str) -> None:
    policy = example_policy(on_revocation=promised)
    revocation = Revocation.from_value(revocation_value(policy, asked))
    assert effective_mode(policy, revocation) == effective


def test_revocation_must_name_the_policy_and_its_site() -> None:
    policy = example_policy()
    other = example_policy(dp_epsilon="3.0")
    with pytest.raises(DocumentError, match="names policy"):
        effective_mode(other, Revocation.from_value(revocation_value(policy)))
    value = revocation_value(policy)
    value["site"] = "urn:dure:site:factory-b"
    with pytest.raises(DocumentError, match="comes from urn:dure:site:factory-b"):
        effective_mode(policy, Revocation.from_value(value))
