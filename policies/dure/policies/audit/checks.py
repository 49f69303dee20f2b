"""The document checks of a replay, each a pure function of signed documents and one entry.

Each returns ``None`` when the check passes, else the message of the violation;
:mod:`~dure.policies.audit.replay` decides when to run them and records the
outcome at the entry's index.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from dure.policies.decision import RoundContext
from dure.policies.entries import AggregateCommitted, ContributionAccepted, ModelReleased
from dure.policies.evaluation import dp_budget, evaluate, min_contributors_required
from dure.policies.job import JobManifest
from dure.policies.policy import UsagePolicy

__all__ = [
    "budget_overrun",
    "denial",
    "job_epsilon_problem",
    "minimum_shortfall",
    "release_problem",
]

_SHOWN_REASONS = 4


def denial(
    policy: UsagePolicy,
    job: JobManifest,
    entry: ContributionAccepted,
    spent_elsewhere: Decimal,
    consortium: str | None = None,
) -> str | None:
    """Re-run :func:`~dure.policies.evaluation.evaluate` at the contribution; say why it denies.

    The context is the entry's time and round, the ε already spent on the site's
    data by other jobs, and ``consortium`` (by default the job's own).
    """
    context = RoundContext(
        consortium=consortium or job.consortium,
        now=entry.time,
        round=entry.round,
        epsilon_spent=spent_elsewhere,
    )
    decision = evaluate(policy, job, context)
    if decision.allowed:
        return None
    shown = "; ".join(f"{r.code}: {r.message}" for r in decision.denials[:_SHOWN_REASONS])
    more = len(decision.denials) - _SHOWN_REASONS
    shown += f"; and {more} more" if more > 0 else ""
    return f"policy {policy.uid} denies {entry.job_id}: {shown}"


def minimum_shortfall(
    job: JobManifest, policies: Sequence[UsagePolicy], entry: AggregateCommitted
) -> str | None:
    """Say how an aggregate falls short of the job's and its contributors' minimums."""
    required = max(job.min_contributors, min_contributors_required(policies))
    if len(entry.contributors) >= required:
        return None
    return (
        f"{len(entry.contributors)} contributors to round {entry.round} of {entry.job_id}, "
        f"but the job and its contributors' policies demand {required}"
    )


def budget_overrun(policy: UsagePolicy, site: str, total: Decimal) -> str | None:
    """Say how the ``total`` ε spent on ``site``'s data exceeds ``policy``'s budget."""
    budget = dp_budget(policy)
    if budget is None or total <= budget:
        return None
    return f"ε spent on {site}'s data is {total}, over the budget {budget} of policy {policy.uid}"


def job_epsilon_problem(job: JobManifest, entry: AggregateCommitted) -> tuple[str, str] | None:
    """Return ``(code, message)`` if the aggregate's ε disagrees with the job's DP."""
    if job.dp is None:
        return None
    if entry.epsilon_spent is None:
        return "dp.unrecorded", f"{entry.job_id} uses differential privacy but records no ε"
    if Decimal(entry.epsilon_spent) > job.dp.epsilon_value:
        message = (
            f"ε {entry.epsilon_spent} spent by {entry.job_id}, which declared {job.dp.epsilon}"
        )
        return "dp.job_exceeded", message
    return None


def release_problem(job: JobManifest, entry: ModelReleased) -> str | None:
    """Say which released-to parties ``job`` (one behind the model) did not name."""
    extra = [r for r in entry.recipients if r not in job.recipients]
    if not extra:
        return None
    return f"released to {', '.join(extra)}, which job {job.job_id} did not name"
