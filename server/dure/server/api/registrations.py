"""What the registration routes do: verify, check the caller's right, register, ledger.

Each write opens the signed document from the exact body bytes with the
kernel (signature over the received payload first), checks that the
authenticated member may register it, stores it through the registry and
appends the ledger entry in the same SQL transaction (both or neither), and
returns the entry with its receipt (an inclusion proof against a freshly signed
checkpoint).  Who may do what:

=========================  ==============================================
write                      allowed to
=========================  ==============================================
site identity              the operator; the site itself when re-registering
                           (or first registering, with ``open_registration``)
policy, revocation         the site the document names (or the operator, relaying)
job                        the operator (the manifest must be signed by a pinned
                           operator key)
auditor                    the site itself
=========================  ==============================================
"""

from __future__ import annotations

from dure.policies.dsse import Envelope
from dure.policies.encoding import b64decode, b64encode
from dure.policies.entries import LedgerEntry
from dure.policies.errors import DureError
from dure.policies.identity import SiteIdentity
from dure.policies.job import JobManifest
from dure.policies.keys import VerifyKey
from dure.policies.literals import format_timestamp, party_name
from dure.policies.policy import UsagePolicy
from dure.policies.revocation import Revocation
from dure.server.api.auth import Member
from dure.server.api.errors import ForbiddenError, RequestError
from dure.server.api.inputs import AuditorCreate
from dure.server.api.outputs import (
    AuditorPublic,
    EnvelopePublic,
    JobPublic,
    LedgerRecordPublic,
    PolicyPublic,
    ReceiptPublic,
    RevocationPublic,
    SitePublic,
    SiteRegistration,
)
from dure.server.api.services import Services
from dure.server.federation.aggregation import check_job_supported
from dure.server.federation.registry import RegisteredSite, policy_expiry, supernode_key_digest
from dure.server.storage.jobs import JobRecord
from dure.server.storage.registry import PolicyRecord

__all__ = [
    "add_auditor",
    "envelope_public",
    "job_public",
    "ledger_receipt",
    "ledger_record",
    "policy_public",
    "register_job",
    "register_policy",
    "register_site",
    "revoke_policy",
    "site_public",
]


def register_site(services: Services, body: bytes, member: Member) -> SiteRegistration:
    """Register (or re-register) the site of a self-signed identity."""
    envelope = Envelope.from_json(body)
    claimed = SiteIdentity.from_canonical_bytes(envelope.payload)
    own_key = member.key_id == claimed.verify_key.key_id
    if not (member.operator or (own_key and (member.site or services.settings.open_registration))):
        raise ForbiddenError(
            f"only the operator registers sites; {member.role} {member.key_id[:16]}… may not "
            f"register {claimed.site!r}"
        )
    done = services.registry.register_site_ledgered(envelope, services.clock())
    record = ledger_receipt(services, done.entry, done.index)
    return SiteRegistration(site=site_public(services.registry.site(claimed.site)), ledger=record)


def register_policy(services: Services, body: bytes, member: Member) -> PolicyPublic:
    """Register a site's signed usage policy as its current policy."""
    envelope = Envelope.from_json(body)
    site = party_name(UsagePolicy.from_canonical_bytes(envelope.payload, source="policy").site)
    _own(member, site, "register a policy of")
    done = services.registry.register_policy_ledgered(envelope, services.clock())
    ledger_receipt(services, done.entry, done.index)
    return policy_public(services.registry.policy(done.entry.policy_id))


def register_job(services: Services, body: bytes, member: Member) -> JobPublic:
    """Register a job manifest the operator signed."""
    if not member.operator:
        raise ForbiddenError("only the consortium operator registers jobs")
    envelope = Envelope.from_json(body)
    # What this coordinator cannot run is refused before anything is stored or ledgered.
    check_job_supported(JobManifest.from_canonical_bytes(envelope.payload, source="job"))
    record, entry, index = services.jobs.register_ledgered(envelope, services.clock())
    ledger_receipt(services, entry, index)
    return job_public(record)


def revoke_policy(services: Services, body: bytes, member: Member) -> RevocationPublic:
    """Apply a site's signed revocation: ledger it and list the models holding the data.

    From the moment it is stored the registry marks the policy revoked, so the
    federation's next admission or re-admission refuses the site.
    """
    envelope = Envelope.from_json(body)
    claimed = Revocation.from_canonical_bytes(envelope.payload, source="revocation")
    _own(member, party_name(claimed.site), "revoke a policy of")
    done = services.registry.revoke_ledgered(envelope, services.clock())
    entry = done.entry
    record = ledger_receipt(services, entry, done.index)
    impact = services.view.current().graph.revocation_impact(entry.site, entry.policy_id)
    return RevocationPublic(
        index=record.index,
        site=entry.site,
        policy_id=entry.policy_id,
        revocation_id=entry.revocation_id,
        mode=entry.mode,
        affected_models=list(impact.affected),
        retrain_from=dict(impact.retrain_from),
        ledger=record,
    )


def add_auditor(
    services: Services, site: str, body: AuditorCreate, member: Member
) -> AuditorPublic:
    """Let an auditor's key read ``site``'s usage report."""
    services.registry.site(site)
    if member.site != site:
        raise ForbiddenError(f"only site {site!r} itself names its auditors")
    try:
        key = VerifyKey(b64decode(body.key))
    except DureError as exc:
        raise RequestError(f"auditor key: {exc.message}") from exc
    record = services.auditors.add(site, body.name, key, services.clock())
    return AuditorPublic(site=site, name=body.name, key_id=key.key_id, registered=record.registered)


def ledger_record(services: Services, entry: LedgerEntry) -> LedgerRecordPublic:
    """Append ``entry`` and return it with a receipt against a fresh checkpoint."""
    return ledger_receipt(services, entry, services.ledger.append(entry))


def ledger_receipt(services: Services, entry: LedgerEntry, index: int) -> LedgerRecordPublic:
    """Return ``entry``, already appended at ``index``, with a receipt against a checkpoint."""
    receipt = services.ledger.receipt(index)
    return LedgerRecordPublic(
        index=index,
        kind=entry.kind,
        entry=b64encode(entry.to_bytes()),
        receipt=ReceiptPublic.model_validate(receipt.model_dump()),
    )


def site_public(site: RegisteredSite) -> SitePublic:
    """The API view of a registered site."""
    policy = site.policy
    return SitePublic(
        name=site.name,
        urn=site.urn,
        identity_id=site.identity_id,
        signing_key_id=site.verify_key.key_id,
        supernode_key_sha256=supernode_key_digest(site.identity.supernode_key),
        policy_id=policy.policy_id if policy else None,
        revoked=bool(policy and policy.revoked),
    )


def policy_public(record: PolicyRecord) -> PolicyPublic:
    """The API view of a registered policy."""
    registered = record.registered
    policy = registered.policy
    revocation = registered.revocation
    return PolicyPublic(
        policy_id=registered.policy_id,
        site=record.site,
        uid=policy.uid,
        issued=format_timestamp(policy.issued),
        expires=format_timestamp(policy_expiry(policy)),
        on_revocation=policy.on_revocation,
        current=record.current,
        revoked=registered.revoked,
        revoked_at=record.revoked_at,
        revocation_id=revocation.document_id if revocation else None,
        revocation_mode=registered.mode,
        registered_at=record.registered_at,
        document=dict(policy.to_json_value()),
        envelope=envelope_public(registered.opened.envelope),
    )


def job_public(record: JobRecord) -> JobPublic:
    """The API view of a registered job."""
    job = record.job
    return JobPublic(
        job_id=job.job_id,
        job_digest=record.opened.document_id,
        purpose=job.purpose,
        consortium=job.consortium,
        rounds=job.rounds,
        recipients=list(job.recipients),
        issued=format_timestamp(job.issued),
        expires=format_timestamp(job.expires),
        operator_key_id=record.opened.signer.key_id,
        registered_at=record.registered_at,
        document=dict(job.to_json_value()),
        envelope=envelope_public(record.opened.envelope),
    )


def envelope_public(envelope: Envelope) -> EnvelopePublic:
    """A DSSE envelope as JSON fields."""
    return EnvelopePublic(
        payloadType=envelope.payload_type,
        payload=b64encode(envelope.payload),
        signatures=[{"keyid": s.keyid, "sig": b64encode(s.sig)} for s in envelope.signatures],
    )


def _own(member: Member, site: str, action: str) -> None:
    if not (member.operator or member.site == site):
        raise ForbiddenError(
            f"{member.role} {member.key_id[:16]}… may not {action} site {site!r}",
            hint="Sign the request with the site's own key.",
        )
