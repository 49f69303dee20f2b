"""The coordinator's registry: sites, their signed policies and revocations, signed jobs.

Every document enters verified: a site identity by the key it declares, a
policy and a revocation by the key of the site it names (from its registered
identity), a job by a pinned consortium operator key.  Each registration
returns the ledger entry that records it; the caller appends it (the registry
does no I/O of its own).

:class:`SiteRegistry` is the contract; :class:`MemoryRegistry` keeps it in
memory.  The SQL registry (:class:`dure.server.storage.registry.SqlRegistry`)
implements the same protocol: it stores the envelopes and re-opens them, it
never trusts stored fields.  Both refuse in the same way, with the same errors
(one contract suite, ``tests/contract/registry``, runs on both): an unknown site
is :class:`~dure.server.storage.errors.NotFoundError`; a name with another key, a
key under another name, a policy id registered twice (a revoked policy is never
revived by registering it again), a revocation of a policy that is not the
site's current one or is already revoked are
:class:`~dure.server.storage.errors.ConflictError` (``409 server.conflict``).

Signed documents only move forward.  A site's current policy and its current
identity are the newest *issued*, never merely the last *registered*: a policy or
an identity (other than the current identity itself, re-registered) whose signed
issue time is not later than the current one's is refused with
:class:`~dure.server.storage.errors.ConflictError`, and nothing changes.  So
whoever relays documents (the operator, a registry folder) cannot make an older,
more permissive policy the site once signed current again, nor restore an old
identity and with it an old SuperNode key (:func:`require_newer`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from dure.policies.dsse import Envelope
from dure.policies.encoding import HexDigest, sha256, to_hex
from dure.policies.entries import JobSigned, PolicyRegistered, PolicyRevoked, SiteRegistered
from dure.policies.identity import SiteIdentity, open_site_identity
from dure.policies.job import JobManifest
from dure.policies.keys import VerifyKey
from dure.policies.literals import format_timestamp, parse_timestamp, party_name
from dure.policies.policy import RevocationMode, UsagePolicy
from dure.policies.revocation import Revocation, effective_mode
from dure.policies.signed import Opened, open_document
from dure.policies.terms import OPERANDS
from dure.policies.values import checked_value
from dure.server.federation.errors import RegistryError
from dure.server.storage.errors import ConflictError, NotFoundError

__all__ = [
    "MemoryRegistry",
    "RegisteredPolicy",
    "RegisteredSite",
    "SiteRegistry",
    "identity_issued",
    "job_signed_entry",
    "open_job",
    "policy_expiry",
    "require_newer",
    "supernode_key_digest",
]

_NEVER = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class RegisteredPolicy:
    """A site's verified usage policy and, once revoked, the verified revocation."""

    opened: Opened[UsagePolicy]
    revocation: Opened[Revocation] | None = None
    mode: RevocationMode | None = None

    @property
    def policy(self) -> UsagePolicy:
        """The policy document."""
        return self.opened.document

    @property
    def policy_id(self) -> HexDigest:
        """The policy's id (hex SHA-256 of its signed bytes)."""
        return self.opened.document_id

    @property
    def revoked(self) -> bool:
        """Whether the site revoked this policy."""
        return self.revocation is not None


@dataclass(frozen=True, slots=True)
class RegisteredSite:
    """A site: its verified identity and its current policy (if it registered one)."""

    identity: SiteIdentity
    identity_id: HexDigest
    policy: RegisteredPolicy | None = None

    @property
    def name(self) -> str:
        """The site's name, e.g. ``factory-a``."""
        return self.identity.site

    @property
    def urn(self) -> str:
        """The site's party URN, ``urn:dure:site:<name>``."""
        return f"urn:dure:site:{self.identity.site}"

    @property
    def verify_key(self) -> VerifyKey:
        """The site's Ed25519 key (signs its policies, claims and node bindings)."""
        return self.identity.verify_key


class SiteRegistry(Protocol):
    """Registered sites, policies and revocations (the coordinator's view).

    Contract:

    - ``register_site`` MUST verify the identity's self-signature, MUST refuse a
      second identity under a registered name with another key, and returns the
      ``site_registered`` entry to ledger.
    - ``register_policy`` and ``revoke`` MUST verify the envelope with the key of
      the site the document names and refuse unknown sites; a new policy
      replaces the site's current one.  A revocation MUST name the site's
      current policy and makes every later evaluation deny.
    - a policy or identity MUST be refused unless it was issued after the site's
      current one (:func:`require_newer`); re-registering the current identity
      itself is allowed.
    - a policy id is registered once: registering it again (revoked or not)
      MUST be refused, so a revoked policy is never revived; revoking a policy
      twice MUST be refused.
    - ``sites`` returns every site in registration order; ``site`` raises
      :class:`RegistryError` for an unknown name.
    """

    def register_site(self, envelope: Envelope, now: datetime) -> SiteRegistered:
        """Verify and register a site identity."""
        ...

    def register_policy(self, envelope: Envelope, now: datetime) -> PolicyRegistered:
        """Verify and register a site's usage policy."""
        ...

    def revoke(self, envelope: Envelope, now: datetime) -> PolicyRevoked:
        """Verify and apply a site's revocation of its current policy."""
        ...

    def sites(self) -> Sequence[RegisteredSite]:
        """Every registered site, in registration order."""
        ...

    def site(self, name: str) -> RegisteredSite:
        """The site called ``name``."""
        ...


class MemoryRegistry:
    """A :class:`SiteRegistry` in memory (tests, simulations, one coordinator process)."""

    def __init__(self) -> None:
        self._sites: dict[str, RegisteredSite] = {}
        self._policy_ids: set[str] = set()

    def register_site(self, envelope: Envelope, now: datetime) -> SiteRegistered:
        """Verify ``envelope`` (a self-signed identity) and register the site."""
        identity = open_site_identity(envelope)
        issued = identity_issued(identity)
        known = self._sites.get(identity.site)
        if known is not None and known.verify_key != identity.verify_key:
            raise ConflictError(
                f"site {identity.site!r} is already registered with key "
                f"{known.verify_key.key_id[:16]}…, not {identity.verify_key.key_id[:16]}…",
                hint="A site keeps its key; register a new site name for a new key.",
            )
        key_id = identity.verify_key.key_id
        others = (s for n, s in self._sites.items() if n != identity.site)
        if any(s.verify_key.key_id == key_id for s in others):
            raise ConflictError(f"key {key_id[:16]}… already belongs to another site")
        if known is not None and known.identity_id != identity.document_id():
            require_newer("identity", identity.site, issued, known.identity)
        site = RegisteredSite(identity, identity.document_id(), known.policy if known else None)
        self._sites[identity.site] = site
        return SiteRegistered(
            time=now.replace(microsecond=0),
            site=site.urn,
            identity_id=site.identity_id,
            signing_key_id=identity.verify_key.key_id,
            supernode_key_sha256=supernode_key_digest(identity.supernode_key),
        )

    def register_policy(self, envelope: Envelope, now: datetime) -> PolicyRegistered:
        """Verify ``envelope`` with its site's key and make it the site's current policy."""
        claimed = UsagePolicy.from_canonical_bytes(envelope.payload, source="policy")
        site = self.site(party_name(claimed.site))
        opened = open_document(envelope, "policy", UsagePolicy, _keys(site))
        if opened.document_id in self._policy_ids:
            raise ConflictError(f"policy {opened.document_id[:16]}… is already registered")
        if site.policy is not None:
            require_newer("policy", site.name, opened.document.issued, site.policy.policy)
        self._policy_ids.add(opened.document_id)
        self._sites[site.name] = replace(site, policy=RegisteredPolicy(opened))
        return PolicyRegistered(
            time=now.replace(microsecond=0),
            site=site.urn,
            policy_id=opened.document_id,
            expires=policy_expiry(opened.document),
        )

    def revoke(self, envelope: Envelope, now: datetime) -> PolicyRevoked:
        """Verify a revocation with its site's key and apply it to the site's policy."""
        claimed = Revocation.from_canonical_bytes(envelope.payload, source="revocation")
        site = self.site(party_name(claimed.site))
        opened = open_document(envelope, "revocation", Revocation, _keys(site))
        current = site.policy
        if current is None or current.policy_id != opened.document.policy_id:
            raise ConflictError(
                f"revocation names policy {opened.document.policy_id[:16]}…, which is not "
                f"the current policy of {site.name}",
                hint="Revoke the policy the site has registered (dure factory policy show).",
            )
        if current.revoked:
            raise ConflictError(f"policy {current.policy_id[:16]}… is already revoked")
        mode = effective_mode(current.policy, opened.document)
        self._sites[site.name] = replace(
            site, policy=replace(current, revocation=opened, mode=mode)
        )
        return PolicyRevoked(
            time=now.replace(microsecond=0),
            site=site.urn,
            policy_id=current.policy_id,
            revocation_id=opened.document_id,
            mode=mode,
        )

    def sites(self) -> Sequence[RegisteredSite]:
        """Every registered site, in registration order."""
        return tuple(self._sites.values())

    def site(self, name: str) -> RegisteredSite:
        """The site called ``name``."""
        try:
            return self._sites[name]
        except KeyError as exc:
            raise NotFoundError(
                f"site {name!r} is not registered (known: {sorted(self._sites)})",
                hint="Register the site's signed identity before its policy.",
            ) from exc


def identity_issued(identity: SiteIdentity) -> datetime:
    """Return when ``identity`` was issued (its signed ``issued``).

    Raises
    ------
    RegistryError
        If ``issued`` is not a UTC timestamp like ``2026-11-01T00:00:00Z``.
    """
    try:
        return parse_timestamp(identity.issued)
    except ValueError as exc:
        raise RegistryError(
            f"site identity of {identity.site!r}: issued {identity.issued[:40]!r} is not a "
            "UTC timestamp",
            hint="Create the identity with Dure (dure keys identity), which writes issued.",
        ) from exc


def require_newer(
    kind: str, site: str, issued: datetime, current: UsagePolicy | SiteIdentity
) -> None:
    """Refuse a site's ``kind`` document issued no later than its ``current`` one.

    Raises
    ------
    ConflictError
        If ``issued`` is not after the current document's issue time: an older
        (or equally old) document never becomes current again.
    """
    then = identity_issued(current) if isinstance(current, SiteIdentity) else current.issued
    if issued > then:
        return
    raise ConflictError(
        f"{kind} of site {site!r} issued {format_timestamp(issued)} is not newer than its "
        f"current {kind}, issued {format_timestamp(then)}: an older {kind} cannot become "
        "current again",
        hint=f"Have the site sign a new {kind} (issued now) and register that one; a "
        f"{kind} the site replaced stays replaced.",
    )


def open_job(envelope: Envelope, operator_keys: Mapping[str, VerifyKey]) -> Opened[JobManifest]:
    """Verify a job manifest against the pinned consortium operator keys, then parse it.

    Raises
    ------
    SignatureError
        If no pinned operator key signed it (nothing is parsed).
    DocumentError, EncodingError
        If the verified bytes are not a valid job manifest.
    """
    return open_document(envelope, "job", JobManifest, operator_keys)


def job_signed_entry(job: Opened[JobManifest], now: datetime) -> JobSigned:
    """Return the ``job_signed`` entry for a verified job."""
    return JobSigned(
        time=now.replace(microsecond=0),
        job_id=job.document.job_id,
        job_digest=job.document_id,
        operator_key_id=job.signer.key_id,
        purpose=job.document.purpose,
    )


def policy_expiry(policy: UsagePolicy) -> datetime:
    """Return when ``policy`` stops granting ``use``: its earliest ``dateTime`` upper bound.

    A policy without one never expires (9999-12-31T23:59:59Z is recorded).
    """
    bounds = [
        value
        for _, permission in policy.permissions_for("use")
        for term in permission.constraint
        if term.left_operand == "dateTime" and term.operator in ("lt", "lteq")
        if isinstance(value := checked_value(term, OPERANDS), datetime)
    ]
    return min(bounds, default=_NEVER)


def supernode_key_digest(key: str | bytes) -> HexDigest:
    """Return the hex SHA-256 of an ECDSA public key's DER SubjectPublicKeyInfo.

    ``key`` is an OpenSSH line (a site identity's ``supernode_key``) or PEM bytes
    (Flower's ``NodeInfo.public_key``); both spellings of one key give one digest.

    Raises
    ------
    RegistryError
        If ``key`` is neither.
    """
    raw = key.encode("ascii") if isinstance(key, str) else bytes(key)
    try:
        loaded = (
            serialization.load_pem_public_key(raw)
            if raw.startswith(b"-----BEGIN")
            else serialization.load_ssh_public_key(raw)
        )
    except (ValueError, TypeError, UnicodeError, UnsupportedAlgorithm) as exc:
        raise RegistryError("not an OpenSSH or PEM public key") from exc
    der = loaded.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return to_hex(sha256(der))


def _keys(site: RegisteredSite) -> dict[str, VerifyKey]:
    return {site.verify_key.key_id: site.verify_key}
