"""SqlRegistry honours the federation's SiteRegistry contract and its own look-ups."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update
from tests.builders.api import Party, make_party

from dure.policies.dsse import Envelope
from dure.policies.errors import SignatureError
from dure.policies.examples import EXAMPLE_NOW, example_job, example_policy_value
from dure.policies.identity import SiteIdentity, sign_site_identity
from dure.policies.keys import SigningKey
from dure.policies.policy import UsagePolicy
from dure.policies.revocation import Revocation
from dure.policies.signed import sign_document
from dure.server.federation.admission import admit
from dure.server.federation.registry import SiteRegistry
from dure.server.storage.database import Database
from dure.server.storage.errors import ConflictError, NotFoundError, StorageError
from dure.server.storage.registry import SqlRegistry
from dure.server.storage.tables import PolicyRow, SiteRow

NOW = EXAMPLE_NOW


def test_is_a_site_registry(db: Database) -> None:
    registry: SiteRegistry = SqlRegistry(db)
    assert registry.sites() == ()


def test_registers_sites_in_order_with_their_current_policy(db: Database) -> None:
    registry = SqlRegistry(db)
    parties = [make_party(name) for name in ("factory-b", "factory-a")]
    for party in parties:
        entry = registry.register_site(party.identity, NOW)
        assert entry.site == party.urn
        assert entry.signing_key_id == party.key.key_id
    registered = registry.register_policy(parties[0].policy, NOW)
    sites = registry.sites()
    assert [s.name for s in sites] == ["factory-b", "factory-a"]
    assert sites[0].policy is not None and sites[0].policy.policy_id == registered.policy_id
    assert sites[1].policy is None
    assert registry.site("factory-b").verify_key == parties[0].key.public
    assert registry.site_by_key(parties[1].key.key_id) == sites[1]
    assert registry.site_by_key("0" * 64) is None


def test_a_site_keeps_its_key_and_a_key_names_one_site(db: Database) -> None:
    registry = SqlRegistry(db)
    party = make_party("factory-a")
    registry.register_site(party.identity, NOW)
    registry.register_site(party.identity, NOW)  # re-registration with the same key is fine
    impostor = make_party("factory-a")
    with pytest.raises(ConflictError):
        registry.register_site(impostor.identity, NOW)
    line = party.identity.payload  # same key, another site name
    other = SiteIdentity.create(
        "factory-z", party.key, SiteIdentity.from_canonical_bytes(line).supernode_key
    )
    with pytest.raises(ConflictError):
        registry.register_site(sign_site_identity(other, party.key), NOW)
    assert [s.name for s in registry.sites()] == ["factory-a"]


def test_a_new_policy_replaces_the_current_one_and_ids_are_unique(db: Database) -> None:
    registry = SqlRegistry(db)
    party = make_party("factory-a")
    registry.register_site(party.identity, NOW)
    first = registry.register_policy(party.policy, NOW)
    with pytest.raises(ConflictError):
        registry.register_policy(party.policy, NOW)
    later = EXAMPLE_NOW - timedelta(days=1)  # issued after the first: it may replace it
    value = example_policy_value("factory-a", dp_epsilon="5.0", issued=later)
    second = registry.register_policy(
        sign_document("policy", UsagePolicy.from_value(value), party.key), NOW
    )
    current = registry.site("factory-a").policy
    assert current is not None and current.policy_id == second.policy_id
    listed = registry.policies("factory-a")
    assert [(p.registered.policy_id, p.current) for p in listed] == [
        (first.policy_id, False),
        (second.policy_id, True),
    ]
    assert registry.policy(first.policy_id).current is False


def test_policies_need_a_registered_site_and_its_key(db: Database) -> None:
    registry = SqlRegistry(db)
    party = make_party("factory-a")
    with pytest.raises(NotFoundError):
        registry.register_policy(party.policy, NOW)
    registry.register_site(party.identity, NOW)
    forged = sign_document(
        "policy", UsagePolicy.from_value(example_policy_value("factory-a")), SigningKey.generate()
    )
    with pytest.raises(SignatureError):
        registry.register_policy(forged, NOW)
    with pytest.raises(NotFoundError):
        registry.site("factory-x")
    with pytest.raises(NotFoundError):
        registry.policy("ab" * 32)


def test_revocation_applies_to_the_current_policy_once_and_admission_refuses(db: Database) -> None:
    registry = SqlRegistry(db)
    parties = [make_party(f"factory-{x}") for x in "abcd"]
    for party in parties:
        registry.register_site(party.identity, NOW)
        registry.register_policy(party.policy, NOW)
    job = example_job(dp=False)
    before = admit(job, registry.sites(), consortium="urn:dure:consortium:robotics-coop", now=NOW)
    assert all(d.admitted for d in before)
    entry = registry.revoke(parties[0].revocation("exclude-future"), NOW)
    assert entry.mode == "exclude-future" and entry.site == parties[0].urn
    site = registry.site("factory-a")
    assert site.policy is not None and site.policy.revoked and site.policy.mode == "exclude-future"
    after = admit(job, registry.sites(), consortium="urn:dure:consortium:robotics-coop", now=NOW)
    assert [d.admitted for d in after] == [False, True, True, True]
    with pytest.raises(ConflictError):
        registry.revoke(parties[0].revocation(), NOW)
    with pytest.raises(SignatureError):  # a revocation signed by another site's key
        registry.revoke(_signed_by(parties[1], parties[2]), NOW)


def test_the_weaker_revocation_mode_wins(db: Database) -> None:
    registry = SqlRegistry(db)
    party = make_party("factory-a")  # its policy promises retrain-without
    registry.register_site(party.identity, NOW)
    registry.register_policy(party.policy, NOW)
    assert registry.revoke(party.revocation("retrain-without"), NOW).mode == "retrain-without"


def test_rows_edited_in_the_database_fail_verification(db: Database) -> None:
    registry = SqlRegistry(db)
    a, b = make_party("factory-a"), make_party("factory-b")
    for party in (a, b):
        registry.register_site(party.identity, NOW)
        registry.register_policy(party.policy, NOW)
    site, policy = SiteRow.__table__, PolicyRow.__table__  # type: ignore[attr-defined]
    db.run(
        lambda c: c.execute(
            update(policy)
            .where(policy.c.site == "factory-a")
            .values(envelope=b.policy.to_json().decode())
        ),
        write=True,
    )
    with pytest.raises(StorageError):
        registry.site("factory-a")
    db.run(
        lambda c: c.execute(
            update(site)
            .where(site.c.name == "factory-b")
            .values(identity=a.identity.to_json().decode())
        ),
        write=True,
    )
    with pytest.raises(StorageError):
        registry.site("factory-b")


def _signed_by(owner: Party, signer: Party) -> Envelope:
    document = Revocation.from_canonical_bytes(owner.revocation().payload)
    return sign_document("revocation", document, signer.key)
