"""The dashboard: a static page at ``/`` that reads the API from the browser.

The page holds no data and needs no membership: it is HTML, CSS and JavaScript
shipped as package data (``dure/server/api/dashboard/``) and served from a fixed
list, so nothing outside that folder can be named.  Everything it shows, it
fetches with the caller's own credentials:

- the **ledger** from the public read API, verified in the browser: it
  recomputes the RFC 9162 root over every entry with SHA-256 and compares it with
  the signed checkpoint, and checks the checkpoint's Ed25519 signature against
  the verifier key (the one the viewer pinned, else the one served);
- everything else from the member routes with a **read token** (``Authorization:
  Bearer``, from ``POST /v1/auth/token``), kept in the tab's ``sessionStorage``.
  The coordinator's rules apply unchanged: without a token the member sections
  stay empty, and a site's usage is asked for only for the member's own site and
  the sites it audits (the API refuses anyone else anyway).

Every answer carries a strict Content-Security-Policy (same-origin scripts,
styles and requests only, no framing), so neither an injected script nor a
third-party asset can reach the token.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from starlette.responses import Response

from dure.server.storage.errors import NotFoundError

__all__ = ["ASSETS", "SECURITY_HEADERS", "asset", "index", "router"]

router = APIRouter(include_in_schema=False)

ASSETS: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "api.js": "text/javascript; charset=utf-8",
    "ledger.js": "text/javascript; charset=utf-8",
    "sha256.js": "text/javascript; charset=utf-8",
    "views.js": "text/javascript; charset=utf-8",
    "policy.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def _read(name: str) -> bytes:
    return resources.files("dure.server.api").joinpath("dashboard", name).read_bytes()


def _serve(name: str) -> Response:
    media = ASSETS.get(name)
    if media is None:
        raise NotFoundError(f"the dashboard has no file {name[:80]!r}")
    return Response(_read(name), media_type=media, headers=SECURITY_HEADERS)


@router.get("/")
def index() -> Response:
    """The dashboard page."""
    return _serve("index.html")


@router.get("/dashboard/{name}")
def asset(name: str) -> Response:
    """One of the dashboard's files (a fixed list: nothing else can be named)."""
    return _serve(name)
