"""Response bodies of the API (``XPublic`` models): identifiers, digests, signed documents.

These are the API's own shapes, apart from the registry's tables and the
kernel's documents.  They hold ids, digests, times, signed policy and job
documents (metadata a consortium shares) and ledger proofs; never raw data.
Hashes and leaf bytes are base64, ids and digests lowercase hex, times
``YYYY-MM-DDTHH:MM:SSZ``, decimals (ε) strings.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

__all__ = [
    "AuditorPublic",
    "ConsistencyProofPublic",
    "ContributionPublic",
    "EntriesPublic",
    "EntryPublic",
    "EnvelopePublic",
    "InclusionProofPublic",
    "JobPublic",
    "LedgerRecordPublic",
    "LineagePublic",
    "MemberPublic",
    "ModelNodePublic",
    "ModelPublic",
    "PolicyPublic",
    "PolicyRefPublic",
    "Problem",
    "ReceiptPublic",
    "ReleasePublic",
    "RetrainPublic",
    "RevocationPublic",
    "RoundPublic",
    "SitePublic",
    "SiteRegistration",
    "TokenPublic",
    "UsagePublic",
    "UsageRecordPublic",
]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Problem(_Out):
    """An error: the catalog's code and title, what went wrong, how to fix it."""

    code: str
    title: str
    detail: str
    hint: str
    reasons: list[str] = []


class EnvelopePublic(_Out):
    """A DSSE envelope exactly as registered (verify it yourself with the signer's key)."""

    payloadType: str  # noqa: N815 (DSSE field name)
    payload: str
    signatures: list[dict[str, str]]


class ReceiptPublic(_Out):
    """Proof that a ledger entry is in the log a signed checkpoint commits to."""

    index: int
    size: int
    hashes: list[str]
    checkpoint: str


class LedgerRecordPublic(_Out):
    """A ledger entry the request appended: index, kind, exact leaf bytes, receipt."""

    index: int
    kind: str
    entry: str
    receipt: ReceiptPublic


class MemberPublic(_Out):
    """Who the caller is to the coordinator."""

    key_id: str
    role: Literal["operator", "site", "auditor"]
    site: str | None
    audits: list[str]


class TokenPublic(_Out):
    """A read token (``Authorization: Bearer <token>``) and its expiry."""

    token: str
    expires: str
    member: MemberPublic


class SitePublic(_Out):
    """A registered site and its current policy."""

    name: str
    urn: str
    identity_id: str
    signing_key_id: str
    supernode_key_sha256: str
    policy_id: str | None
    revoked: bool


class SiteRegistration(_Out):
    """The registered site and the ledger entry recording it."""

    site: SitePublic
    ledger: LedgerRecordPublic


class PolicyPublic(_Out):
    """A registered usage policy, its status and the signed document."""

    policy_id: str
    site: str
    uid: str
    issued: str
    expires: str
    on_revocation: str
    current: bool
    revoked: bool
    revoked_at: str | None
    revocation_id: str | None
    revocation_mode: str | None
    registered_at: str
    document: dict[str, Any]
    envelope: EnvelopePublic


class PolicyRefPublic(_Out):
    """A site and the policy its data was used under."""

    site: str
    policy_id: str | None


class JobPublic(_Out):
    """A job the operator signed, and the signed manifest."""

    job_id: str
    job_digest: str
    purpose: str
    consortium: str
    rounds: int
    recipients: list[str]
    issued: str
    expires: str
    operator_key_id: str
    registered_at: str
    document: dict[str, Any]
    envelope: EnvelopePublic


class RoundPublic(_Out):
    """One round: what the ledger shows and the status the federation reported."""

    job_id: str
    round: int
    status: Literal["open", "committed", "aborted", "stopped"]
    sites: list[str]
    parent_model: str | None
    accepted: list[str]
    rejected: dict[str, list[str]]
    model_digest: str | None
    epsilon_spent: str | None
    reason: str | None
    opened_index: int | None


class ContributionPublic(_Out):
    """One site's data in one aggregate."""

    site: str
    policy_id: str | None
    index: int | None
    examples: int | None


class ModelNodePublic(_Out):
    """A model an aggregate committed, with its parent and contributions."""

    model_digest: str
    index: int
    time: str
    job_id: str
    round: int
    parent_model: str | None
    contributions: list[ContributionPublic]
    epsilon_spent: str | None


class ModelPublic(_Out):
    """A committed model and where it was released."""

    model: ModelNodePublic
    released_to: list[str]


class RetrainPublic(_Out):
    """A retrain-without request: rebuild ``model_digest`` from ``parent_model``, minus ``site``."""

    id: int
    model_digest: str
    site: str
    parent_model: str | None
    replaces: list[str]
    requested_by: str
    requested: str


class LineagePublic(_Out):
    """Every site, policy, round and parent model behind a model, transitively."""

    model: str
    sites: list[str]
    policies: list[PolicyRefPublic]
    rounds: list[ModelNodePublic]
    parents: list[str]
    base_model: str | None
    released_to: list[str]
    retrains: list[RetrainPublic]


class UsageRecordPublic(_Out):
    """One aggregate a site's data entered."""

    index: int
    time: str
    job_id: str
    round: int
    policy_id: str | None
    model_digest: str
    epsilon_spent: str | None
    examples: int | None


class UsagePublic(_Out):
    """Where a site's data went: jobs, rounds, models, ε per job and per policy."""

    site: str
    jobs: list[str]
    records: list[UsageRecordPublic]
    models: list[str]
    epsilon_by_job: dict[str, str]
    epsilon_by_policy: dict[str, str]
    epsilon_total: str


class RevocationPublic(_Out):
    """A revocation: the policy, its effective mode, the models holding the site's data."""

    index: int
    site: str
    policy_id: str
    revocation_id: str
    mode: str
    affected_models: list[str]
    retrain_from: dict[str, str | None]
    ledger: LedgerRecordPublic | None


class ReleasePublic(_Out):
    """A model released to recipients every contributor's policy allows."""

    model_digest: str
    recipients: list[str]
    checked: list[PolicyRefPublic]
    ledger: LedgerRecordPublic


class AuditorPublic(_Out):
    """An auditor a site named."""

    site: str
    name: str
    key_id: str
    registered: str


class EntryPublic(_Out):
    """One ledger entry: its index and the base64 of its exact leaf bytes."""

    index: int
    entry: str


class EntriesPublic(_Out):
    """Entries ``start`` (inclusive) to ``end`` (exclusive)."""

    entries: list[EntryPublic]


class InclusionProofPublic(_Out):
    """RFC 9162 inclusion proof of entry ``index`` in the tree of ``size`` (base64 hashes)."""

    index: int
    size: int
    hashes: list[str]


class ConsistencyProofPublic(_Out):
    """RFC 9162 consistency proof from size ``first`` to ``second`` (base64 hashes)."""

    first: int
    second: int
    hashes: list[str]
