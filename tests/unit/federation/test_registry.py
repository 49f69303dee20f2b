"""The coordinator's registry: verified identities, policies, revocations and jobs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tests.builders.federation import supernode_key

from dure.policies.dsse import Envelope
from dure.policies.errors import SignatureError
from dure.policies.examples import EXAMPLE_ISSUED, EXAMPLE_NOW, example_job, example_policy
from dure.policies.identity import SiteIdentity, sign_site_identity
from dure.policies.keys import SigningKey
from dure.policies.revocation import Revocation
from dure.policies.signed import sign_document
from dure.server.federation.errors import RegistryError
from dure.server.federation.registry import (
    MemoryRegistry,
    job_signed_entry,
    open_job,
    policy_expiry,
    supernode_key_digest,
)


def _identity(name: str, key: SigningKey) -> Envelope:
    return sign_site_identity(SiteIdentity.create(name, key, supernode_key()[0]), key)


def _revocation(
    policy_id: str, site: str = "factory-a", mode: str = "retrain-without"
) -> Revocation:
    return Revocation.from_value(
        {
            "type": "dure/revocation/v1",
            "site": f"urn:dure:site:{site}",
            "policy_id": policy_id,
            "issued": "2026-11-20T00:00:00Z",
            "mode": mode,
            "reason": "consent withdrawn",
        }
    )


def test_a_site_its_policy_and_a_revocation_are_registered_and_ledgerable() -> None:
    key, registry = SigningKey.generate(), MemoryRegistry()
    entry = registry.register_site(_identity("factory-a", key), EXAMPLE_NOW)
    assert (entry.site, entry.signing_key_id) == ("urn:dure:site:factory-a", key.key_id)
    policy = sign_document("policy", example_policy("factory-a"), key)
    registered = registry.register_policy(policy, EXAMPLE_NOW)
    site = registry.site("factory-a")
    assert site.policy is not None and registered.policy_id == site.policy.policy_id
    assert registered.expires == datetime(2027, 11, 1, tzinfo=UTC)
    revoked = registry.revoke(
        sign_document("revocation", _revocation(registered.policy_id), key), EXAMPLE_NOW
    )
    assert revoked.mode == "exclude-future"  # the policy promised no more than that
    assert registry.site("factory-a").policy.revoked  # type: ignore[union-attr]


def test_a_policy_signed_by_another_key_is_refused() -> None:
    key, registry = SigningKey.generate(), MemoryRegistry()
    registry.register_site(_identity("factory-a", key), EXAMPLE_NOW)
    forged = sign_document("policy", example_policy("factory-a"), SigningKey.generate())
    with pytest.raises(SignatureError):
        registry.register_policy(forged, EXAMPLE_NOW)
    assert registry.site("factory-a").policy is None


def test_unknown_sites_and_foreign_revocations_are_refused() -> None:
    key, registry = SigningKey.generate(), MemoryRegistry()
    with pytest.raises(RegistryError, match="not registered"):
        registry.register_policy(
            sign_document("policy", example_policy("factory-a"), key), EXAMPLE_NOW
        )
    registry.register_site(_identity("factory-a", key), EXAMPLE_NOW)
    registry.register_policy(sign_document("policy", example_policy("factory-a"), key), EXAMPLE_NOW)
    with pytest.raises(RegistryError, match="not the current policy"):
        registry.revoke(sign_document("revocation", _revocation("ab" * 32), key), EXAMPLE_NOW)


def test_a_name_keeps_its_key() -> None:
    registry = MemoryRegistry()
    registry.register_site(_identity("factory-a", SigningKey.generate()), EXAMPLE_NOW)
    with pytest.raises(RegistryError, match="already registered"):
        registry.register_site(_identity("factory-a", SigningKey.generate()), EXAMPLE_NOW)


def test_jobs_open_only_with_a_pinned_operator_key() -> None:
    operator = SigningKey.generate()
    envelope = sign_document("job", example_job(), operator)
    job = open_job(envelope, {operator.key_id: operator.public})
    entry = job_signed_entry(job, EXAMPLE_NOW)
    assert (entry.job_digest, entry.operator_key_id) == (job.document_id, operator.key_id)
    rogue = SigningKey.generate()
    with pytest.raises(SignatureError):
        open_job(envelope, {rogue.key_id: rogue.public})


def test_policy_expiry_is_the_earliest_upper_bound_of_use() -> None:
    assert policy_expiry(example_policy("factory-a", issued=EXAMPLE_ISSUED)).year == 2027


def test_supernode_key_digest_is_one_per_key_whatever_the_spelling() -> None:
    line, pem = supernode_key()
    assert supernode_key_digest(line) == supernode_key_digest(pem)
    assert supernode_key_digest(line + " a comment") == supernode_key_digest(line)
    assert supernode_key_digest(supernode_key()[0]) != supernode_key_digest(line)
    with pytest.raises(RegistryError):
        supernode_key_digest(b"not a key")
