"""Operators' side: body limits, request ids, Prometheus metrics, JSON access logs."""

from __future__ import annotations

import json
import logging

import pytest
from tests.builders.api import World

from dure.server.api.observability import JsonFormatter
from dure.server.api.signing import REQUEST_HEADER, sign_request


def test_a_body_over_the_limit_is_refused_before_anything_else(world: World) -> None:
    limit = world.services.settings.max_body_bytes
    big = b'{"payloadType": "' + b"x" * limit + b'"}'
    response = world.call(world.operator, "POST", "/v1/policies", big)
    assert (response.status_code, response.json()["code"]) == (413, "server.body_too_large")


def test_a_streamed_body_over_the_limit_is_refused(world: World) -> None:
    limit = world.services.settings.max_body_bytes
    chunks = [b"x" * 4096] * (limit // 4096 + 2)
    header = sign_request(world.operator, "POST", "/v1/policies", b"", now=world.clock[0])
    response = world.client.post(
        "/v1/policies",
        content=iter(chunks),
        headers={REQUEST_HEADER: header, "content-type": "application/json"},
    )
    assert (response.status_code, response.json()["code"]) == (413, "server.body_too_large")


def test_request_ids_are_echoed_or_made(world: World) -> None:
    given = world.client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = world.client.get("/healthz", headers={"x-request-id": "bad id with spaces"})
    assert len(made.headers["x-request-id"]) == 32


def test_metrics_count_requests_by_route_template_and_status(world: World) -> None:
    world.client.get("/v1/ledger/proof/inclusion?index=0&size=0")
    world.client.get("/v1/sites")
    text = world.client.get("/metrics").text
    assert (
        'dure_http_requests_total{method="GET",route="/v1/ledger/proof/inclusion",status="400"} 1.0'
        in text
    )
    assert 'dure_http_requests_total{method="GET",route="/v1/sites",status="401"} 1.0' in text
    assert 'dure_api_refusals_total{code="server.auth"} 1.0' in text
    assert "dure_http_request_duration_seconds_bucket" in text
    assert "dure_ledger_entries 0.0" in text


def test_each_request_is_one_json_log_line(world: World, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="dure.server.api.access"):
        world.client.get("/v1/ledger/entries?start=0&end=0", headers={"x-request-id": "r-1"})
    records = [r for r in caplog.records if r.name == "dure.server.api.access"]
    assert len(records) == 1
    line = json.loads(JsonFormatter().format(records[0]))
    assert line["request_id"] == "r-1" and line["route"] == "/v1/ledger/entries"
    assert line["status"] == 200 and line["method"] == "GET" and line["latency_ms"] >= 0
    assert line["level"] == "INFO" and line["logger"] == "dure.server.api.access"


def test_openapi_documents_problems_for_every_error_response(world: World) -> None:
    schema = world.client.get("/openapi.json").json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status == "default" or status.startswith(("4", "5")):
                    assert list(response["content"]) == ["application/problem+json"], (path, method)
    assert "HTTPValidationError" not in schema["components"]["schemas"]


def test_repeated_requests_count_on_the_same_labels(world: World) -> None:
    for _ in range(3):
        world.client.get("/v1/ledger/proof/consistency?first=1&second=0")
    text = world.client.get("/metrics").text
    route = 'route="/v1/ledger/proof/consistency"'
    assert f'dure_http_requests_total{{method="GET",{route},status="400"}} 3.0' in text
    assert f'dure_http_request_duration_seconds_count{{method="GET",{route}}} 3.0' in text
