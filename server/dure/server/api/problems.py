"""Every error as a JSON problem, with the status the error catalog gives it.

SPEC: RFC 9457 (problem details), media type ``application/problem+json``; the
body is ``{"code", "title", "detail", "hint", "reasons"}``:

- a :class:`~dure.policies.errors.DureError` answers its
  :data:`~dure.policies.errors.CATALOG` status, with its code, the catalog's
  title, its message and its hint (``reasons`` lists the failed checks of a
  refused release);
- a request FastAPI cannot validate (body, path, query) answers 422
  ``server.request`` naming each failing field;
- a body FastAPI cannot parse as JSON (nested too deeply, an integer too long
  for Python, any other parse failure it reports as 400) answers the
  catalog's 422 ``server.request``, naming the problem;
- an unknown route 404 ``server.not_found``, another HTTP error its status
  under ``server.request`` (413 ``server.body_too_large``);
- anything else is a bug: 500 ``dure.error``, logged with its traceback, with
  no internals in the body.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from dure.policies.errors import CATALOG, DureError, outcome_for
from dure.server.api.errors import BodyTooLargeError, ReleaseDeniedError, RequestError
from dure.server.storage.errors import NotFoundError

__all__ = ["PROBLEM_MEDIA_TYPE", "install_problem_handlers", "problem_response"]

PROBLEM_MEDIA_TYPE = "application/problem+json"
_log = logging.getLogger("dure.server.api")
_MAX_FIELDS = 5


def problem_response(
    status: int, code: str, detail: str, hint: str, reasons: tuple[str, ...] = ()
) -> Response:
    """Return a problem response; the title is the catalog's for ``code``."""
    title = CATALOG[code].title if code in CATALOG else "Error"
    body = {"code": code, "title": title, "detail": detail, "hint": hint, "reasons": list(reasons)}
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE)


def install_problem_handlers(app: FastAPI) -> None:
    """Map every exception a route may raise to a problem response."""
    app.add_exception_handler(DureError, _dure)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)


def _dure(request: Request, exc: DureError) -> Response:
    outcome = outcome_for(exc)
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.refusals.labels(exc.code).inc()
    reasons = exc.reasons if isinstance(exc, ReleaseDeniedError) else ()
    if outcome.http_status >= 500:
        _log.error("%s: %s", exc.code, exc.message, exc_info=exc)
    return problem_response(outcome.http_status, exc.code, exc.message, exc.hint, reasons)


def _validation(request: Request, exc: RequestValidationError) -> Response:
    errors = list(exc.errors())
    fields = [_field(error) for error in errors[:_MAX_FIELDS]]
    if len(errors) > _MAX_FIELDS:
        fields.append(f"and {len(errors) - _MAX_FIELDS} more")
    return problem_response(
        422, RequestError.code, "invalid request: " + "; ".join(fields), RequestError.default_hint
    )


def _field(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ())) or "request"
    return f"{where}: {error.get('msg', 'invalid')}"[:300]


def _http(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 400:  # FastAPI's "error parsing the body": a request error
        return problem_response(
            422, RequestError.code, _unparsable(exc.__cause__), RequestError.default_hint
        )
    if exc.status_code == 404:
        code, hint = NotFoundError.code, "docs/api.md lists every route."
    elif exc.status_code == 413:
        code, hint = BodyTooLargeError.code, BodyTooLargeError.default_hint
    else:
        code, hint = RequestError.code, RequestError.default_hint
    response = problem_response(exc.status_code, code, str(exc.detail), hint)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


def _unparsable(cause: BaseException | None) -> str:
    if isinstance(cause, RecursionError):
        return "request body is not JSON the API reads: nested too deeply"
    if isinstance(cause, ValueError) and "integer" in str(cause):
        return "request body is not JSON the API reads: an integer with too many digits"
    return "request body is not JSON the API reads"


def _unexpected(request: Request, exc: Exception) -> Response:
    _log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        500, DureError.code, "the coordinator failed unexpectedly", "Report it to the operator."
    )
