"""Security headers on every response the coordinator sends.

:class:`SecurityHeaders` is pure ASGI middleware, the outermost layer, so it
also covers what other middleware answers itself (the proof fast path, a 413
from the body limit):

- every response carries ``X-Content-Type-Options: nosniff``, so no browser
  reads a ledger text or a problem body as markup or script;
- every JSON response (``application/json``, ``application/problem+json``: the
  registry, proofs, read tokens, problems) carries ``Cache-Control: no-store``
  unless the route set its own caching, so no shared cache keeps a member's
  answer or a bearer token.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SecurityHeaders"]

_NOSNIFF = (b"x-content-type-options", b"nosniff")
_NO_STORE = (b"cache-control", b"no-store")


class SecurityHeaders:
    """ASGI middleware adding the headers of the module docstring to each response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers to the response's start message."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _secured(list(message.get("headers", [])))
            await send(message)

        await self.app(scope, receive, sending)


def _secured(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    names = {name.lower(): value for name, value in headers}
    if _NOSNIFF[0] not in names:
        headers.append(_NOSNIFF)
    if b"json" in names.get(b"content-type", b"") and _NO_STORE[0] not in names:
        headers.append(_NO_STORE)
    return headers
