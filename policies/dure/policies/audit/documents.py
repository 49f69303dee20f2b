"""The signed documents an auditor checks the ledger against, and how each is trusted.

The ledger holds only ids.  To check that a policy allowed a job, the auditor
needs the signed documents themselves, which it obtains elsewhere (the
coordinator's API, the factories, an export) and therefore trusts only after
checking them against the ledger:

- a site's key: from its self-signed identity document, whose id must be the
  ``identity_id`` the ``site_registered`` entry recorded and whose key id the
  entry's ``signing_key_id`` (or from a key the auditor pinned for the site,
  with the same key id);
- a policy: a DSSE envelope that verifies with that site key, whose payload
  hashes to the cited ``policy_id`` and whose ``assigner`` is the site;
- a job: a DSSE envelope that verifies with a consortium operator key the
  auditor pinned, whose payload hashes to the ``job_digest`` and whose job id,
  purpose and signer match the ``job_signed`` entry.

Each lookup returns the parsed document, or a :class:`DocumentProblem` that is
either *missing* (nothing to check with: the check is unverifiable) or
*invalid* (the document contradicts the ledger: a violation).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from dure.policies.dsse import PAYLOAD_TYPES, Envelope
from dure.policies.entries import JobSigned
from dure.policies.errors import DureError
from dure.policies.identity import open_site_identity
from dure.policies.job import JobManifest
from dure.policies.keys import VerifyKey
from dure.policies.policy import UsagePolicy
from dure.policies.signed import document_id, open_document

__all__ = ["DocumentProblem", "DocumentSource", "open_job", "open_policy", "site_key"]

_KINDS = {payload_type: kind for kind, payload_type in PAYLOAD_TYPES.items()}


def _frozen() -> Mapping[str, bytes]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class DocumentProblem:
    """Why a document could not be used: ``missing`` (unverifiable) or invalid (a violation)."""

    message: str
    missing: bool


@dataclass(frozen=True)
class DocumentSource:
    """Signed documents (DSSE envelope JSON bytes) by the id the ledger cites, and pinned keys.

    Parameters
    ----------
    policies
        ``policy_id`` -> signed policy envelope.
    jobs
        ``job_digest`` -> signed job envelope.
    identities
        ``identity_id`` -> signed site identity envelope.
    site_keys
        Site URN -> a key the auditor pinned for that site.
    operator_keys
        Key id -> a consortium operator key the auditor pinned (jobs verify only
        with these).
    """

    policies: Mapping[str, bytes] = field(default_factory=_frozen)
    jobs: Mapping[str, bytes] = field(default_factory=_frozen)
    identities: Mapping[str, bytes] = field(default_factory=_frozen)
    site_keys: Mapping[str, VerifyKey] = field(default_factory=dict)
    operator_keys: Mapping[str, VerifyKey] = field(default_factory=dict)

    @classmethod
    def from_envelopes(
        cls,
        envelopes: Iterable[bytes],
        *,
        site_keys: Mapping[str, VerifyKey] | None = None,
        operator_keys: Iterable[VerifyKey] = (),
    ) -> DocumentSource:
        """Sort envelopes into policies, jobs and identities, keyed by their payload's id.

        Envelopes of other kinds (revocations, claims) are ignored.

        Raises
        ------
        AuditError
            If one item is not a DSSE envelope.
        """
        from dure.policies.audit.errors import AuditError

        found: dict[str, dict[str, bytes]] = {"policy": {}, "job": {}, "site-identity": {}}
        for number, data in enumerate(envelopes):
            try:
                envelope = Envelope.from_json(data)
            except DureError as exc:
                raise AuditError(f"document {number}: not a DSSE envelope: {exc.message}") from exc
            kind = _KINDS.get(envelope.payload_type, "")
            if kind in found:
                found[kind][document_id(envelope.payload)] = data
        return cls(
            policies=MappingProxyType(found["policy"]),
            jobs=MappingProxyType(found["job"]),
            identities=MappingProxyType(found["site-identity"]),
            site_keys=dict(site_keys or {}),
            operator_keys={key.key_id: key for key in operator_keys},
        )

    @property
    def empty(self) -> bool:
        """Whether no document and no key was supplied."""
        return not (
            self.policies or self.jobs or self.identities or self.site_keys or self.operator_keys
        )


def site_key(
    source: DocumentSource, site: str, identity_id: str, signing_key_id: str
) -> VerifyKey | DocumentProblem:
    """Return the Ed25519 key ``site`` registered with, checked against its ledger entry."""
    pinned = source.site_keys.get(site)
    if pinned is not None:
        if pinned.key_id != signing_key_id:
            return DocumentProblem(
                f"the key pinned for {site} ({pinned.key_id[:16]}…) is not the registered "
                f"key {signing_key_id[:16]}…",
                missing=False,
            )
        return pinned
    data = source.identities.get(identity_id)
    if data is None:
        return DocumentProblem(f"no identity document {identity_id[:16]}… for {site}", True)
    try:
        envelope = Envelope.from_json(data)
        identity = open_site_identity(envelope)
    except DureError as exc:
        return DocumentProblem(f"identity {identity_id[:16]}… of {site}: {exc.message}", False)
    problem = _identity_problem(identity.document_id(), identity_id, identity.site, site)
    if problem is None and identity.verify_key.key_id != signing_key_id:
        problem = f"declares key {identity.verify_key.key_id[:16]}…, not {signing_key_id[:16]}…"
    if problem is not None:
        return DocumentProblem(f"identity {identity_id[:16]}… of {site}: {problem}", False)
    return identity.verify_key


def _identity_problem(actual_id: str, cited_id: str, name: str, site: str) -> str | None:
    if actual_id != cited_id:
        return f"its payload hashes to {actual_id[:16]}…, not the ledgered id"
    if f"urn:dure:site:{name}" != site:
        return f"it names site {name!r}"
    return None


def open_policy(
    source: DocumentSource, policy_id: str, site: str, key: VerifyKey | DocumentProblem
) -> UsagePolicy | DocumentProblem:
    """Return ``site``'s policy ``policy_id``, verified with the site's registered ``key``."""
    data = source.policies.get(policy_id)
    if data is None:
        return DocumentProblem(f"no signed policy {policy_id[:16]}…", missing=True)
    if isinstance(key, DocumentProblem):
        # The key's own problem is reported where the site registered; here it only
        # means the policy cannot be checked.
        return DocumentProblem(f"cannot verify policy {policy_id[:16]}…: {key.message}", True)
    try:
        opened = open_document(Envelope.from_json(data), "policy", UsagePolicy, {key.key_id: key})
    except DureError as exc:
        return DocumentProblem(f"policy {policy_id[:16]}… of {site}: {exc.message}", False)
    if opened.document_id != policy_id:
        return DocumentProblem(
            f"the signed policy hashes to {opened.document_id[:16]}…, not {policy_id[:16]}…", False
        )
    if opened.document.site != site:
        return DocumentProblem(
            f"policy {policy_id[:16]}… is assigned by {opened.document.site}, not {site}", False
        )
    return opened.document


def open_job(source: DocumentSource, entry: JobSigned) -> JobManifest | DocumentProblem:
    """Return the job manifest of ``entry``, verified with a pinned operator key."""
    data = source.jobs.get(entry.job_digest)
    if data is None:
        return DocumentProblem(f"no signed job {entry.job_digest[:16]}… ({entry.job_id})", True)
    if not source.operator_keys:
        return DocumentProblem("no consortium operator key is pinned to verify jobs", True)
    try:
        opened = open_document(Envelope.from_json(data), "job", JobManifest, source.operator_keys)
    except DureError as exc:
        return DocumentProblem(f"job {entry.job_id}: {exc.message}", missing=False)
    job = opened.document
    problems: list[str] = []
    if opened.document_id != entry.job_digest:
        problems.append(f"hashes to {opened.document_id[:16]}…, not {entry.job_digest[:16]}…")
    if job.job_id != entry.job_id or job.purpose != entry.purpose:
        problems.append(f"is job {job.job_id} for {job.purpose}, not {entry.purpose}")
    if opened.signer.key_id != entry.operator_key_id:
        problems.append(f"is signed by {opened.signer.key_id[:16]}…, not the ledgered operator")
    if problems:
        return DocumentProblem(f"the signed job {entry.job_id} " + "; ".join(problems), False)
    return job
