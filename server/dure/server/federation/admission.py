"""Admission: which registered sites a job may sample, decided before anyone is sampled.

Pure.  Every registered site's policy is evaluated against the job with the
kernel's :func:`~dure.policies.evaluation.evaluate` (the code each factory runs
again in its policy gate).  On top of the kernel's checks, the coordinator
refuses:

- a site without a registered policy (closed world);
- a site whose policy asks for more contributors per aggregate than there are
  admitted sites (``dure:minContributors``), since no round could ever satisfy
  it.  This is decided by :func:`largest_feasible`, the same rule applied to the
  replies of a round (:mod:`dure.server.federation.validation`).

The coordinator calls :func:`admit` with ``round=0`` before the first round and
again with the round number before each round, on the sites still admitted, so
a policy revoked, expired or out of ε budget mid-job stops being sampled.  Each
decision becomes a ``site_admitted`` or ``site_refused`` entry
(:func:`admission_entries`) that is ledgered before any message is sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from dure.policies.decision import Decision, Reason, RoundContext
from dure.policies.encoding import HexDigest
from dure.policies.entries import LedgerEntry, SiteAdmitted, SiteRefused
from dure.policies.evaluation import evaluate, min_contributors_required
from dure.policies.job import JobManifest
from dure.server.federation.registry import RegisteredSite

__all__ = [
    "MAX_REASONS",
    "SiteDecision",
    "admission_entries",
    "admit",
    "largest_feasible",
    "reason_lines",
]

MAX_REASONS = 64
"""The most reasons one ledger entry carries (the kernel's limit)."""


@dataclass(frozen=True, slots=True)
class SiteDecision:
    """The coordinator's decision about one site for one job, at one round.

    ``decision`` is the kernel's evaluation (``None`` when the site has no
    policy); ``extra`` holds the coordinator's own failed checks.
    """

    site: RegisteredSite
    decision: Decision | None
    extra: tuple[Reason, ...] = ()

    @property
    def admitted(self) -> bool:
        """Whether the site may be sampled."""
        return self.decision is not None and self.decision.allowed and not self.extra

    @property
    def policy_id(self) -> HexDigest | None:
        """The id of the policy evaluated, if the site has one."""
        return self.site.policy.policy_id if self.site.policy is not None else None

    @property
    def denials(self) -> tuple[Reason, ...]:
        """Every failed check, the kernel's first."""
        if self.decision is None:
            return (Reason("policy", False, "the site has registered no usage policy"),)
        return (*self.decision.denials, *self.extra)


def admit(
    job: JobManifest,
    sites: Sequence[RegisteredSite],
    *,
    consortium: str,
    now: datetime,
    round: int = 0,
    spent: Mapping[str, Decimal] | None = None,
) -> tuple[SiteDecision, ...]:
    """Decide, for every site, whether ``job`` may sample it at ``round``.

    Parameters
    ----------
    job
        The verified job manifest.
    sites
        The sites to decide about (all registered sites at admission; the
        sites still admitted before a round).
    consortium
        The coordinator's consortium URN.
    now
        The time of the decision (timezone-aware).
    round
        0 at admission, else the round about to be opened.
    spent
        ε already spent on each site (by URN) by *other* jobs, from the ledger.

    Returns
    -------
    tuple[SiteDecision, ...]
        One decision per site, in the order given.
    """
    spent = spent or {}
    decisions = [_decide(job, site, consortium, now, round, spent) for site in sites]
    requirements = {
        d.site.urn: min_contributors_required([d.site.policy.policy])
        for d in decisions
        if d.admitted and d.site.policy is not None
    }
    kept = largest_feasible(requirements)
    return tuple(
        d if not d.admitted or d.site.urn in kept else _too_few(d, requirements, len(kept))
        for d in decisions
    )


def largest_feasible(requirements: Mapping[str, int]) -> frozenset[str]:
    """Return the largest set of sites whose every minimum is met by the set's size.

    ``requirements`` maps each site to the least number of contributors its
    policy accepts.  Sites whose requirement exceeds the count are dropped until
    none does; the result is the unique largest feasible set (possibly empty).
    """
    kept = dict(requirements)
    while any(required > len(kept) for required in kept.values()):
        kept = {site: req for site, req in kept.items() if req <= len(kept)}
    return frozenset(kept)


def admission_entries(
    job_id: str, decisions: Sequence[SiteDecision], now: datetime
) -> list[LedgerEntry]:
    """Return the ``site_admitted`` / ``site_refused`` entries for ``decisions``."""
    time = now.replace(microsecond=0)
    entries: list[LedgerEntry] = []
    for d in decisions:
        if d.admitted and d.policy_id is not None:
            entries.append(
                SiteAdmitted(time=time, job_id=job_id, site=d.site.urn, policy_id=d.policy_id)
            )
        else:
            entries.append(
                SiteRefused(
                    time=time,
                    job_id=job_id,
                    site=d.site.urn,
                    policy_id=d.policy_id,
                    reasons=reason_lines(d.denials),
                )
            )
    return entries


def reason_lines(reasons: Sequence[Reason]) -> tuple[str, ...]:
    """Render reasons as ``[code] message`` lines, at most :data:`MAX_REASONS` of them."""
    lines = [f"[{r.code}] {r.message}"[:2000] for r in reasons] or ["[unknown] no reason given"]
    if len(lines) > MAX_REASONS:
        lines = [*lines[: MAX_REASONS - 1], f"and {len(lines) - MAX_REASONS + 1} more reasons"]
    return tuple(lines)


def _decide(
    job: JobManifest,
    site: RegisteredSite,
    consortium: str,
    now: datetime,
    round: int,
    spent: Mapping[str, Decimal],
) -> SiteDecision:
    if site.policy is None:
        return SiteDecision(site, None)
    context = RoundContext(
        consortium=consortium,
        now=now,
        round=round,
        epsilon_spent=spent.get(site.urn, Decimal(0)),
        revoked=site.policy.revoked,
    )
    return SiteDecision(site, evaluate(site.policy.policy, job, context))


def _too_few(decision: SiteDecision, requirements: Mapping[str, int], count: int) -> SiteDecision:
    required = requirements[decision.site.urn]
    reason = Reason(
        "contributors.feasible",
        False,
        f"the policy requires at least {required} contributors per aggregate, "
        f"but at most {count} sites can be admitted with it",
    )
    return replace(decision, extra=(*decision.extra, reason))
