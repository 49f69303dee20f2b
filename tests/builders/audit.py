"""Audit test material: a consortium with real signed documents, and ledger histories.

:class:`AuditWorld` holds the keys and the signed documents (site identities,
the kernel's example policies, example jobs signed by the consortium operator);
:class:`History` appends the entries a coordinator would ledger for them, with
a clock that starts at the kernel's ``EXAMPLE_NOW`` and ticks a minute per
entry.  Its methods can also misbehave on request (a contribution under any
policy id, a site that was never admitted…), so the tests can build the
violations the auditor must catch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dure.policies.audit.documents import DocumentSource
from dure.policies.dsse import Envelope
from dure.policies.encoding import b64encode, sha256, to_hex
from dure.policies.entries import (
    AggregateCommitted,
    ContributionAccepted,
    ContributionRejected,
    JobSigned,
    LedgerEntry,
    ModelReleased,
    PolicyRegistered,
    PolicyRevoked,
    RoundOpened,
    SiteAdmitted,
    SiteRefused,
    SiteRegistered,
)
from dure.policies.examples import EXAMPLE_ISSUED, EXAMPLE_NOW, example_job, example_policy
from dure.policies.identity import SiteIdentity, sign_site_identity
from dure.policies.job import JobManifest
from dure.policies.keys import SigningKey
from dure.policies.literals import format_timestamp
from dure.policies.revocation import Revocation
from dure.policies.signed import document_id, sign_document

__all__ = ["AuditWorld", "History", "Party", "digest_of", "site_urn"]

POLICY_EXPIRES = EXAMPLE_ISSUED + timedelta(days=365)


def digest_of(text: str) -> str:
    """A deterministic 64-hex digest named by ``text``."""
    return to_hex(sha256(text.encode()))


def site_urn(name: str) -> str:
    return f"urn:dure:site:{name}"


@dataclass
class Party:
    """A site: its key, its signed identity, its signed policies."""

    name: str
    key: SigningKey
    identity: Envelope
    identity_id: str

    @property
    def urn(self) -> str:
        return site_urn(self.name)


def _supernode_line(seed: int) -> str:
    key = ec.derive_private_key(seed + 1, ec.SECP384R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return public.decode("ascii")


@dataclass
class AuditWorld:
    """Keys and signed documents of a small consortium."""

    operator: SigningKey = field(default_factory=lambda: SigningKey.from_seed(b"\x01" * 32))
    sites: dict[str, Party] = field(default_factory=dict)
    policies: dict[str, Envelope] = field(default_factory=dict)
    jobs: dict[str, Envelope] = field(default_factory=dict)
    revocations: dict[str, Envelope] = field(default_factory=dict)

    def site(self, name: str) -> Party:
        if name not in self.sites:
            number = len(self.sites) + 2
            key = SigningKey.from_seed(bytes([number]) * 32)
            identity = SiteIdentity(
                site=name,
                signing_key=b64encode(key.public.raw),
                supernode_key=_supernode_line(number),
                issued=format_timestamp(EXAMPLE_ISSUED),
            )
            envelope = sign_site_identity(identity, key)
            self.sites[name] = Party(name, key, envelope, identity.document_id())
        return self.sites[name]

    def policy(self, name: str, **options: Any) -> str:
        """Sign the example policy of site ``name`` (with ``options``); return its id."""
        envelope = sign_document("policy", example_policy(name, **options), self.site(name).key)
        policy_id = document_id(envelope.payload)
        self.policies[policy_id] = envelope
        return policy_id

    def job(self, key: SigningKey | None = None, **options: Any) -> tuple[JobManifest, str]:
        """Sign the example job (with ``options``); return it and its digest."""
        job = example_job(**options)
        envelope = sign_document("job", job, key or self.operator)
        digest = document_id(envelope.payload)
        self.jobs[digest] = envelope
        return job, digest

    def revocation(self, name: str, policy_id: str, mode: str, issued: datetime) -> str:
        document = Revocation(
            type="dure/revocation/v1",
            site=site_urn(name),
            policy_id=policy_id,
            issued=issued,
            mode=mode,
            reason="withdrawn in a test",
        )
        envelope = sign_document("revocation", document, self.site(name).key)
        revocation_id = document_id(envelope.payload)
        self.revocations[revocation_id] = envelope
        return revocation_id

    def envelopes(self) -> list[bytes]:
        """Every signed document as envelope JSON bytes."""
        groups = (
            [p.identity for p in self.sites.values()],
            self.policies.values(),
            self.jobs.values(),
            self.revocations.values(),
        )
        return [envelope.to_json() for group in groups for envelope in group]

    def documents(self, *, operator: bool = True) -> DocumentSource:
        """The documents as an auditor would collect them (operator key pinned if asked)."""
        keys = (self.operator.public,) if operator else ()
        return DocumentSource.from_envelopes(self.envelopes(), operator_keys=keys)


@dataclass
class History:
    """Entries a coordinator would ledger, built step by step (see the module docstring)."""

    world: AuditWorld = field(default_factory=AuditWorld)
    entries: list[LedgerEntry] = field(default_factory=list)
    start: datetime = EXAMPLE_NOW
    jobs: dict[str, JobManifest] = field(default_factory=dict)

    def now(self) -> datetime:
        return self.start + timedelta(minutes=len(self.entries))

    def add(self, entry: LedgerEntry) -> int:
        self.entries.append(entry)
        return len(self.entries) - 1

    def pairs(self) -> list[tuple[int, LedgerEntry]]:
        return list(enumerate(self.entries))

    # --- registrations --------------------------------------------------------------

    def register_site(self, name: str) -> int:
        party = self.world.site(name)
        return self.add(
            SiteRegistered(
                time=self.now(),
                site=party.urn,
                identity_id=party.identity_id,
                signing_key_id=party.key.key_id,
                supernode_key_sha256=digest_of(f"supernode {name}"),
            )
        )

    def register_policy(
        self, name: str, *, expires: datetime = POLICY_EXPIRES, **options: Any
    ) -> str:
        policy_id = self.world.policy(name, **options)
        self.add(
            PolicyRegistered(
                time=self.now(), site=site_urn(name), policy_id=policy_id, expires=expires
            )
        )
        return policy_id

    def join(self, *names: str, **options: Any) -> dict[str, str]:
        """Register each site and its example policy; return site URN -> policy id."""
        policies = {}
        for name in names:
            self.register_site(name)
            policies[site_urn(name)] = self.register_policy(name, **options)
        return policies

    def revoke(self, name: str, policy_id: str, mode: str = "exclude-future") -> int:
        revocation_id = self.world.revocation(name, policy_id, mode, self.now())
        return self.add(
            PolicyRevoked(
                time=self.now(),
                site=site_urn(name),
                policy_id=policy_id,
                revocation_id=revocation_id,
                mode=mode,
            )
        )

    # --- jobs, rounds, aggregates ---------------------------------------------------

    def sign_job(self, key: SigningKey | None = None, **options: Any) -> str:
        job, digest = self.world.job(key, **options)
        self.jobs[job.job_id] = job
        self.add(
            JobSigned(
                time=self.now(),
                job_id=job.job_id,
                job_digest=digest,
                operator_key_id=(key or self.world.operator).key_id,
                purpose=job.purpose,
            )
        )
        return job.job_id

    def admit(self, job_id: str, site: str, policy_id: str) -> int:
        return self.add(
            SiteAdmitted(time=self.now(), job_id=job_id, site=site, policy_id=policy_id)
        )

    def refuse(self, job_id: str, site: str, policy_id: str | None) -> int:
        reasons = ("[constraint.purpose] refused in a test",)
        return self.add(
            SiteRefused(
                time=self.now(), job_id=job_id, site=site, policy_id=policy_id, reasons=reasons
            )
        )

    def open_round(self, job_id: str, number: int, sites: list[str], parent: str | None) -> int:
        return self.add(
            RoundOpened(
                time=self.now(),
                job_id=job_id,
                round=number,
                sites=tuple(sites),
                parent_model=parent,
            )
        )

    def contribute(self, job_id: str, number: int, site: str, policy_id: str) -> int:
        return self.add(
            ContributionAccepted(
                time=self.now(),
                job_id=job_id,
                round=number,
                site=site,
                update_digest=digest_of(f"update {job_id} {number} {site}"),
                examples=100,
                episodes_root=digest_of(f"episodes {site}"),
                policy_id=policy_id,
                claim_id=digest_of(f"claim {job_id} {number} {site}"),
                secure=False,
            )
        )

    def reject(self, job_id: str, number: int, site: str) -> int:
        return self.add(
            ContributionRejected(
                time=self.now(), job_id=job_id, round=number, site=site, reasons=("not finite",)
            )
        )

    def aggregate(
        self,
        job_id: str,
        number: int,
        contributors: list[str],
        parent: str | None,
        epsilon: str | None,
    ) -> str:
        model = digest_of(f"model {job_id} {number} {len(self.entries)}")
        self.add(
            AggregateCommitted(
                time=self.now(),
                job_id=job_id,
                round=number,
                model_digest=model,
                parent_model=parent,
                contributors=tuple(contributors),
                epsilon_spent=epsilon,
                strategy="fedavg",
            )
        )
        return model

    def release(self, model: str, recipients: list[str]) -> int:
        return self.add(
            ModelReleased(time=self.now(), model_digest=model, recipients=tuple(recipients))
        )

    def run_job(
        self,
        policies: dict[str, str],
        *,
        rounds: int = 2,
        parent: str | None = None,
        task: str = "pick-place",
        **options: Any,
    ) -> str:
        """Sign a job, admit every site of ``policies``, play ``rounds``; return the model."""
        job_id = self.sign_job(task=task, rounds=rounds, **options)
        job = self.jobs[job_id]
        for site, policy_id in policies.items():
            self.admit(job_id, site, policy_id)
        sites, model = sorted(policies), parent
        for number in range(1, rounds + 1):
            self.open_round(job_id, number, sites, model)
            for site in sites:
                self.contribute(job_id, number, site, policies[site])
            epsilon = None
            if job.dp is not None:
                epsilon = f"{job.dp.epsilon_value * number / rounds:.2f}"
            model = self.aggregate(job_id, number, sites, model, epsilon)
        assert model is not None
        return model
