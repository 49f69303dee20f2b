"""One SiteRegistry contract for both registries: MemoryRegistry and SqlRegistry.

The federation's in-memory registry and the coordinator's SQL registry must
refuse the same things with the same errors; in particular a revoked policy is
never revived by registering it again (both answer ``409 server.conflict``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.builders.api import make_party
from tests.builders.ledger import postgres_schema

from dure.policies.errors import CATALOG
from dure.policies.examples import EXAMPLE_NOW, example_job
from dure.policies.identity import SiteIdentity, sign_site_identity
from dure.server.federation.admission import admit
from dure.server.federation.registry import MemoryRegistry, SiteRegistry
from dure.server.storage.database import Database
from dure.server.storage.errors import ConflictError, NotFoundError
from dure.server.storage.migrate import upgrade
from dure.server.storage.registry import SqlRegistry

NOW = EXAMPLE_NOW
CONSORTIUM = "urn:dure:consortium:robotics-coop"


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SiteRegistry]:
    if request.param == "memory":
        yield MemoryRegistry()
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'coordinator.db'}"
        upgrade(url)
        db = Database.from_url(url)
        yield SqlRegistry(db)
        db.close()
        return
    with postgres_schema() as url:
        upgrade(url)
        db = Database.from_url(url)
        yield SqlRegistry(db)
        db.close()


def test_a_revoked_policy_registered_again_is_refused_and_stays_revoked(
    registry: SiteRegistry,
) -> None:
    party = make_party("factory-a")
    registry.register_site(party.identity, NOW)
    registered = registry.register_policy(party.policy, NOW)
    registry.revoke(party.revocation("exclude-future"), NOW)
    with pytest.raises(ConflictError, match="already registered") as caught:
        registry.register_policy(party.policy, NOW)
    assert CATALOG[caught.value.code].http_status == 409
    policy = registry.site("factory-a").policy
    assert policy is not None and policy.policy_id == registered.policy_id and policy.revoked
    decisions = admit(example_job(dp=False), registry.sites(), consortium=CONSORTIUM, now=NOW)
    assert [d.admitted for d in decisions] == [False]


def test_a_policy_is_registered_once_and_revoked_once(registry: SiteRegistry) -> None:
    party = make_party("factory-a")
    registry.register_site(party.identity, NOW)
    registry.register_policy(party.policy, NOW)
    with pytest.raises(ConflictError, match="already registered"):
        registry.register_policy(party.policy, NOW)
    registry.revoke(party.revocation(), NOW)
    with pytest.raises(ConflictError, match="already revoked"):
        registry.revoke(party.revocation(), NOW)


def test_unknown_sites_names_and_keys_are_refused_alike(registry: SiteRegistry) -> None:
    party, impostor = make_party("factory-a"), make_party("factory-a")
    with pytest.raises(NotFoundError):
        registry.register_policy(party.policy, NOW)
    with pytest.raises(NotFoundError):
        registry.site("factory-x")
    registry.register_site(party.identity, NOW)
    registry.register_site(party.identity, NOW)  # re-registering with the same key is fine
    with pytest.raises(ConflictError):  # the name keeps its key
        registry.register_site(impostor.identity, NOW)
    supernode = SiteIdentity.from_canonical_bytes(party.identity.payload).supernode_key
    other = SiteIdentity.create("factory-z", party.key, supernode)
    with pytest.raises(ConflictError):  # the key names one site
        registry.register_site(sign_site_identity(other, party.key), NOW)
    assert [s.name for s in registry.sites()] == ["factory-a"]


def test_only_the_current_policy_can_be_revoked(registry: SiteRegistry) -> None:
    a, b = make_party("factory-a"), make_party("factory-b")
    registry.register_site(a.identity, NOW)
    with pytest.raises(ConflictError, match="not the current policy"):
        registry.revoke(a.revocation(), NOW)  # no policy yet
    registry.register_policy(a.policy, NOW)
    registry.register_site(b.identity, NOW)
    registry.register_policy(b.policy, NOW)
    with pytest.raises(ConflictError, match="not the current policy"):
        registry.revoke(a.revocation(policy=b.policy), NOW)
    assert not any(s.policy is not None and s.policy.revoked for s in registry.sites())
