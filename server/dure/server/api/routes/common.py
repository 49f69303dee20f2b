"""What the routers share: documented error responses, path and query parameter types."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query

from dure.server.api.outputs import Problem

__all__ = [
    "MEMBER_ERRORS",
    "PUBLIC_ERRORS",
    "WRITE_ERRORS",
    "DigestPath",
    "JobIdPath",
    "SitePath",
    "SiteQuery",
]

_DESCRIPTIONS = {
    400: "Malformed input (encoding, range)",
    401: "Not authenticated: missing, forged, stale or replayed signature; bad token",
    403: "Authenticated, but not allowed to do this",
    404: "No such site, policy, job or model",
    409: "Conflicts with what is registered",
    413: "Body too large",
    422: "Invalid body, path or query",
    503: "Storage unavailable",
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    found: dict[int | str, dict[str, Any]] = {
        status: {"model": Problem, "description": _DESCRIPTIONS[status]} for status in statuses
    }
    found["default"] = {"model": Problem, "description": "Any other error, as a problem"}
    return found


PUBLIC_ERRORS = _errors(400, 413, 422, 503)
MEMBER_ERRORS = _errors(400, 401, 403, 404, 413, 422, 503)
WRITE_ERRORS = _errors(400, 401, 403, 404, 409, 413, 422, 503)

_NAME = r"^[a-z0-9][a-z0-9._-]{0,62}$"
SitePath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="Site name")]
SiteQuery = Annotated[
    str | None, Query(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="Only this site")
]
DigestPath = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="Lowercase hex SHA-256")]
JobIdPath = Annotated[str, Path(pattern=_NAME, description="Job id")]
