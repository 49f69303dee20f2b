"""A site's policy and identity only move forward, in every registry and on every path.

Issue 17, item 5: the current policy was the last *registered*, so whoever relays
documents (the operator, a registry folder) could re-post an older, more
permissive policy the site once signed, or an older identity restoring an old
SuperNode key, and make it current.  Every :class:`SiteRegistry` (in memory, SQL
on SQLite and PostgreSQL), the API's ledgered writes and the deployment's folder
sync must refuse a policy or identity not issued after the current one, change
nothing, and keep the newest-issued current.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from tests.builders.api import Party, make_party, supernode_line

from dure.policies.dsse import Envelope
from dure.policies.encoding import b64encode
from dure.policies.errors import CATALOG
from dure.policies.examples import EXAMPLE_ISSUED, EXAMPLE_NOW, example_policy_value
from dure.policies.identity import SiteIdentity, sign_site_identity
from dure.policies.keys import SigningKey
from dure.policies.literals import format_timestamp
from dure.policies.policy import UsagePolicy
from dure.policies.signed import document_id, sign_document
from dure.server.federation.deployment import load_registry, sync_registry
from dure.server.federation.registry import SiteRegistry, supernode_key_digest
from dure.server.ledger.memory import MemoryLedgerStore
from dure.server.ledger.service import Ledger
from dure.server.ledger.sql import SqlLedgerStore
from dure.server.storage.database import Database
from dure.server.storage.errors import ConflictError
from dure.server.storage.registry import SqlRegistry

NOW = EXAMPLE_NOW
LATER = EXAMPLE_ISSUED + timedelta(days=7)


def _policy(party: Party, issued: datetime, epsilon: str | None) -> Envelope:
    value = example_policy_value(party.name, issued=issued, dp_epsilon=epsilon)
    return sign_document("policy", UsagePolicy.from_value(value), party.key)


def _identity(party: Party, issued: datetime, supernode: str | None = None) -> Envelope:
    identity = SiteIdentity(
        site=party.name,
        signing_key=b64encode(party.key.public.raw),
        supernode_key=supernode or supernode_line(),
        issued=format_timestamp(issued),
    )
    return sign_site_identity(identity, party.key)


def _current_policy(registry: SiteRegistry, name: str) -> str | None:
    policy = registry.site(name).policy
    return None if policy is None else policy.policy_id


def test_an_older_policy_the_site_signed_never_becomes_current(
    site_registry: SiteRegistry,
) -> None:
    party = make_party("factory-a")
    site_registry.register_site(party.identity, NOW)
    permissive = _policy(party, EXAMPLE_ISSUED, epsilon=None)  # signed first, never registered
    strict = _policy(party, LATER, epsilon="1.0")
    site_registry.register_policy(strict, NOW)
    for older in (permissive, _policy(party, LATER, epsilon="9.0")):  # older, equally old
        with pytest.raises(ConflictError, match="not newer than its current policy") as caught:
            site_registry.register_policy(older, NOW)
        assert CATALOG[caught.value.code].http_status == 409
        assert caught.value.hint and "new policy" in caught.value.hint
        assert _current_policy(site_registry, "factory-a") == document_id(strict.payload)
    newer = _policy(party, LATER + timedelta(days=1), epsilon="2.0")
    site_registry.register_policy(newer, NOW)
    assert _current_policy(site_registry, "factory-a") == document_id(newer.payload)


def test_a_revoked_policy_is_not_undone_by_an_older_one(site_registry: SiteRegistry) -> None:
    party = make_party("factory-a")
    site_registry.register_site(party.identity, NOW)
    site_registry.register_policy(_policy(party, LATER, epsilon="1.0"), NOW)
    current = site_registry.site("factory-a").policy
    assert current is not None
    site_registry.revoke(party.revocation(policy=current.opened.envelope), NOW)
    with pytest.raises(ConflictError, match="not newer"):
        site_registry.register_policy(_policy(party, EXAMPLE_ISSUED, epsilon=None), NOW)
    after = site_registry.site("factory-a").policy
    assert after is not None and after.revoked and after.policy_id == current.policy_id


def test_an_older_identity_cannot_restore_an_old_supernode_key(
    site_registry: SiteRegistry,
) -> None:
    party = make_party("factory-a")
    old_node, new_node = supernode_line(), supernode_line()
    old = _identity(party, EXAMPLE_ISSUED, old_node)
    site_registry.register_site(old, NOW)
    rotated = _identity(party, LATER, new_node)
    site_registry.register_site(rotated, NOW)  # a newer identity: the node key rotates
    site_registry.register_site(rotated, NOW)  # the current identity again: fine
    for stale in (old, _identity(party, LATER, old_node)):  # older, equally old
        with pytest.raises(ConflictError, match="not newer than its current identity"):
            site_registry.register_site(stale, NOW)
        current = site_registry.site("factory-a").identity
        assert supernode_key_digest(current.supernode_key) == supernode_key_digest(new_node)


def test_ledgered_writes_refuse_a_rollback_and_leave_the_ledger_as_it_was(
    db: Database,
) -> None:
    store = SqlLedgerStore(db.engine)
    registry = SqlRegistry(db, ledger=store)
    party = make_party("factory-a")
    registry.register_site_ledgered(_identity(party, LATER), NOW)
    registry.register_policy_ledgered(_policy(party, LATER, epsilon="1.0"), NOW)
    size = store.size()
    with pytest.raises(ConflictError):
        registry.register_policy_ledgered(_policy(party, EXAMPLE_ISSUED, epsilon=None), NOW)
    with pytest.raises(ConflictError):
        registry.register_site_ledgered(_identity(party, EXAMPLE_ISSUED), NOW)
    assert store.size() == size
    assert len(registry.policies("factory-a")) == 1


def _folder(tmp_path: Path, party: Party, policies: dict[str, Envelope]) -> Path:
    folder = tmp_path / "registry"
    for sub in ("identities", "policies", "revocations"):
        (folder / sub).mkdir(parents=True)
    (folder / "identities" / f"{party.name}.json").write_bytes(party.identity.to_json())
    for name, envelope in policies.items():
        (folder / "policies" / name).write_bytes(envelope.to_json())
    return folder


def test_a_registry_folder_registers_a_sites_history_oldest_first(tmp_path: Path) -> None:
    party = make_party("factory-a")
    old, new = _policy(party, EXAMPLE_ISSUED, None), _policy(party, LATER, "1.0")
    folder = _folder(tmp_path, party, {"a-new.json": new, "b-old.json": old})
    ledger = Ledger(MemoryLedgerStore(), SigningKey.generate(), "dure.test/ledger")
    registry = load_registry(folder, ledger)
    assert _current_policy(registry, "factory-a") == document_id(new.payload)
    assert ledger.store.size() == 3


def test_a_registry_folder_cannot_roll_back_a_sql_registry(db: Database, tmp_path: Path) -> None:
    party = make_party("factory-a")
    registry = SqlRegistry(db)
    ledger = Ledger(SqlLedgerStore(db.engine), SigningKey.generate(), "dure.test/ledger")
    new = _policy(party, LATER, "1.0")
    sync_registry(_folder(tmp_path / "first", party, {"p.json": new}), registry, ledger)
    size = ledger.store.size()
    older = _policy(party, EXAMPLE_ISSUED, None)
    stale = _folder(tmp_path / "second", party, {"p-old.json": older})
    with pytest.raises(ConflictError, match="not newer"):
        sync_registry(stale, registry, ledger)
    assert ledger.store.size() == size
    assert _current_policy(registry, "factory-a") == document_id(new.payload)
