"""A lean path for the two proof routes, the API's hot path.

FastAPI's per-request work (route matching over every route, dependency
solving, parameter validation) costs more CPU than the proof itself.
:class:`ProofFastPath` is ASGI middleware that answers a **well-formed**
``GET /v1/ledger/proof/inclusion?index=I&size=N`` or
``GET /v1/ledger/proof/consistency?first=M&second=N`` (exactly those two
parameters, decimal, within the I-JSON safe range) directly from the services'
:class:`~dure.server.api.proofs.ProofReader`, with the same JSON body, and the
same problem body for a refused request, as the FastAPI routes in
:mod:`dure.server.api.routes.ledger`.  Anything else (a malformed query, another
method) goes on to FastAPI, whose validation answers as usual; the FastAPI
routes also document both operations in the OpenAPI schema.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from dure.policies.encoding import b64encode
from dure.policies.errors import DureError, outcome_for
from dure.server.api.problems import problem_response

__all__ = ["ProofFastPath"]

_log = logging.getLogger("dure.server.api")
_NUMBER = re.compile(rb"^(0|[1-9][0-9]{0,15})$")
_MAX = 2**53 - 1


@dataclass(frozen=True, slots=True)
class _Route:
    """What the metrics middleware reads from ``scope["route"]``."""

    path: str
    names: tuple[str, str]
    kind: str


_ROUTES = {
    "/v1/ledger/proof/inclusion": _Route(
        "/v1/ledger/proof/inclusion", ("index", "size"), "inclusion"
    ),
    "/v1/ledger/proof/consistency": _Route(
        "/v1/ledger/proof/consistency", ("first", "second"), "consistency"
    ),
}


class ProofFastPath:
    """ASGI middleware answering well-formed proof requests without FastAPI (see module doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a well-formed proof request, or pass the request on."""
        route = _ROUTES.get(scope.get("path", "")) if scope["type"] == "http" else None
        values = _query(scope, route) if route is not None else None
        if route is None or values is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = route
        response = await _answer(scope["app"], route, values)
        await response(scope, receive, send)


def _query(scope: Scope, route: _Route) -> tuple[int, int] | None:
    if scope["method"] != "GET":
        return None
    found: dict[bytes, int] = {}
    for pair in scope.get("query_string", b"").split(b"&"):
        name, sep, raw = pair.partition(b"=")
        if not sep or name in found or not _NUMBER.match(raw) or int(raw) > _MAX:
            return None
        found[name] = int(raw)
    first, second = (name.encode() for name in route.names)
    if set(found) != {first, second}:
        return None
    return found[first], found[second]


async def _answer(app: Any, route: _Route, values: tuple[int, int]) -> Response:
    proofs = app.state.services.proofs
    a, b = values
    try:
        if route.kind == "inclusion":
            hashes = await proofs.inclusion(a, b)
        else:
            hashes = await proofs.consistency(a, b)
    except DureError as exc:
        app.state.metrics.refusals.labels(exc.code).inc()
        status = outcome_for(exc).http_status
        if status >= 500:
            _log.error("%s: %s", exc.code, exc.message, exc_info=exc)
        return problem_response(status, exc.code, exc.message, exc.hint)
    body = {route.names[0]: a, route.names[1]: b, "hashes": [b64encode(h) for h in hashes]}
    return Response(orjson.dumps(body), media_type="application/json")
