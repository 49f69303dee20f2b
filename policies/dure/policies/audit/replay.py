"""Replay verified ledger entries and check every invariant, entry by entry.

The auditor first checks that the entries are exactly those a signed checkpoint
commits to; :func:`replay` then reads them in order, keeps the state they
describe (sites, policies, jobs, admissions, rounds, models, ε spent) and
reports each invariant that fails at the exact entry where it fails:

- every ``statistics_shared`` names a site admitted to the job (and not refused
  since) under the very policy it was admitted with, registered by that site,
  unexpired at the entry's time and not revoked before it: statistics leave a
  factory only under a valid admission;
- every ``contribution_accepted`` cites a policy registered earlier by the same
  site, unexpired at the entry's time and not revoked before its round opened;
  the site was admitted to the job and not refused since, its round was opened
  and sampled it, and it contributed once; with the signed job, its ``secure``
  flag equals the job's ``aggregation.secure`` (under SecAgg+ the digest is the
  masked contribution's, never a plain update's);
- with the signed documents (:class:`~dure.policies.audit.documents.DocumentSource`),
  the kernel's :func:`~dure.policies.evaluation.evaluate` re-run on the signed
  policy and job at the entry's time allows the job (purpose, recipients,
  aggregation, DP, dates, rounds…);
- every ``aggregate_committed`` follows an opened round, starts from that
  round's model, lists only accepted contributors, and has at least
  ``max(job.min_contributors, min_contributors_required(policies))`` of them;
- the ε spent on each contributor's data never exceeds its policy's budget.
  SPEC: the composition of :func:`dure.policies.contribution.epsilon_spent_by`:
  an aggregate records its job's cumulative ε, so a site's total is the largest
  value of each job it contributed to, summed over jobs, across all its policies
  (the coordinator admits on the same total);
- a model is released only to parties every job in its lineage named.

Checks that need a document the auditor does not have are reported as
:class:`~dure.policies.audit.findings.Unverified` (a strict audit fails on them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from dure.policies.audit.checks import (
    budget_overrun,
    denial,
    job_epsilon_problem,
    minimum_shortfall,
    release_problem,
)
from dure.policies.audit.documents import (
    DocumentProblem,
    DocumentSource,
    open_job,
    open_policy,
    site_key,
)
from dure.policies.audit.errors import AuditError
from dure.policies.audit.findings import ReplayReport, Unverified, Violation
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
    StatisticsShared,
)
from dure.policies.job import JobManifest
from dure.policies.keys import VerifyKey
from dure.policies.literals import format_timestamp
from dure.policies.policy import UsagePolicy

__all__ = ["replay"]


@dataclass
class _Site:
    signing_key_id: str
    key: VerifyKey | DocumentProblem


@dataclass
class _Policy:
    index: int
    site: str
    expires: datetime
    document: UsagePolicy | DocumentProblem
    revoked_at: int | None = None


@dataclass
class _Job:
    entry: JobSigned
    document: JobManifest | DocumentProblem


@dataclass
class _Round:
    index: int
    sites: frozenset[str]
    parent_model: str | None
    contributions: dict[str, str] = field(default_factory=dict)  # site -> policy id
    aggregated: bool = False


def replay(
    entries: Iterable[tuple[int, LedgerEntry]],
    documents: DocumentSource | None = None,
    *,
    consortium: str | None = None,
) -> ReplayReport:
    """Replay ``(index, entry)`` pairs in ledger order and report every invariant that fails.

    Parameters
    ----------
    entries
        Verified entries with their ledger indices, strictly increasing.
    documents
        The signed documents and pinned keys to check policies and jobs with;
        without them those checks are reported as unverifiable.
    consortium
        The consortium the auditor belongs to; by default each job's own.

    Raises
    ------
    AuditError
        If the indices are not strictly increasing.
    """
    state = _Replay(documents or DocumentSource(), consortium)
    last = -1
    for index, entry in entries:
        if index <= last:
            raise AuditError(f"replay needs increasing ledger indices, got {index} after {last}")
        last = index
        state.apply(index, entry)
    return ReplayReport(last + 1, tuple(state.violations), tuple(state.unverified), state.checked)


class _Replay:
    def __init__(self, documents: DocumentSource, consortium: str | None) -> None:
        self.documents = documents
        self.consortium = consortium
        self.sites: dict[str, _Site] = {}
        self.policies: dict[str, _Policy] = {}
        self.jobs: dict[str, _Job] = {}
        self.decisions: dict[tuple[str, str], bool] = {}  # (job, site) -> admitted
        self.admitted_under: dict[tuple[str, str], str] = {}  # (job, site) -> policy id
        self.rounds: dict[tuple[str, int], _Round] = {}
        self.models: dict[str, frozenset[str]] = {}  # model -> jobs in its lineage
        self.spent: dict[str, dict[str, Decimal]] = {}  # site -> job -> cumulative ε
        self.violations: list[Violation] = []
        self.unverified: list[Unverified] = []
        self.checked = 0
        self._index, self._kind = 0, ""

    def apply(self, index: int, entry: LedgerEntry) -> None:
        self._index, self._kind = index, entry.kind
        handler = getattr(self, f"_{entry.kind}")
        handler(entry)

    def fail(self, code: str, message: str) -> None:
        self.violations.append(Violation(self._index, self._kind, code, message))

    def outcome(self, code: str, problem: str | None) -> None:
        """Record a document check: a violation with ``problem``, else one more check passed."""
        if problem is None:
            self.checked += 1
        else:
            self.fail(code, problem)

    def cannot(self, check: str, reason: str) -> None:
        self.unverified.append(Unverified(self._index, self._kind, check, reason))

    # --- registrations ----------------------------------------------------------------

    def _site_registered(self, e: SiteRegistered) -> None:
        known = self.sites.get(e.site)
        if known is not None and known.signing_key_id != e.signing_key_id:
            self.fail("site.key_changed", f"{e.site} was registered with another key before")
        key = site_key(self.documents, e.site, e.identity_id, e.signing_key_id)
        if isinstance(key, DocumentProblem) and not key.missing:
            self.fail("site.identity", key.message)
        self.sites[e.site] = _Site(e.signing_key_id, key)

    def _policy_registered(self, e: PolicyRegistered) -> None:
        site = self._site(e.site)
        known = self.policies.get(e.policy_id)
        if known is not None and known.site != e.site:
            self.fail("policy.conflict", f"policy {e.policy_id[:16]}… is {known.site}'s")
            return
        key = site.key if site else DocumentProblem(f"{e.site} is not registered", False)
        document = open_policy(self.documents, e.policy_id, e.site, key)
        if isinstance(document, DocumentProblem) and not document.missing and site:
            self.fail("policy.document", document.message)
        self.policies[e.policy_id] = _Policy(self._index, e.site, e.expires, document)

    def _policy_revoked(self, e: PolicyRevoked) -> None:
        policy = self._policy(e.policy_id, e.site)
        if policy is not None and policy.revoked_at is None:
            policy.revoked_at = self._index

    def _job_signed(self, e: JobSigned) -> None:
        known = self.jobs.get(e.job_id)
        if known is not None:
            if known.entry.job_digest != e.job_digest:
                self.fail("job.conflict", f"job {e.job_id} was signed before as another manifest")
            return
        document = open_job(self.documents, e)
        if isinstance(document, DocumentProblem) and not document.missing:
            self.fail("job.document", document.message)
        self.jobs[e.job_id] = _Job(e, document)

    # --- admission and rounds ---------------------------------------------------------

    def _site_admitted(self, e: SiteAdmitted) -> None:
        self._job(e.job_id)
        self._site(e.site)
        policy = self._policy(e.policy_id, e.site)
        problem = self._invalid(policy, e.time, self._index) if policy else None
        if problem:
            self.fail("admission.policy", f"{e.site} admitted to {e.job_id}: {problem[1]}")
        self.decisions[(e.job_id, e.site)] = True
        self.admitted_under[(e.job_id, e.site)] = e.policy_id

    def _statistics_shared(self, e: StatisticsShared) -> None:
        self._job(e.job_id)
        self._site(e.site)
        admitted = self.decisions.get((e.job_id, e.site))
        if not admitted:
            state = "was refused for" if admitted is False else "was never admitted to"
            self.fail(
                "statistics.not_admitted", f"{e.site} shared statistics but {state} {e.job_id}"
            )
        under = self.admitted_under.get((e.job_id, e.site))
        if admitted and under != e.policy_id:
            self.fail(
                "statistics.policy_mismatch",
                f"{e.site} shared statistics under policy {e.policy_id[:16]}…, "
                f"but was admitted to {e.job_id} under {str(under)[:16]}…",
            )
        policy = self._policy(e.policy_id, e.site)
        problem = self._invalid(policy, e.time, self._index) if policy else None
        if problem:
            code, why = problem
            self.fail(code, f"{e.site} shared statistics for {e.job_id}: {why}")

    def _site_refused(self, e: SiteRefused) -> None:
        self._job(e.job_id)
        self._site(e.site)
        self.decisions[(e.job_id, e.site)] = False

    def _round_opened(self, e: RoundOpened) -> None:
        self._job(e.job_id)
        if (e.job_id, e.round) in self.rounds:
            self.fail("round.duplicate", f"round {e.round} of {e.job_id} was opened before")
            return
        for site in e.sites:
            if not self.decisions.get((e.job_id, site), False):
                self.fail("round.site_not_admitted", f"{site} is not admitted to {e.job_id}")
        self.rounds[(e.job_id, e.round)] = _Round(self._index, frozenset(e.sites), e.parent_model)

    def _contribution_rejected(self, e: ContributionRejected) -> None:
        if (e.job_id, e.round) not in self.rounds:
            self.fail("round.not_opened", f"round {e.round} of {e.job_id} was never opened")

    def _contribution_accepted(self, e: ContributionAccepted) -> None:
        job = self._job(e.job_id)
        opened = self._contribution_round(e)
        self._admission(e.job_id, e.site)
        policy = self._policy(e.policy_id, e.site)
        if policy is None:
            return
        problem = self._invalid(policy, e.time, opened.index if opened else self._index)
        if problem:
            code, why = problem
            self.fail(code, f"{e.site} contributed to {e.job_id} round {e.round}: {why}")
        if job is not None:
            self._check_allowed(e, policy, job)
            self._check_secure(e, job)

    def _contribution_round(self, e: ContributionAccepted) -> _Round | None:
        opened = self.rounds.get((e.job_id, e.round))
        if opened is None:
            self.fail("round.not_opened", f"round {e.round} of {e.job_id} was never opened")
            return None
        if e.site not in opened.sites:
            self.fail("round.site_not_sampled", f"{e.site} was not sampled in round {e.round}")
        if e.site in opened.contributions:
            self.fail("contribution.duplicate", f"{e.site} already contributed to round {e.round}")
        else:
            opened.contributions[e.site] = e.policy_id
        return opened

    def _admission(self, job_id: str, site: str) -> None:
        admitted = self.decisions.get((job_id, site))
        if admitted is None:
            self.fail("admission.missing", f"{site} was never admitted to {job_id}")
        elif not admitted:
            self.fail("admission.refused", f"{site} was refused for {job_id}")

    def _check_allowed(self, e: ContributionAccepted, policy: _Policy, job: _Job) -> None:
        policy_doc = self._usable("policy.allows", policy.document)
        job_doc = self._usable("policy.allows", job.document) if policy_doc else None
        if isinstance(policy_doc, UsagePolicy) and isinstance(job_doc, JobManifest):
            spent = self._spent_elsewhere(e.site, e.job_id)
            self.outcome("policy.denied", denial(policy_doc, job_doc, e, spent, self.consortium))

    def _check_secure(self, e: ContributionAccepted, job: _Job) -> None:
        if not isinstance(job.document, JobManifest):
            return  # the document checks above already reported it unverifiable
        expected = job.document.aggregation.secure
        if e.secure != expected:
            self.fail(
                "contribution.secure_mismatch",
                f"{e.site}'s contribution records secure={str(e.secure).lower()}, "
                f"but job {e.job_id} signed aggregation.secure={str(expected).lower()}",
            )

    # --- aggregates and releases ------------------------------------------------------

    def _aggregate_committed(self, e: AggregateCommitted) -> None:
        job = self._job(e.job_id)
        opened = self._aggregate_round(e)
        if e.model_digest in self.models:
            self.fail("model.duplicate", f"model {e.model_digest[:16]}… was committed before")
        lineage = self.models.get(e.parent_model or "", frozenset())
        self.models.setdefault(e.model_digest, lineage | {e.job_id})
        for site in e.contributors:
            spent = self.spent.setdefault(site, {})
            if e.epsilon_spent is not None:
                value = Decimal(e.epsilon_spent)
                spent[e.job_id] = max(value, spent.get(e.job_id, value))
        if opened is None or job is None:
            return
        policies = {s: self.policies.get(p) for s, p in opened.contributions.items()}
        self._check_minimum(
            e, job, [p.document for s, p in policies.items() if p and s in e.contributors]
        )
        self._check_epsilon(e, job, policies)

    def _aggregate_round(self, e: AggregateCommitted) -> _Round | None:
        opened = self.rounds.get((e.job_id, e.round))
        if opened is None:
            self.fail("round.not_opened", f"round {e.round} of {e.job_id} was never opened")
            return None
        if opened.aggregated:
            self.fail("aggregate.duplicate", f"round {e.round} of {e.job_id} was aggregated before")
        opened.aggregated = True
        if opened.parent_model != e.parent_model:
            self.fail(
                "aggregate.parent_mismatch",
                f"parent {e.parent_model}, but round {e.round} started from {opened.parent_model}",
            )
        for site in e.contributors:
            if site not in opened.contributions:
                self.fail(
                    "aggregate.contributor_missing",
                    f"{site} has no accepted contribution to round {e.round} of {e.job_id}",
                )
        return opened

    def _check_minimum(
        self, e: AggregateCommitted, job: _Job, policies: list[UsagePolicy | DocumentProblem]
    ) -> None:
        check = "aggregate.min_contributors"
        if any(self._usable(check, d) is None for d in (job.document, *policies)):
            return
        assert isinstance(job.document, JobManifest)
        usable = [p for p in policies if isinstance(p, UsagePolicy)]
        self.outcome("aggregate.too_few_contributors", minimum_shortfall(job.document, usable, e))

    def _check_epsilon(
        self, e: AggregateCommitted, job: _Job, policies: dict[str, _Policy | None]
    ) -> None:
        problem = (
            job_epsilon_problem(job.document, e) if isinstance(job.document, JobManifest) else None
        )
        if problem is not None:
            self.fail(*problem)
        if e.epsilon_spent is None:
            return
        for site in e.contributors:
            policy = policies.get(site)
            document = self._usable("dp.budget", policy.document) if policy else None
            if isinstance(document, UsagePolicy):
                overrun = budget_overrun(document, site, self._total_spent(site))
                self.outcome("dp.budget_exceeded", overrun)

    def _model_released(self, e: ModelReleased) -> None:
        jobs = self.models.get(e.model_digest)
        if jobs is None:
            self.fail("model.unknown", f"model {e.model_digest[:16]}… was never committed")
            return
        for job_id in sorted(jobs):
            job_doc = self._usable("release.recipients", self.jobs[job_id].document)
            if isinstance(job_doc, JobManifest):
                self.outcome("release.recipient_not_allowed", release_problem(job_doc, e))

    # --- look-ups ---------------------------------------------------------------------

    def _site(self, site: str) -> _Site | None:
        known = self.sites.get(site)
        if known is None:
            self.fail("site.unregistered", f"{site} was never registered")
        return known

    def _job(self, job_id: str) -> _Job | None:
        known = self.jobs.get(job_id)
        if known is None:
            self.fail("job.unknown", f"job {job_id} was never signed")
        return known

    def _policy(self, policy_id: str, site: str) -> _Policy | None:
        known = self.policies.get(policy_id)
        if known is None:
            self.fail("policy.unregistered", f"policy {policy_id[:16]}… was never registered")
            return None
        if known.site != site:
            self.fail("policy.wrong_site", f"policy {policy_id[:16]}… is {known.site}'s")
            return None
        return known

    def _invalid(self, policy: _Policy, time: datetime, since: int) -> tuple[str, str] | None:
        if policy.revoked_at is not None and policy.revoked_at < since:
            return "policy.revoked", f"its policy was revoked at entry {policy.revoked_at}"
        if time >= policy.expires:
            return "policy.expired", f"its policy expired at {format_timestamp(policy.expires)}"
        return None

    def _usable(
        self, check: str, document: UsagePolicy | JobManifest | DocumentProblem
    ) -> UsagePolicy | JobManifest | None:
        if isinstance(document, DocumentProblem):
            self.cannot(check, document.message)
            return None
        return document

    def _spent_elsewhere(self, site: str, job_id: str) -> Decimal:
        spent = self.spent.get(site, {})
        return sum((v for job, v in spent.items() if job != job_id), Decimal(0))

    def _total_spent(self, site: str) -> Decimal:
        return sum(self.spent.get(site, {}).values(), Decimal(0))
