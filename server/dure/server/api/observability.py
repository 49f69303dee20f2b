"""Operators' view of the service: Prometheus metrics, JSON access logs, body limits.

:class:`Observability` is pure ASGI middleware (no per-request task or body
buffering) that gives each request an id (``X-Request-Id``, taken from the
client when it is a short token, else generated), times it, counts it in
Prometheus metrics by method, route template and status, and logs one JSON
line per request on the ``dure.server.api.access`` logger.  It also refuses
bodies over the configured size: at once from ``Content-Length``, or while
streaming.  Metrics live in a registry of their own per app, served at
``GET /metrics`` in the Prometheus text format.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dure.server.api.errors import BodyTooLargeError
from dure.server.api.problems import problem_response

__all__ = ["JsonFormatter", "Metrics", "Observability", "configure_logging"]

_access = logging.getLogger("dure.server.api.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_STANDARD = set(vars(logging.makeLogRecord({})))
_CHILDREN = 1024  # labelled metric children kept at hand; past that, looked up each time


class Metrics:
    """The service's Prometheus metrics, in their own registry."""

    def __init__(
        self,
        ledger_size: Callable[[], float] | None = None,
        proof_copy: Callable[[], float] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "dure_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "dure_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ("method", "route"),
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "dure_http_requests_in_flight", "Requests being answered.", registry=self.registry
        )
        self.refusals = Counter(
            "dure_api_refusals",
            "Requests refused with a Dure error, by error code.",
            ("code",),
            registry=self.registry,
        )
        self.ledger = Gauge(
            "dure_ledger_entries", "Entries in the audit ledger.", registry=self.registry
        )
        if ledger_size is not None:
            self.ledger.set_function(ledger_size)
        self.proof_copy = Gauge(
            "dure_proof_copy_entries",
            "Entries whose tree nodes this worker holds in memory for proofs.",
            registry=self.registry,
        )
        if proof_copy is not None:
            self.proof_copy.set_function(proof_copy)


class Observability:
    """ASGI middleware: request ids, metrics, JSON access logs and a body size limit."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_body: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one ASGI connection through the wrapped app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        state: dict[str, Any] = {"status": 500, "code": None}
        start = time.perf_counter()
        self.metrics.in_flight.inc()
        sending = self._sending(send, state, request_id)
        try:
            if self._too_long(headers):
                detail = f"request body over the limit of {self.max_body} bytes"
                await problem_response(
                    413, BodyTooLargeError.code, detail, BodyTooLargeError.default_hint
                )(scope, receive, sending)
                return
            await self.app(scope, self._limited(receive), sending)
        finally:
            self.metrics.in_flight.dec()
            self._record(scope, state, request_id, time.perf_counter() - start)

    def _too_long(self, headers: dict[bytes, bytes]) -> bool:
        length = headers.get(b"content-length", b"0")
        return length.isdigit() and int(length) > self.max_body

    def _limited(self, receive: Receive) -> Receive:
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                raise HTTPException(413, f"request body over {self.max_body} bytes")
            return message

        return limited

    def _sending(self, send: Send, state: dict[str, Any], request_id: str) -> Send:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        return sending

    def _record(self, scope: Scope, state: dict[str, Any], request_id: str, took: float) -> None:
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        method, status = scope["method"], state["status"]
        count, latency = self._labelled(method, route, status)
        count.inc()
        latency.observe(took)
        _access.info(
            "%s %s %s",
            method,
            route,
            status,
            extra={
                "request_id": request_id,
                "method": method,
                "route": route,
                "path": scope.get("path", ""),
                "status": status,
                "latency_ms": round(took * 1000, 3),
            },
        )

    def _labelled(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        """The request counter and latency histogram children of these labels."""
        key = (method, route, status)
        found = self._children.get(key)
        if found is None:
            found = (
                self.metrics.requests.labels(method, route, str(status)),
                self.metrics.latency.labels(method, route),
            )
            if len(self._children) < _CHILDREN:
                self._children[key] = found
        return found


class JsonFormatter(logging.Formatter):
    """One JSON object per log record: time, level, logger, message and any extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a JSON line."""
        value: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        value.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            value["exception"] = self.formatException(record.exc_info)
        return json.dumps(value, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send Dure's and uvicorn's logs to stderr as JSON lines (called by ``serve``)."""
    handler = logging.StreamHandler()
    formatter = JsonFormatter()
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    for name in ("dure", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True
