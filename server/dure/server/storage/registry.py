"""The site registry on SQL: the federation's :class:`SiteRegistry` contract, plus look-ups.

:class:`SqlRegistry` implements
:class:`~dure.server.federation.registry.SiteRegistry` (register a site's
self-signed identity, its policies and their revocation; list sites) over the
tables of :mod:`dure.server.storage.tables`, so the federation admits and
re-admits sites from the same database the API writes: a revocation made
through the API is seen by the next round's re-admission.

It stores envelopes verbatim and re-opens them on every read (identity by the
key it declares, policy and revocation by the site's key): a row edited in the
database fails verification (:class:`StorageError`) instead of being trusted.

Contract beyond :class:`SiteRegistry` (checked by ``tests/contract/api``):

- a site name keeps its key, and a key names one site (:class:`ConflictError`);
- a policy id is registered once; a site's current policy is its newest one,
  both by registration and by signed issue time: a policy or identity not
  issued after the site's current one is refused (:func:`require_newer`, checked
  inside the write's transaction, with the site's row locked on PostgreSQL);
- a revocation MUST name the site's current, unrevoked policy;
- unknown sites and policies raise :class:`NotFoundError`.

Atomic ledgering: given the coordinator's
:class:`~dure.server.ledger.sql.SqlLedgerStore` on the same engine, the
``*_ledgered`` methods write the registry row *and* append its ledger entry in
one SQL transaction, returning the entry with its index (:class:`Ledgered`): a
crash or failure between the two leaves neither, so the registry and the ledger
never disagree.  The protocol methods write the registry only (the federation's
in-process registry ledgers through its own :class:`~dure.server.ledger.service.Ledger`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from dure.policies.dsse import Envelope
from dure.policies.entries import LedgerEntry, PolicyRegistered, PolicyRevoked, SiteRegistered
from dure.policies.errors import DureError
from dure.policies.identity import SiteIdentity, open_site_identity
from dure.policies.keys import VerifyKey
from dure.policies.literals import format_timestamp, party_name
from dure.policies.policy import UsagePolicy
from dure.policies.revocation import Revocation, effective_mode
from dure.policies.signed import open_document
from dure.server.federation.registry import (
    RegisteredPolicy,
    RegisteredSite,
    identity_issued,
    policy_expiry,
    require_newer,
    supernode_key_digest,
)
from dure.server.ledger.sql import SqlLedgerStore
from dure.server.storage.database import Database
from dure.server.storage.errors import ConflictError, NotFoundError, StorageError
from dure.server.storage.tables import REGISTRY_TABLES

__all__ = ["Ledgered", "PolicyRecord", "SqlRegistry"]

T = TypeVar("T")
E = TypeVar("E", bound=LedgerEntry)
_SITE, _POLICY = REGISTRY_TABLES[0], REGISTRY_TABLES[1]


@dataclass(frozen=True, slots=True)
class PolicyRecord:
    """A registered policy as listed: its site, verified documents, times, whether current."""

    site: str
    registered: RegisteredPolicy
    registered_at: str
    revoked_at: str | None
    current: bool


@dataclass(frozen=True, slots=True)
class Ledgered(Generic[E]):
    """A registry write's ledger entry and the index it was appended at (same transaction)."""

    entry: E
    index: int


class SqlRegistry:
    """A :class:`~dure.server.federation.registry.SiteRegistry` in the coordinator database.

    Parameters
    ----------
    db
        The coordinator database.
    ledger
        The ledger store on the same engine, for the ``*_ledgered`` methods.
    """

    def __init__(self, db: Database, ledger: SqlLedgerStore | None = None) -> None:
        self._db = db
        self._ledger = ledger

    # -- SiteRegistry ---------------------------------------------------------

    def register_site(self, envelope: Envelope, now: datetime) -> SiteRegistered:
        """Verify a self-signed identity and register (or re-register) its site."""
        return self._register_site(envelope, now, ledger=False).entry

    def register_policy(self, envelope: Envelope, now: datetime) -> PolicyRegistered:
        """Verify a policy with its site's key and make it the site's current policy."""
        return self._register_policy(envelope, now, ledger=False).entry

    def revoke(self, envelope: Envelope, now: datetime) -> PolicyRevoked:
        """Verify a revocation with its site's key and apply it to the site's current policy."""
        return self._revoke(envelope, now, ledger=False).entry

    # -- registry writes with their ledger entry, atomically ------------------

    def register_site_ledgered(self, envelope: Envelope, now: datetime) -> Ledgered[SiteRegistered]:
        """:meth:`register_site` and its ``site_registered`` entry in one transaction."""
        return self._register_site(envelope, now, ledger=True)

    def register_policy_ledgered(
        self, envelope: Envelope, now: datetime
    ) -> Ledgered[PolicyRegistered]:
        """:meth:`register_policy` and its ``policy_registered`` entry in one transaction."""
        return self._register_policy(envelope, now, ledger=True)

    def revoke_ledgered(self, envelope: Envelope, now: datetime) -> Ledgered[PolicyRevoked]:
        """:meth:`revoke` and its ``policy_revoked`` entry in one transaction."""
        return self._revoke(envelope, now, ledger=True)

    def _register_site(
        self, envelope: Envelope, now: datetime, *, ledger: bool
    ) -> Ledgered[SiteRegistered]:
        identity = open_site_identity(envelope)
        issued = identity_issued(identity)
        key_id = identity.verify_key.key_id
        entry = SiteRegistered(
            time=now.replace(microsecond=0),
            site=f"urn:dure:site:{identity.site}",
            identity_id=identity.document_id(),
            signing_key_id=key_id,
            supernode_key_sha256=supernode_key_digest(identity.supernode_key),
        )

        def work(conn: Connection) -> int:
            query = select(_SITE).where(_SITE.c.name == identity.site).with_for_update()
            known = conn.execute(query).first()
            if known is not None and known.key_id != key_id:
                raise ConflictError(
                    f"site {identity.site!r} is registered with key {known.key_id[:16]}…, "
                    f"not {key_id[:16]}…",
                    hint="A site keeps its key; register a new site name for a new key.",
                )
            if known is not None:
                current = _stored_identity(known)
                if current.document_id() != identity.document_id():
                    require_newer("identity", identity.site, issued, current)
            values = {"identity": envelope.to_json().decode(), "registered": _time(now)}
            if known is None:
                conn.execute(insert(_SITE).values(name=identity.site, key_id=key_id, **values))
            else:
                conn.execute(update(_SITE).where(_SITE.c.id == known.id).values(**values))
            return self._append(conn, entry, ledger)

        index = self._write(work, f"key {key_id[:16]}… already belongs to another site")
        return Ledgered(entry, index)

    def _register_policy(
        self, envelope: Envelope, now: datetime, *, ledger: bool
    ) -> Ledgered[PolicyRegistered]:
        claimed = UsagePolicy.from_canonical_bytes(envelope.payload, source="policy")
        site = self.site(party_name(claimed.site))
        opened = open_document(envelope, "policy", UsagePolicy, _keys(site))
        row = {
            "policy_id": opened.document_id,
            "site": site.name,
            "envelope": envelope.to_json().decode(),
            "registered": _time(now),
        }
        entry = PolicyRegistered(
            time=now.replace(microsecond=0),
            site=site.urn,
            policy_id=opened.document_id,
            expires=policy_expiry(opened.document),
        )

        duplicate = f"policy {opened.document_id[:16]}… is already registered"

        def work(conn: Connection) -> int:
            _forward_only(conn, site, opened.document_id, opened.document, duplicate)
            conn.execute(insert(_POLICY).values(**row))
            return self._append(conn, entry, ledger)

        index = self._write(work, duplicate)
        return Ledgered(entry, index)

    def _revoke(
        self, envelope: Envelope, now: datetime, *, ledger: bool
    ) -> Ledgered[PolicyRevoked]:
        claimed = Revocation.from_canonical_bytes(envelope.payload, source="revocation")
        site = self.site(party_name(claimed.site))
        opened = open_document(envelope, "revocation", Revocation, _keys(site))
        current = site.policy
        if current is None or current.policy_id != opened.document.policy_id:
            raise ConflictError(
                f"revocation names policy {opened.document.policy_id[:16]}…, which is not "
                f"the current policy of {site.name}",
                hint="Revoke the policy the site has registered (GET /v1/policies?site=…).",
            )
        if current.revoked:
            raise ConflictError(f"policy {current.policy_id[:16]}… is already revoked")
        entry = PolicyRevoked(
            time=now.replace(microsecond=0),
            site=site.urn,
            policy_id=current.policy_id,
            revocation_id=opened.document_id,
            mode=effective_mode(current.policy, opened.document),
        )

        def work(conn: Connection) -> int:
            query = update(_POLICY).where(
                _POLICY.c.policy_id == current.policy_id, _POLICY.c.revocation.is_(None)
            )
            values = {"revocation": envelope.to_json().decode(), "revoked": _time(now)}
            if conn.execute(query.values(**values)).rowcount != 1:
                raise ConflictError(f"policy {current.policy_id[:16]}… was revoked meanwhile")
            return self._append(conn, entry, ledger)

        return Ledgered(entry, self._write(work, "revocation clashes"))

    def sites(self) -> Sequence[RegisteredSite]:
        """Every registered site with its current policy, in registration order."""

        def work(conn: Connection) -> tuple[list[Row[Any]], dict[str, Row[Any]]]:
            sites = list(conn.execute(select(_SITE).order_by(_SITE.c.id)))
            newest = select(func.max(_POLICY.c.id)).group_by(_POLICY.c.site)
            current = conn.execute(select(_POLICY).where(_POLICY.c.id.in_(newest)))
            return sites, {row.site: row for row in current}

        sites, policies = self._db.run(work)
        return tuple(_site_from(row, policies.get(row.name)) for row in sites)

    def site(self, name: str) -> RegisteredSite:
        """The site called ``name`` with its current policy."""

        def work(conn: Connection) -> tuple[Row[Any] | None, Row[Any] | None]:
            site = conn.execute(select(_SITE).where(_SITE.c.name == name)).first()
            query = select(_POLICY).where(_POLICY.c.site == name).order_by(_POLICY.c.id.desc())
            return site, conn.execute(query.limit(1)).first()

        site, policy = self._db.run(work)
        if site is None:
            raise NotFoundError(
                f"site {name[:80]!r} is not registered",
                hint="Register the site's signed identity before its policy (POST /v1/sites).",
            )
        return _site_from(site, policy)

    # -- look-ups -------------------------------------------------------------

    def site_by_key(self, key_id: str) -> RegisteredSite | None:
        """The site whose signing key has id ``key_id``, if any."""
        query = select(_SITE.c.name).where(_SITE.c.key_id == key_id)
        row = self._db.run(lambda conn: conn.execute(query).first())
        return None if row is None else self.site(str(row[0]))

    def policies(self, site: str | None = None) -> list[PolicyRecord]:
        """Every registered policy (of ``site`` when given), oldest first."""
        query = select(_POLICY).order_by(_POLICY.c.id)
        if site is not None:
            query = query.where(_POLICY.c.site == site)
        rows = self._db.run(lambda conn: list(conn.execute(query)))
        newest = {row.site: row.id for row in rows}
        keys = {name: _keys(self.site(name)) for name in {row.site for row in rows}}
        return [_policy_record(row, keys[row.site], newest[row.site] == row.id) for row in rows]

    def policy(self, policy_id: str) -> PolicyRecord:
        """The policy with id ``policy_id`` (any site, current or not)."""
        row = self._db.run(
            lambda conn: conn.execute(
                select(_POLICY).where(_POLICY.c.policy_id == policy_id)
            ).first()
        )
        if row is None:
            raise NotFoundError(f"no policy {policy_id[:64]!r} is registered")
        site = self.site(row.site)
        current = site.policy is not None and site.policy.policy_id == row.policy_id
        return _policy_record(row, _keys(site), current)

    def _append(self, conn: Connection, entry: LedgerEntry, ledger: bool) -> int:
        """Append ``entry`` in ``conn``'s transaction when ``ledger``; return its index (or -1)."""
        if not ledger:
            return -1
        if self._ledger is None:
            raise StorageError(
                "this registry has no ledger store to append to",
                hint="Build SqlRegistry(db, ledger=SqlLedgerStore(db.engine)).",
            )
        return self._ledger.append_within(conn, [entry.to_bytes()])

    def _write(self, work: Callable[[Connection], T], conflict: str) -> T:
        try:
            return self._db.run(work, write=True)
        except IntegrityError as exc:
            raise ConflictError(conflict) from exc


def _forward_only(
    conn: Connection, site: RegisteredSite, policy_id: str, policy: UsagePolicy, duplicate: str
) -> None:
    """Refuse, in ``conn``'s transaction, a policy registered before or not newer than current."""
    conn.execute(select(_SITE.c.id).where(_SITE.c.name == site.name).with_for_update())
    known = select(_POLICY.c.id).where(_POLICY.c.policy_id == policy_id)
    if conn.execute(known).first() is not None:
        raise ConflictError(duplicate)
    newest = select(_POLICY).where(_POLICY.c.site == site.name).order_by(_POLICY.c.id.desc())
    current = conn.execute(newest.limit(1)).first()
    if current is not None:
        stored = _opened_policy(current, _keys(site)).policy
        require_newer("policy", site.name, policy.issued, stored)


def _time(now: datetime) -> str:
    return format_timestamp(now.replace(microsecond=0))


def _keys(site: RegisteredSite) -> dict[str, VerifyKey]:
    return {site.verify_key.key_id: site.verify_key}


def _stored_identity(row: Row[Any]) -> SiteIdentity:
    try:
        identity = open_site_identity(Envelope.from_json(row.identity.encode()))
    except DureError as exc:
        raise StorageError(f"stored identity of site {row.name!r} does not verify: {exc}") from exc
    if identity.site != row.name or identity.verify_key.key_id != row.key_id:
        raise StorageError(f"stored identity of site {row.name!r} names another site or key")
    return identity


def _site_from(row: Row[Any], policy: Row[Any] | None) -> RegisteredSite:
    identity = _stored_identity(row)
    site = RegisteredSite(identity, identity.document_id())
    if policy is None:
        return site
    return RegisteredSite(identity, site.identity_id, _opened_policy(policy, _keys(site)))


def _opened_policy(row: Row[Any], keys: dict[str, VerifyKey]) -> RegisteredPolicy:
    try:
        opened = open_document(
            Envelope.from_json(row.envelope.encode()), "policy", UsagePolicy, keys
        )
        if opened.document_id != row.policy_id:
            raise StorageError(f"stored policy {row.policy_id[:16]}… has another id")
        if row.revocation is None:
            return RegisteredPolicy(opened)
        revocation = open_document(
            Envelope.from_json(row.revocation.encode()), "revocation", Revocation, keys
        )
        mode = effective_mode(opened.document, revocation.document)
    except StorageError:
        raise
    except DureError as exc:
        raise StorageError(f"stored policy {row.policy_id[:16]}… does not verify: {exc}") from exc
    return RegisteredPolicy(opened, revocation, mode)


def _policy_record(row: Row[Any], keys: dict[str, VerifyKey], current: bool) -> PolicyRecord:
    return PolicyRecord(row.site, _opened_policy(row, keys), row.registered, row.revoked, current)
