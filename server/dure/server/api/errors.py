"""Errors of the coordinator's HTTP API.

Hierarchy (codes in :data:`dure.policies.errors.CATALOG`, HTTP status there)::

    DureError
    ├── AuthError              server.auth (401): no credentials, unknown key, bad binding
    │   ├── ReplayError        server.replay (401): a nonce seen before
    │   └── StaleRequestError  server.stale (401): timestamp outside the window
    ├── ForbiddenError         server.forbidden (403): a member asking for what is not theirs
    ├── ReleaseDeniedError     server.release_denied (403): a contributor's policy forbids a release
    ├── RequestError           server.request (422): a body or query the API refuses
    └── BodyTooLargeError      server.body_too_large (413)

Signature failures inside a request envelope are the kernel's
:class:`~dure.policies.errors.SignatureError` (401).
"""

from __future__ import annotations

from dure.policies.errors import DureError

__all__ = [
    "AuthError",
    "BodyTooLargeError",
    "ForbiddenError",
    "ReleaseDeniedError",
    "ReplayError",
    "RequestError",
    "StaleRequestError",
]


class AuthError(DureError):
    """A request without valid member credentials."""

    code = "server.auth"
    default_hint = (
        "Sign the request with a member key (Dure-Request header, docs/api.md) or send "
        "a token from POST /v1/auth/token; writes must always be signed."
    )


class ReplayError(AuthError):
    """A signed request whose nonce was already used."""

    code = "server.replay"
    default_hint = "Sign every request afresh, with a new random nonce."


class StaleRequestError(AuthError):
    """A signed request whose timestamp is outside the accepted window."""

    code = "server.stale"
    default_hint = "Sign the request just before sending it, and check the signer's clock (NTP)."


class ForbiddenError(DureError):
    """An authenticated member asking for something that is not theirs."""

    code = "server.forbidden"
    default_hint = (
        "Only the site itself (or an auditor it named) may do this; the operator signs jobs "
        "and releases."
    )


class ReleaseDeniedError(DureError):
    """A model release that a contributor's usage policy does not allow."""

    code = "server.release_denied"
    default_hint = (
        "Release only to recipients every contributor's policy lets the model be "
        "distributed to; the reasons name each refusing policy."
    )

    def __init__(self, message: str, reasons: tuple[str, ...], *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reasons = reasons


class RequestError(DureError):
    """A request body, path or query the API refuses."""

    code = "server.request"
    default_hint = "Fix the named field; docs/api.md shows every route's body and parameters."


class BodyTooLargeError(DureError):
    """A request body over the configured limit."""

    code = "server.body_too_large"
    default_hint = "Bodies are signed documents of a few KiB; send no raw data or weights."
