"""Hostile requests against every route of the coordinator API (issue 17).

Hypothesis draws requests an attacker would send: a ``Dure-Request`` header that
is garbage, or base64 of JSON with a 5,000-digit integer, 3,000-deep nesting,
Rich markup (``[/]``, ``[bold]``), control characters or NUL in its fields;
bearer tokens likewise; bodies that are deep, huge-integer, markup or binary
JSON, also inside a DSSE envelope whose payload the operator really signed, and
requests the operator signs so they pass authentication; path parameters with
``../``, ``%2e%2e/``, NUL and very long values.  Each is sent to a route drawn
from ``app.routes`` (every method of every route, the FastAPI routes, the
dashboard and the operations routes).  Whatever is sent:

- no answer is a 5xx;
- every 4xx is a problem document (``application/problem+json``) whose code is
  in the error catalog, whose status is the catalog's, with a detail and a hint;
- the ledger, the sites, the policies and the jobs are exactly as they were.
"""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Mount
from tests.builders.api import World, build_world, digest_of

from dure.policies.dsse import PAYLOAD_TYPES, sign_envelope
from dure.policies.errors import CATALOG, DureError
from dure.server.api.signing import REQUEST_HEADER, sign_request

_HUGE = "9" * 5000
_MARKUP = ["[/]", "[bold]x[/bold]", "[/]<script>alert(1)</script>", "[link=file:///etc/passwd]"]
_PATHS = ["../", "..%2f..%2fetc%2fpasswd", "%2e%2e/", "%2e%2e%2f", "..\\..\\", "/etc/passwd"]
_CONTROL = ["\x00", "\x1b[31m", "\x7f", "\u202e", "\ufeff", "a\x00b"]


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _hostile_scalars() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(_MARKUP + _PATHS + _CONTROL),
        st.just("x" * 20_000),
        st.text(max_size=40),
    )


def _hostile_json() -> st.SearchStrategy[str]:
    """JSON texts (or near-JSON) that break naive parsers."""
    scalar = _hostile_scalars().map(json.dumps)
    envelope = st.builds(
        lambda keyid, extra: (
            json.dumps(
                {
                    "payloadType": keyid,
                    "payload": "AAAA",
                    "signatures": [{"keyid": keyid, "sig": "AA"}],
                }
            )[:-1]
            + f', "n": {extra}}}'
        ),
        _hostile_scalars(),
        st.sampled_from([_HUGE, "-" + _HUGE, _nested(3000), "1e99999", "NaN", '"x"']),
    )
    return st.one_of(
        st.sampled_from([_HUGE, "-" + _HUGE, _nested(3000), _nested(100_000), "{" * 5000]),
        scalar,
        envelope,
        st.builds(
            lambda s: json.dumps({s: [s] * 3, "deep": json.loads(_nested(50))}), _hostile_scalars()
        ),
    )


def _header_value() -> st.SearchStrategy[str]:
    as_base64 = _hostile_json().map(lambda text: base64.b64encode(text.encode()).decode())
    raw = _hostile_scalars().map(lambda text: text.replace("\r", "").replace("\n", ""))
    return st.one_of(as_base64, raw, st.just(base64.b64encode(b"\x00" * 64).decode()))


def _path_segment() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from([*_PATHS, "%00", "a%00b", "x" * 5000, "factory-a", digest_of("m")]),
        st.sampled_from(_MARKUP + _CONTROL).map(lambda s: quote(s, safe="")),
        st.just(_HUGE),
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root: Path = tmp_path_factory.mktemp("hostile")
    with build_world(f"sqlite:///{root / 'coordinator.db'}") as built:
        built.register_all()
        built.play_round(1, ["factory-a", "factory-b", "factory-c"], digest_of("m1"), None)
        yield built


def _routes(world: World) -> list[tuple[str, str]]:
    """Every (method, path template) of ``app.routes``, included routers opened."""
    found: list[tuple[str, str]] = []
    pending = list(world.client.app.routes)  # type: ignore[attr-defined]
    while pending:
        route = pending.pop()
        methods = getattr(route, "methods", None)
        if methods and not isinstance(route, Mount):
            found += [(method, route.path) for method in sorted(methods)]
        included = getattr(route, "original_router", None)
        pending += list(getattr(included, "routes", ()))
    assert len(found) >= 30, found
    return sorted(set(found))


def _state(world: World) -> tuple[int, int, int, int]:
    services = world.services
    return (
        services.ledger.store.size(),
        len(services.registry.sites()),
        len(services.registry.policies()),
        len(services.jobs.jobs()),
    )


def _body(data: st.DataObject, world: World) -> bytes:
    choice = data.draw(st.sampled_from(["none", "json", "signed-envelope", "binary"]))
    if choice == "none":
        return b""
    if choice == "binary":
        return data.draw(st.binary(max_size=2048))
    text = data.draw(_hostile_json(), label="body")
    if choice == "json":
        return text.encode("utf-8", "surrogatepass")
    kind = data.draw(st.sampled_from(["site-identity", "policy", "job", "revocation"]))
    envelope = sign_envelope(
        PAYLOAD_TYPES[kind], text.encode("utf-8", "surrogatepass"), world.operator
    )
    return envelope.to_json()


def _check(world: World, response: Any, before: tuple[int, int, int, int], sent: str) -> None:
    status = response.status_code
    assert status < 500, f"{sent} -> {status}: {response.text[:300]}"
    if 400 <= status < 500:
        assert response.headers["content-type"].startswith("application/problem+json"), sent
        problem = response.json()
        assert problem["code"] in CATALOG, (sent, problem)
        assert CATALOG[problem["code"]].http_status == status or status == 405, (sent, problem)
        assert problem["detail"] and problem["hint"], (sent, problem)
    assert _state(world) == before, f"{sent} changed the registry or the ledger"


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_hostile_requests_are_refused_as_problems_and_change_nothing(
    world: World, data: st.DataObject
) -> None:
    method, template = data.draw(st.sampled_from(_routes(world)), label="route")
    path = template
    while "{" in path:
        head, _, rest = path.partition("{")
        path = head + data.draw(_path_segment(), label="path parameter") + rest.partition("}")[2]
    body = _body(data, world)
    headers = {"content-type": "application/json"} if body else {}
    auth = data.draw(st.sampled_from(["hostile-header", "bearer", "operator-signed", "none"]))
    if auth == "hostile-header":
        headers[REQUEST_HEADER] = data.draw(_header_value(), label="Dure-Request")
    elif auth == "bearer":
        headers["Authorization"] = "Bearer " + data.draw(_header_value(), label="token")
    elif auth == "operator-signed":
        with suppress(DureError):  # a path no signature may cover is sent unsigned
            headers[REQUEST_HEADER] = sign_request(
                world.operator, method, path, body, now=world.clock[0]
            )
    before = _state(world)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        raw = {k.encode(): v.encode("utf-8", "surrogatepass") for k, v in headers.items()}
        response = world.client.request(method, path, content=body, headers=raw)
    _check(world, response, before, f"{method} {path[:120]} ({auth})")
