"""Hardening of the API's edges: expired jobs, unparsable bodies, response headers, /docs.

Each test names the defect it guards (issue 17): an expired job was registered
(201, ``job_signed``); a 100,000-deep or huge-integer body answered 400 where the
catalog says 422; JSON responses lacked ``Cache-Control: no-store`` and
``X-Content-Type-Options: nosniff``; ``/docs`` loaded Swagger UI from a CDN; the
operator could re-post an older policy or identity of a site and make it current.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.builders.api import World, build_world, supernode_line

from dure.policies.dsse import Envelope
from dure.policies.encoding import b64encode
from dure.policies.errors import CATALOG, DocumentError
from dure.policies.examples import EXAMPLE_NOW, example_job_value, example_policy_value
from dure.policies.identity import SiteIdentity, sign_site_identity
from dure.policies.job import JobManifest
from dure.policies.keys import SigningKey
from dure.policies.literals import format_timestamp
from dure.policies.policy import UsagePolicy
from dure.policies.signed import document_id, sign_document
from dure.server.api.signing import REQUEST_HEADER


def _problem(response: object) -> tuple[int, str]:
    status = response.status_code  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["detail"] and body["hint"], body
    assert CATALOG[body["code"]].http_status == status, body
    return status, body["code"]


def test_an_expired_job_is_refused_and_nothing_is_ledgered(world: World) -> None:
    value = example_job_value(dp=False, rounds=5)
    value.update(issued="2019-01-01T00:00:00Z", expires="2020-01-01T00:00:00Z")
    expired = sign_document("job", JobManifest.from_value(value), world.operator)
    size = world.services.ledger.store.size()
    response = world.call(world.operator, "POST", "/v1/jobs", expired)
    assert _problem(response) == (403, "kernel.expired")
    assert "expired at 2020-01-01T00:00:00Z" in response.json()["detail"]
    assert world.services.ledger.store.size() == size
    assert world.call(world.operator, "GET", "/v1/jobs").json() == []
    assert world.call(world.operator, "POST", "/v1/jobs", world.job()).status_code == 201


@pytest.mark.parametrize(
    ("aggregation", "secure", "says"),
    [("fedadam", True, "secure"), ("bulyan", False, "bulyan")],
    ids=["optimiser-with-secagg", "unsupported-strategy"],
)
def test_a_job_this_coordinator_cannot_run_is_refused_and_nothing_is_ledgered(
    world: World, aggregation: str, secure: bool, says: str
) -> None:
    value: Any = example_job_value(dp=False, rounds=5)
    value["aggregation"].update(strategy=aggregation, secure=secure)
    job = sign_document("job", JobManifest.from_value(value), world.operator)
    size = world.services.ledger.store.size()
    response = world.call(world.operator, "POST", "/v1/jobs", job)
    assert _problem(response) == (409, "server.federation")
    assert says in response.json()["detail"].lower()
    assert world.services.ledger.store.size() == size
    assert world.call(world.operator, "GET", "/v1/jobs").json() == []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"payloadType": "x", "payload": "AAAA", "n": ' + b"9" * 5000 + b"}", "too many digits"),
        (b"{not json", "JSON decode error"),
    ],
    ids=["deep", "huge-int", "garbage"],
)
def test_an_unparsable_body_is_the_catalogs_422(world: World, body: bytes, says: str) -> None:
    size = world.services.ledger.store.size()
    for target in ("/v1/jobs", "/v1/sites", "/v1/policies", "/v1/revocations"):
        response = world.call(world.operator, "POST", target, body)
        assert _problem(response) == (422, "server.request")
        assert says in response.json()["detail"]
    assert world.services.ledger.store.size() == size


def test_a_huge_integer_in_the_request_header_is_refused_not_500(world: World) -> None:
    envelope = b'{"payloadType": "x", "payload": "AAAA", "signatures": [], "n": %s}' % (b"9" * 5000)
    header = base64.b64encode(envelope).decode()
    for method, target in (("GET", "/v1/sites"), ("POST", "/v1/jobs"), ("GET", "/v1/me")):
        response = world.client.request(method, target, headers={REQUEST_HEADER: header})
        assert _problem(response) == (401, "server.auth")


def _headers_of(world: World) -> dict[str, dict[str, str]]:
    world.register_all()
    token = world.call(world.operator, "POST", "/v1/auth/token").json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    answers = {
        "token": world.call(world.operator, "POST", "/v1/auth/token"),
        "registry": world.call(world.operator, "GET", "/v1/sites"),
        "read-token": world.client.get("/v1/jobs", headers=bearer),
        "problem": world.client.get("/v1/sites"),
        "not-found": world.client.get("/v1/nowhere"),
        "fast-proof": world.client.get("/v1/ledger/proof/inclusion?index=0&size=1"),
        "fast-refusal": world.client.get("/v1/ledger/proof/inclusion?index=5&size=1"),
        "too-large": world.client.post("/v1/jobs", content=b"x" * (300 * 1024)),
        "openapi": world.client.get("/openapi.json"),
        "entries": world.client.get("/v1/ledger/entries?start=0&end=1"),
        "checkpoint": world.client.get("/v1/ledger/checkpoint"),
        "dashboard": world.client.get("/"),
        "healthz": world.client.get("/healthz"),
    }
    return {name: dict(response.headers) for name, response in answers.items()}


def test_every_response_is_nosniff_and_every_json_one_no_store(world: World) -> None:
    for name, headers in _headers_of(world).items():
        assert headers.get("x-content-type-options") == "nosniff", name
        if "json" in headers.get("content-type", ""):
            assert headers.get("cache-control") == "no-store", name


def test_docs_are_off_by_default_and_the_schema_is_served(world: World) -> None:
    assert world.client.get("/docs").status_code == 404
    assert world.client.get("/redoc").status_code == 404
    assert world.client.get("/docs/oauth2-redirect").status_code == 404
    schema = world.client.get("/openapi.json")
    assert schema.status_code == 200 and schema.json()["info"]["title"] == "Dure coordinator"


def test_docs_enabled_serve_swagger_ui_from_local_assets_only(tmp_path: Path) -> None:
    assets = tmp_path / "swagger"
    assets.mkdir()
    (assets / "swagger-ui-bundle.js").write_text("window.SwaggerUIBundle = function () {};")
    (assets / "swagger-ui.css").write_text("body {}")
    with build_world(f"sqlite:///{tmp_path / 'c.db'}", docs_assets=assets) as world:
        page = world.client.get("/docs")
        assert page.status_code == 200
        assert not re.search(r"(src|href)=\"(https?:)?//", page.text), page.text
        assert "cdn" not in page.text.lower()
        for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
            assert f'"/docs/assets/{name}"' in page.text
            served = world.client.get(f"/docs/assets/{name}")
            assert served.status_code == 200 and served.text == (assets / name).read_text()
        assert world.client.get("/docs/assets/../../etc/passwd").status_code == 404
        assert world.client.get("/redoc").status_code == 404


def test_docs_assets_without_swagger_ui_are_refused_at_start(tmp_path: Path) -> None:
    with (
        pytest.raises(DocumentError, match=r"lacks swagger-ui-bundle\.js"),
        build_world(f"sqlite:///{tmp_path / 'c.db'}", docs_assets=tmp_path),
    ):
        pass


def test_the_operator_cannot_roll_a_site_back_to_an_older_policy_or_identity(
    any_world: World,
) -> None:
    world = any_world
    world.register_all()
    party = world.sites["factory-a"]
    newer_at = datetime.now(UTC).replace(microsecond=0)  # after make_party's identity
    value = example_policy_value("factory-a", issued=EXAMPLE_NOW - timedelta(days=1))
    newer = sign_document("policy", UsagePolicy.from_value(value), party.key)
    assert world.call(party.key, "POST", "/v1/policies", newer).status_code == 201
    rotated = _identity(party.key, "factory-a", newer_at + timedelta(days=1))
    assert world.call(world.operator, "POST", "/v1/sites", rotated).status_code == 201
    before = world.call(world.operator, "GET", "/v1/sites/factory-a").json()
    size = world.services.ledger.store.size()
    older_policy = _policy_value_signed(party.key, EXAMPLE_NOW - timedelta(days=2))
    for target, stale in (("/v1/policies", older_policy), ("/v1/sites", party.identity)):
        response = world.call(world.operator, "POST", target, stale)
        assert _problem(response) == (409, "server.conflict")
        assert "not newer" in response.json()["detail"]
    assert world.services.ledger.store.size() == size
    assert world.call(world.operator, "GET", "/v1/sites/factory-a").json() == before
    assert before["policy_id"] == document_id(newer.payload)


def _policy_value_signed(key: SigningKey, issued: datetime) -> Envelope:
    value = example_policy_value("factory-a", issued=issued, dp_epsilon=None)
    return sign_document("policy", UsagePolicy.from_value(value), key)


def _identity(key: SigningKey, site: str, issued: datetime) -> Envelope:
    identity = SiteIdentity(
        site=site,
        signing_key=b64encode(key.public.raw),
        supernode_key=supernode_line(),
        issued=format_timestamp(issued),
    )
    return sign_site_identity(identity, key)
