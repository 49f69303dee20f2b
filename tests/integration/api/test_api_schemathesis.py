"""schemathesis over the coordinator's OpenAPI: no 5xx, no response outside the schema.

Every operation is fuzzed with schema-valid (positive) and schema-invalid
(negative) requests, each signed by the operator (a ``requests`` auth hook signs
the exact prepared bytes, so the signature check passes and the fuzzing reaches
the routes' own validation).  The database holds three registered sites, a job
and two committed rounds, so lookups by name can also succeed.  Checks: no
server error, every status and content type documented, every body matching
its schema, invalid input rejected.  The number of generated cases is printed.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from tests.builders.api import World, build_world, digest_of

from dure.policies.errors import DureError
from dure.policies.keys import SigningKey
from dure.server.api.signing import REQUEST_HEADER, sign_request

EXAMPLES = int(os.environ.get("DURE_SCHEMATHESIS_EXAMPLES", "20"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


class _Signed(requests.auth.AuthBase):
    """Signs each prepared request (method, path and query, exact body) with ``key``."""

    def __init__(self, world: World, key: SigningKey) -> None:
        self.world, self.key = world, key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        raw = body.encode() if isinstance(body, str) else bytes(body)  # type: ignore[arg-type]
        method, target = request.method or "GET", request.path_url
        try:
            header = sign_request(self.key, method, target, raw, now=self.world.clock[0])
        except DureError:  # a target no signature may cover (too long): sent unsigned
            return request
        request.headers[REQUEST_HEADER] = header
        return request


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root: Path = tmp_path_factory.mktemp("schemathesis")
    with build_world(f"sqlite:///{root / 'coordinator.db'}") as world:
        world.register_all()
        world.play_round(1, ["factory-a", "factory-b", "factory-c"], digest_of("m1"), None)
        world.play_round(2, ["factory-a", "factory-b"], digest_of("m2"), digest_of("m1"))
        yield world


def _operations(world: World) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.client.app)
    results = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in results), "the OpenAPI document is invalid"
    return [result.ok() for result in results if isinstance(result, Ok)]


@pytest.mark.slow
def test_fuzzing_finds_no_server_error_and_no_schema_violation(
    fuzzed: World, capsys: pytest.CaptureFixture[str]
) -> None:
    session = requests.Session()
    session.auth = _Signed(fuzzed, fuzzed.operator)
    operations = _operations(fuzzed)
    assert len(operations) >= 25
    counts: dict[str, int] = {}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            counts[f"{operation.label} {mode.value}"] = _fuzz(operation, mode, session)
    total = sum(counts.values())
    with capsys.disabled():
        print(f"\nschemathesis: {total} generated cases over {len(operations)} operations")
    assert total >= len(operations) * 5


def _fuzz(operation: Any, mode: GenerationMode, session: requests.Session) -> int:
    seen = [0]
    strategy = operation.as_strategy(generation_mode=mode)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, _salt=st.just(0))
    def run(case: Any, _salt: int) -> None:
        seen[0] += 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            response = case.call(session=session)
        checks = [*CHECKS, negative_data_rejection] if mode is GenerationMode.NEGATIVE else CHECKS
        case.validate_response(response, checks=checks)

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # an operation without parameters or body has no invalid input to generate
    return seen[0]
