"""Forged, replayed and expired signed requests are refused; tokens are for reads only."""

from __future__ import annotations

import base64
from datetime import timedelta

import httpx2
import pytest
from tests.builders.api import World

from dure.policies.dsse import Envelope, EnvelopeSignature
from dure.policies.keys import SigningKey
from dure.server.api.signing import REQUEST_HEADER, sign_request


def _code(response: httpx2.Response) -> tuple[int, str]:
    return response.status_code, response.json()["code"]


def test_a_signed_read_by_a_member_is_accepted(world: World) -> None:
    response = world.call(world.operator, "GET", "/v1/me")
    assert response.status_code == 200
    assert response.json() == {
        "key_id": world.operator.key_id,
        "role": "operator",
        "site": None,
        "audits": [],
    }


def test_requests_without_credentials_or_by_strangers_are_refused(world: World) -> None:
    assert _code(world.client.get("/v1/sites")) == (401, "server.auth")
    assert _code(world.call(SigningKey.generate(), "GET", "/v1/sites")) == (401, "server.auth")
    unsigned_write = world.client.post("/v1/jobs", content=world.job().to_json())
    assert _code(unsigned_write) == (401, "server.auth")


def test_a_forged_signature_is_refused(world: World) -> None:
    header = sign_request(world.operator, "GET", "/v1/sites", now=world.clock[0])
    envelope = Envelope.from_json(base64.b64decode(header))
    forged_sig = bytes(64)
    forged = Envelope(
        envelope.payload_type,
        envelope.payload,
        (EnvelopeSignature(envelope.signatures[0].keyid, forged_sig),),
    )
    value = base64.b64encode(forged.to_json()).decode()
    assert _code(world.client.get("/v1/sites", headers={REQUEST_HEADER: value})) == (
        401,
        "kernel.signature",
    )
    payload = envelope.payload.replace(b'"timestamp":"2026', b'"timestamp":"2025')
    tampered = Envelope(envelope.payload_type, payload, envelope.signatures)
    value = base64.b64encode(tampered.to_json()).decode()
    assert _code(world.client.get("/v1/sites", headers={REQUEST_HEADER: value})) == (
        401,
        "kernel.signature",
    )
    assert _code(world.client.get("/v1/sites", headers={REQUEST_HEADER: "garbage!"})) == (
        401,
        "server.auth",
    )


@pytest.mark.parametrize(
    ("method", "target", "body"),
    [
        ("POST", "/v1/sites", b""),  # another method
        ("GET", "/v1/jobs", b""),  # another path
        ("GET", "/v1/sites?x=1", b""),  # another query
        ("GET", "/v1/sites", b"{}"),  # another body
    ],
)
def test_a_signature_covers_method_target_and_body(
    world: World, method: str, target: str, body: bytes
) -> None:
    header = sign_request(world.operator, method, target, body, now=world.clock[0])
    response = world.client.get("/v1/sites", headers={REQUEST_HEADER: header})
    assert _code(response) == (401, "server.auth")


def test_a_replayed_request_is_refused(world: World) -> None:
    header = sign_request(world.operator, "GET", "/v1/sites", now=world.clock[0])
    assert world.client.get("/v1/sites", headers={REQUEST_HEADER: header}).status_code == 200
    again = world.client.get("/v1/sites", headers={REQUEST_HEADER: header})
    assert _code(again) == (401, "server.replay")


def test_a_replayed_write_is_refused_and_appends_nothing(world: World) -> None:
    body = world.sites["factory-a"].identity.to_json()
    header = sign_request(world.operator, "POST", "/v1/sites", body, now=world.clock[0])
    headers = {REQUEST_HEADER: header, "content-type": "application/json"}
    assert world.client.post("/v1/sites", content=body, headers=headers).status_code == 201
    size = world.services.ledger.store.size()
    assert _code(world.client.post("/v1/sites", content=body, headers=headers)) == (
        401,
        "server.replay",
    )
    assert world.services.ledger.store.size() == size


@pytest.mark.parametrize(
    "skew", [timedelta(seconds=-121), timedelta(seconds=121), timedelta(days=-1)]
)
def test_expired_and_future_requests_are_refused(world: World, skew: timedelta) -> None:
    response = world.call(world.operator, "GET", "/v1/sites", now=world.clock[0] + skew)
    assert _code(response) == (401, "server.stale")


def test_a_request_at_the_edge_of_the_window_is_accepted(world: World) -> None:
    edge = world.clock[0] - timedelta(seconds=120)
    assert world.call(world.operator, "GET", "/v1/sites", now=edge).status_code == 200


def test_tokens_read_but_never_write(world: World) -> None:
    issued = world.call(world.operator, "POST", "/v1/auth/token")
    assert issued.status_code == 200
    token = issued.json()["token"]
    assert issued.json()["member"]["role"] == "operator"
    bearer = {"authorization": f"Bearer {token}"}
    assert world.client.get("/v1/sites", headers=bearer).status_code == 200
    write = world.client.post("/v1/jobs", content=world.job().to_json(), headers=bearer)
    assert _code(write) == (401, "server.auth")
    tampered = {"authorization": f"Bearer {token[:-2]}xx"}
    assert _code(world.client.get("/v1/sites", headers=tampered)) == (401, "server.auth")
    world.clock[0] += timedelta(seconds=world.services.settings.token_ttl_s + 1)
    assert _code(world.client.get("/v1/sites", headers=bearer)) == (401, "server.stale")


def test_a_token_cannot_be_had_without_a_signature(world: World) -> None:
    assert _code(world.client.post("/v1/auth/token")) == (401, "server.auth")
