"""Sites, policies and jobs through the API: who may register what, what is ledgered."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from tests.builders.api import World, build_world, make_party

from dure.policies.encoding import b64decode
from dure.policies.entries import LedgerEntry
from dure.policies.examples import example_job_value
from dure.policies.job import JobManifest
from dure.policies.keys import SigningKey
from dure.policies.receipt import Receipt, verify_receipt
from dure.policies.signed import sign_document


def test_registering_a_site_ledgers_it_with_a_receipt(any_world: World) -> None:
    world = any_world
    party = world.sites["factory-a"]
    response = world.call(world.operator, "POST", "/v1/sites", party.identity)
    assert response.status_code == 201
    body = response.json()
    assert body["site"]["name"] == "factory-a" and body["site"]["policy_id"] is None
    record = body["ledger"]
    entry = LedgerEntry.from_bytes(base64.b64decode(record["entry"]))
    assert entry.kind == record["kind"] == "site_registered"
    receipt = Receipt.from_json(json.dumps(record["receipt"]))
    verify_receipt(receipt, base64.b64decode(record["entry"]), world.services.ledger.public_key())
    assert world.call(party.key, "GET", "/v1/me").json()["role"] == "site"


def test_only_the_operator_registers_a_new_site(world: World) -> None:
    party = world.sites["factory-a"]
    refused = world.call(party.key, "POST", "/v1/sites", party.identity)
    assert (refused.status_code, refused.json()["code"]) == (403, "server.forbidden")
    stranger = world.call(SigningKey.generate(), "POST", "/v1/sites", party.identity)
    assert (stranger.status_code, stranger.json()["code"]) == (401, "server.auth")


def test_open_registration_lets_a_site_register_itself(tmp_path: Path) -> None:
    with build_world(f"sqlite:///{tmp_path / 'open.db'}", open_registration=True) as world:
        party = world.sites["factory-b"]
        assert world.call(party.key, "POST", "/v1/sites", party.identity).status_code == 201
        other = make_party("factory-x")  # a key may not register an identity of another key
        forged = world.call(party.key, "POST", "/v1/sites", other.identity)
        assert forged.status_code == 403


def test_a_site_re_registers_itself_but_not_another(world: World) -> None:
    a, b = world.sites["factory-a"], world.sites["factory-b"]
    for party in (a, b):
        assert world.call(world.operator, "POST", "/v1/sites", party.identity).status_code == 201
    assert world.call(a.key, "POST", "/v1/sites", a.identity).status_code == 201
    assert world.call(a.key, "POST", "/v1/sites", b.identity).status_code == 403


def test_policies_are_registered_by_their_site_and_listed(world: World) -> None:
    a, b = world.sites["factory-a"], world.sites["factory-b"]
    for party in (a, b):
        world.call(world.operator, "POST", "/v1/sites", party.identity)
    assert world.call(b.key, "POST", "/v1/policies", a.policy).status_code == 403
    created = world.call(a.key, "POST", "/v1/policies", a.policy)
    assert created.status_code == 201
    policy = created.json()
    assert policy["site"] == "factory-a" and policy["current"] and not policy["revoked"]
    assert policy["document"]["uid"] == "urn:dure:policy:factory-a:training"
    assert b64decode(policy["envelope"]["payload"]) == a.policy.payload
    again = world.call(a.key, "POST", "/v1/policies", a.policy)
    assert (again.status_code, again.json()["code"]) == (409, "server.conflict")
    listed = world.call(b.key, "GET", "/v1/policies?site=factory-a").json()
    assert [p["policy_id"] for p in listed] == [policy["policy_id"]]
    fetched = world.call(b.key, "GET", f"/v1/policies/{policy['policy_id']}")
    assert fetched.json() == policy
    assert world.call(b.key, "GET", f"/v1/policies/{'0' * 64}").status_code == 404
    assert world.call(b.key, "GET", "/v1/policies?site=factory-z").status_code == 404
    sites = world.call(b.key, "GET", "/v1/sites").json()
    assert [(s["name"], s["policy_id"]) for s in sites] == [
        ("factory-a", policy["policy_id"]),
        ("factory-b", None),
    ]


def test_a_policy_for_an_unknown_site_or_with_a_bad_signature_is_refused(world: World) -> None:
    a = world.sites["factory-a"]
    unknown = world.call(world.operator, "POST", "/v1/policies", a.policy)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "server.not_found")


def test_jobs_are_signed_off_by_the_operator_only(world: World) -> None:
    a = world.sites["factory-a"]
    world.call(world.operator, "POST", "/v1/sites", a.identity)
    job = world.job()
    assert world.call(a.key, "POST", "/v1/jobs", job).status_code == 403
    created = world.call(world.operator, "POST", "/v1/jobs", job)
    assert created.status_code == 201
    body = created.json()
    assert body["job_id"] == "bc-pick-place-1" and body["operator_key_id"] == world.operator.key_id
    assert world.call(world.operator, "POST", "/v1/jobs", job).status_code == 409
    stranger = sign_document(
        "job", JobManifest.from_value(example_job_value(task="push")), SigningKey.generate()
    )
    refused = world.call(world.operator, "POST", "/v1/jobs", stranger)
    assert (refused.status_code, refused.json()["code"]) == (401, "kernel.signature")
    assert [j["job_id"] for j in world.call(a.key, "GET", "/v1/jobs").json()] == ["bc-pick-place-1"]
    assert world.call(a.key, "GET", "/v1/jobs/bc-pick-place-1").json() == body
    assert world.call(a.key, "GET", "/v1/jobs/none").status_code == 404
    kinds = [
        LedgerEntry.from_bytes(e).kind
        for e in world.services.ledger.store.entries(0, world.services.ledger.store.size())
    ]
    assert kinds == ["site_registered", "job_signed"]


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b'{"payloadType": "x", "payload": "AAAA", "signatures": []}',
        b'{"payloadType": "x", "payload": "AAAA", "signatures": [{"keyid": "k", "sig": "AAAA"}],'
        b' "x": 1}',
        b"not json",
        b"[]",
    ],
)
def test_malformed_bodies_are_422_problems(world: World, body: bytes) -> None:
    response = world.call(world.operator, "POST", "/v1/policies", body)
    assert response.status_code == 422
    assert set(response.json()) == {"code", "title", "detail", "hint", "reasons"}


def test_a_wellformed_envelope_with_a_bad_payload_is_refused(world: World) -> None:
    body = (
        b'{"payloadType":"application/vnd.dure.policy+json","payload":"e30=",'
        b'"signatures":[{"keyid":"k","sig":"AAAA"}]}'
    )
    response = world.call(world.operator, "POST", "/v1/policies", body)
    assert response.status_code == 422 and response.json()["code"] == "kernel.document"
