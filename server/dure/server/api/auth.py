"""Who is calling: members, signed requests and short-lived read tokens.

Members are the consortium operator (keys pinned in the settings), the
registered sites (the Ed25519 key of their verified identity) and the auditors
sites named (their keys may read those sites' usage reports).  A request proves
membership in one of two ways (docs/api.md):

- a **signed request** (``Dure-Request`` header, :mod:`dure.server.api.signing`):
  verified in this order, each failure refusing the request with nothing
  stored: envelope well formed, signed by a member's key, claim canonical,
  method, target and body digest equal to what was received, timestamp within
  the window; then its nonce is claimed once (a replay is refused).  Every write
  must be signed;
- a **read token** (``Authorization: Bearer …``) that a signed
  ``POST /v1/auth/token`` returns: an HMAC-SHA256 over the member's key id and
  an expiry, valid for reads only, for a few minutes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from dure.policies.dsse import PAYLOAD_TYPES, verify_envelope
from dure.policies.errors import DureError
from dure.policies.keys import VerifyKey
from dure.server.api.errors import AuthError, ReplayError, StaleRequestError
from dure.server.api.signing import RequestClaim, body_digest, decode_request_header
from dure.server.storage.auditors import SqlAuditorStore
from dure.server.storage.nonces import SqlNonceStore
from dure.server.storage.registry import SqlRegistry

__all__ = ["Authenticator", "Member", "Role"]

Role = Literal["operator", "site", "auditor"]
_TOKEN_PREFIX = "dure1"


@dataclass(frozen=True, slots=True)
class Member:
    """An authenticated caller.

    ``site`` is the site whose key signed (if it is a site key); ``audits`` the
    sites that named this key their auditor.
    """

    key_id: str
    operator: bool = False
    site: str | None = None
    audits: frozenset[str] = frozenset()

    @property
    def role(self) -> Role:
        """The strongest role of the key: operator, then site, then auditor."""
        if self.operator:
            return "operator"
        return "site" if self.site is not None else "auditor"

    def may_read_usage(self, site: str) -> bool:
        """Whether this member may read ``site``'s usage report: the site or its auditors."""
        return self.site == site or site in self.audits


class Authenticator:
    """Turns request credentials into a :class:`Member`, or refuses.

    Parameters
    ----------
    operator_keys
        The consortium operator's pinned keys, by key id.
    registry, auditors, nonces
        Where site keys, auditor keys and used nonces live.
    window
        How far a signed request's timestamp may be from the coordinator's clock.
    token_secret, token_ttl
        The HMAC key of read tokens and how long a token lasts.
    clock
        The coordinator's clock (timezone-aware).
    """

    def __init__(
        self,
        *,
        operator_keys: Mapping[str, VerifyKey],
        registry: SqlRegistry,
        auditors: SqlAuditorStore,
        nonces: SqlNonceStore,
        window: timedelta,
        token_secret: bytes,
        token_ttl: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self._operators = dict(operator_keys)
        self._registry = registry
        self._auditors = auditors
        self._nonces = nonces
        self._window = window
        self._secret = token_secret
        self._ttl = token_ttl
        self._clock = clock

    def lookup(self, key_id: str) -> tuple[Member, VerifyKey] | None:
        """Return the member holding key ``key_id`` and the key, or ``None``."""
        operator = self._operators.get(key_id)
        site = self._registry.site_by_key(key_id)
        audited = self._auditors.by_key(key_id)
        key = operator or (site.verify_key if site else None)
        key = key or (audited[0].key if audited else None)
        if key is None:
            return None
        member = Member(
            key_id,
            operator=operator is not None,
            site=site.name if site else None,
            audits=frozenset(record.site for record in audited),
        )
        return member, key

    def signed(
        self,
        header: str,
        method: str,
        target: str,
        body: bytes,
        *,
        claimed: VerifyKey | None = None,
    ) -> Member:
        """Verify a ``Dure-Request`` header against the request received.

        ``claimed`` is a key the body itself declares (a site identity registering
        itself): a request signed by it is accepted as a non-member's, and the
        route decides what such a caller may do.

        Raises
        ------
        AuthError, StaleRequestError, ReplayError, SignatureError
            As described in the module docstring; nothing is stored unless the
            request is otherwise valid.
        """
        try:
            envelope = decode_request_header(header)
        except DureError as exc:
            raise AuthError(f"malformed request signature: {exc.message}") from exc
        keyid = envelope.signatures[0].keyid
        found = self.lookup(keyid)
        if found is None and claimed is not None and claimed.key_id == keyid:
            found = Member(keyid), claimed
        if found is None:
            raise AuthError(f"request signed by key {keyid[:16]}…, which is no member's")
        member, key = found
        payload, _ = verify_envelope(envelope, {key.key_id: key}, PAYLOAD_TYPES["request"])
        try:
            claim = RequestClaim.from_canonical_bytes(payload, source="request signature")
        except DureError as exc:
            raise AuthError(exc.message) from exc
        self._check_binding(claim, method, target, body)
        self._check_fresh(claim)
        expires = int((claim.timestamp + self._window).timestamp())
        now = int(self._clock().timestamp())
        if not self._nonces.claim(claim.nonce, member.key_id, expires=expires, now=now):
            raise ReplayError(f"nonce {claim.nonce} was already used")
        return member

    def _check_binding(self, claim: RequestClaim, method: str, target: str, body: bytes) -> None:
        if claim.method != method or claim.path != target:
            raise AuthError(
                f"the signature covers {claim.method} {claim.path[:200]}, "
                f"not {method} {target[:200]}"
            )
        if claim.body_sha256 != body_digest(body):
            raise AuthError("the signature covers another body (body_sha256 differs)")

    def _check_fresh(self, claim: RequestClaim) -> None:
        now = self._clock()
        if abs(now - claim.timestamp) > self._window:
            raise StaleRequestError(
                f"request signed at {claim.timestamp:%Y-%m-%dT%H:%M:%SZ}, coordinator time "
                f"{now:%Y-%m-%dT%H:%M:%SZ}: outside ±{int(self._window.total_seconds())} s"
            )

    # -- read tokens ------------------------------------------------------------------

    def issue_token(self, member: Member) -> tuple[str, datetime]:
        """Return a read token for ``member`` and when it expires."""
        expires = self._clock().replace(microsecond=0) + self._ttl
        body = _b64(json.dumps({"k": member.key_id, "exp": int(expires.timestamp())}).encode())
        return f"{_TOKEN_PREFIX}.{body}.{self._mac(body)}", expires

    def token(self, token: str) -> Member:
        """Return the member a read token was issued to, refusing a bad or expired one."""
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != _TOKEN_PREFIX:
            raise AuthError("malformed bearer token")
        if not hmac.compare_digest(parts[2], self._mac(parts[1])):
            raise AuthError("bearer token does not verify")
        try:
            value = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
            key_id, expires = str(value["k"]), int(value["exp"])
        except (binascii.Error, ValueError, KeyError, TypeError) as exc:
            raise AuthError("malformed bearer token") from exc
        if expires <= self._clock().timestamp():
            raise StaleRequestError("bearer token expired", hint="Ask POST /v1/auth/token again.")
        found = self.lookup(key_id)
        if found is None:
            raise AuthError("bearer token names a key that is no longer a member")
        return found[0]

    def _mac(self, body: str) -> str:
        digest = hmac.new(self._secret, f"{_TOKEN_PREFIX}.{body}".encode(), hashlib.sha256)
        return _b64(digest.digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")
