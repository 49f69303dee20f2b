"""What each rule constraint of the profile means for a job at one moment.

Every operand of :data:`dure.policies.terms.OPERANDS` reads one or more
*subjects* from the job and the round context (the purpose, each recipient,
the time, the rounds…) and compares each with the constraint's value.  In a
permission the constraint holds when it holds for *every* subject (each
recipient must be allowed); in a prohibition it holds when it holds for *any*
subject (one forbidden recipient is enough).  A constraint that is not
understood never holds in a permission and always holds in a prohibition, so
an unknown term can only deny.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from dure.policies.decision import Reason, RoundContext
from dure.policies.job import JobManifest
from dure.policies.literals import format_timestamp, purpose_matches
from dure.policies.policy import Constraint
from dure.policies.terms import FIXED_CLIPPING_DP_MODES, OPERANDS
from dure.policies.values import checked_value, compare, show

__all__ = ["SUBJECT_OPERANDS", "Check", "check_constraint"]


@dataclass(frozen=True, slots=True)
class _Subject:
    values: tuple[Any, ...]
    text: str
    same: Callable[[Any, Any], bool] | None = None
    lacking: str | None = None  # why the job cannot satisfy the constraint at all


def _purpose(job: JobManifest, ctx: RoundContext) -> _Subject:
    return _Subject(
        (job.purpose,),
        f"job purpose {job.purpose}",
        same=lambda purpose, pattern: purpose_matches(pattern, purpose),
    )


def _recipient(job: JobManifest, ctx: RoundContext) -> _Subject:
    return _Subject(job.recipients, f"job recipients [{', '.join(job.recipients)}]")


def _coordinator(job: JobManifest, ctx: RoundContext) -> _Subject:
    return _Subject((job.coordinator,), f"job coordinator {job.coordinator}")


def _date_time(job: JobManifest, ctx: RoundContext) -> _Subject:
    return _Subject((ctx.now,), f"now {format_timestamp(ctx.now)}")


def _count(job: JobManifest, ctx: RoundContext) -> _Subject:
    return _Subject((job.rounds, ctx.round), f"job rounds {job.rounds}, current round {ctx.round}")


def _contributors(job: JobManifest, ctx: RoundContext) -> _Subject:
    if ctx.contributors is None:
        return _Subject((job.min_contributors,), f"job min_contributors {job.min_contributors}")
    return _Subject(
        (job.min_contributors, ctx.contributors),
        f"job min_contributors {job.min_contributors}, contributors {ctx.contributors}",
    )


def _secure(job: JobManifest, ctx: RoundContext) -> _Subject:
    # ``eq true`` requires secure aggregation; ``eq false`` requires nothing.
    return _Subject(
        (job.aggregation.secure,),
        f"job secure aggregation {str(job.aggregation.secure).lower()}",
        same=lambda secure, required: bool(secure or not required),
    )


def _aggregation(job: JobManifest, ctx: RoundContext) -> _Subject:
    return _Subject((job.aggregation.strategy,), f"job strategy {job.aggregation.strategy}")


def _dp_epsilon(job: JobManifest, ctx: RoundContext) -> _Subject:
    if job.dp is None:
        return _Subject((), "", lacking="the job uses no differential privacy")
    total = ctx.epsilon_spent + job.dp.epsilon_value
    return _Subject(
        (total,), f"ε already spent {ctx.epsilon_spent} + job ε {job.dp.epsilon} = {total}"
    )


def _dp_delta(job: JobManifest, ctx: RoundContext) -> _Subject:
    if job.dp is None:
        return _Subject((), "", lacking="the job uses no differential privacy")
    return _Subject((job.dp.delta_value,), f"job δ {job.dp.delta}")


def _dp_clip(job: JobManifest, ctx: RoundContext) -> _Subject:
    if job.dp is None:
        return _Subject((), "", lacking="the job uses no differential privacy")
    if job.dp.mode not in FIXED_CLIPPING_DP_MODES:
        return _Subject((), "", lacking=f"dp mode {job.dp.mode} adapts the clipping bound")
    return _Subject((job.dp.clip_value,), f"job clipping bound {job.dp.clip}")


_SUBJECTS: dict[str, Callable[[JobManifest, RoundContext], _Subject]] = {
    "purpose": _purpose,
    "recipient": _recipient,
    "dure:coordinator": _coordinator,
    "dateTime": _date_time,
    "count": _count,
    "dure:minContributors": _contributors,
    "dure:secureAggregation": _secure,
    "dure:aggregation": _aggregation,
    "dure:dpEpsilon": _dp_epsilon,
    "dure:dpDelta": _dp_delta,
    "dure:dpClip": _dp_clip,
}
SUBJECT_OPERANDS = frozenset(_SUBJECTS)
"""The operands given a meaning here (a test checks this is every operand of the profile)."""


class Check(NamedTuple):
    """Whether one constraint holds, with the stable code and the message for a reason."""

    code: str
    held: bool
    message: str

    def reason(self) -> Reason:
        """The check as a permission's reason: it passes when the constraint holds."""
        return Reason(self.code, self.held, self.message)


def check_constraint(
    term: Constraint, where: str, job: JobManifest, ctx: RoundContext, *, prohibition: bool
) -> Check:
    """Decide whether ``term`` holds for ``job`` at ``ctx``.

    In a permission a constraint that is not understood does not hold; in a
    prohibition it holds (so the prohibition fires).  Either way it denies.
    """
    spec = OPERANDS.get(term.left_operand)
    value = checked_value(term, OPERANDS)
    stated = f"{where}: {term.left_operand[:80]} {term.operator[:40]} {show(term.right_operand)}"
    if spec is None or value is None or (prohibition and not spec.in_prohibition):
        code = f"constraint.{spec.name}" if spec else "constraint.unknown"
        return Check(code, prohibition, f"{stated}: not understood by this profile")
    code = f"constraint.{spec.name}"
    subject = _SUBJECTS[spec.name](job, ctx)
    if subject.lacking is not None:
        return Check(code, False, f"{stated}: fails, {subject.lacking}")
    results = [compare(term.operator, s, value, subject.same) for s in subject.values]
    held = any(results) if prohibition else all(results)
    return Check(code, held, f"{stated}: {'holds' if held else 'fails'} for {subject.text}")
