"""What an evaluation looks at besides the two documents, and what it returns.

:class:`RoundContext` is the moment of evaluation (admission or one round);
:class:`Decision` is the outcome, with a :class:`Reason` for every check made,
passed or failed, so a refusal can be ledgered and shown with its causes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from dure.policies.canonical import JsonValue
from dure.policies.selector import EpisodeSelector

__all__ = ["Decision", "Reason", "RoundContext"]


@dataclass(frozen=True, slots=True)
class RoundContext:
    """The facts of one evaluation that are in neither document.

    Parameters
    ----------
    consortium
        The consortium the evaluating party belongs to (the coordinator's, or
        the one the factory joined), ``urn:dure:consortium:<name>``.
    now
        The time of evaluation, timezone-aware.
    round
        0 at admission, before any round; then the round about to be trained
        or aggregated, from 1.
    contributors
        The number of replies actually aggregated in this round, once known
        (at aggregation); ``None`` before that (admission, the factory's gate).
    epsilon_spent
        The ε already committed to this site's data under this policy by
        *other* jobs (from the ledger's ``aggregate_committed`` entries).  The
        evaluated job's own total ε is always added in full, at admission and
        in every round.
    revoked
        Whether the policy has been revoked.

    Raises
    ------
    ValueError
        If ``now`` is naive, a count is negative, or ``epsilon_spent`` is
        negative, infinite, NaN or not a :class:`~decimal.Decimal`.
    """

    consortium: str
    now: datetime
    round: int = 0
    contributors: int | None = None
    epsilon_spent: Decimal = Decimal(0)
    revoked: bool = False

    def __post_init__(self) -> None:
        if self.now.tzinfo is None or self.now.utcoffset() is None:
            raise ValueError("RoundContext.now must be timezone-aware")
        if self.round < 0 or (self.contributors is not None and self.contributors < 0):
            raise ValueError("RoundContext.round and .contributors cannot be negative")
        spent = self.epsilon_spent
        if not isinstance(spent, Decimal) or not spent.is_finite() or spent < 0:
            raise ValueError("RoundContext.epsilon_spent must be a finite Decimal >= 0")


@dataclass(frozen=True, slots=True)
class Reason:
    """One check of an evaluation.

    Parameters
    ----------
    code
        Stable identifier of the check, e.g. ``"constraint.purpose"`` or
        ``"permission.derive"`` (docs/policy-language.md lists them all).
    ok
        Whether the check passed.
    message
        What was compared, naming the rule, the term and both values.
    """

    code: str
    ok: bool
    message: str

    def to_json_value(self) -> dict[str, JsonValue]:
        """Return the reason as a JSON object (for ledger entries and the API)."""
        return {"code": self.code, "ok": self.ok, "message": self.message}


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of evaluating a policy against a job at one moment.

    ``allowed`` is derived from ``reasons``: a decision allows only when it
    made at least one check and every check passed, so it cannot disagree
    with its own reasons.

    Parameters
    ----------
    reasons
        Every check made, in a fixed order, passed or failed.
    selector
        The episodes the factory may train on: the policy's refinement
        intersected with the job's selector.
    """

    reasons: tuple[Reason, ...]
    selector: EpisodeSelector

    @property
    def allowed(self) -> bool:
        """Whether every check passed (and there was at least one)."""
        return bool(self.reasons) and all(reason.ok for reason in self.reasons)

    @property
    def denials(self) -> tuple[Reason, ...]:
        """The failed checks, in order."""
        return tuple(reason for reason in self.reasons if not reason.ok)

    def to_json_value(self) -> dict[str, JsonValue]:
        """Return the decision as a JSON object (for ``site_admitted``/``site_refused``)."""
        return {
            "allowed": self.allowed,
            "reasons": [reason.to_json_value() for reason in self.reasons],
            "selector": self.selector.to_json_value(),
        }

    def summary(self) -> str:
        """Render the verdict and the failed checks (or all checks if allowed) as text."""
        shown = self.denials or self.reasons
        verdict = "allowed" if self.allowed else "denied"
        return "\n".join([verdict, *(f"  [{r.code}] {r.message}" for r in shown)])
