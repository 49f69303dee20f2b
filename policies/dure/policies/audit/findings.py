"""What a replay of the ledger reports: violations, checks it could not make, a verdict.

A :class:`Violation` is an invariant that does not hold, pinned to the exact
entry (its ledger index) where it first shows.  An :class:`Unverified` is a
check the auditor could not make because a signed document or key was not
supplied: it is not evidence of wrongdoing, but a strict audit fails on it
(fail closed).  :data:`VIOLATION_CODES` lists every code with its meaning.
"""

from __future__ import annotations

from dataclasses import dataclass

from dure.policies.canonical import JsonValue

__all__ = ["UNVERIFIABLE_CHECKS", "VIOLATION_CODES", "ReplayReport", "Unverified", "Violation"]

VIOLATION_CODES: dict[str, str] = {
    "site.unregistered": "an entry names a site no site_registered entry introduced",
    "site.key_changed": "a site was registered again with another signing key",
    "site.identity": "the site's identity document is not the one ledgered, or not self-signed",
    "policy.unregistered": "the cited policy was never registered",
    "policy.wrong_site": "the cited policy belongs to another site",
    "policy.conflict": "one policy id was registered for two sites",
    "policy.expired": "the cited policy had expired at the entry's time",
    "policy.revoked": "the cited policy was revoked before the round opened",
    "policy.document": "the signed policy does not verify, or is not the cited policy",
    "policy.denied": "re-evaluating the signed policy against the signed job denies",
    "job.unknown": "an entry names a job no job_signed entry introduced",
    "job.conflict": "one job id was signed with two different manifests",
    "job.document": "the signed job does not verify, or is not the ledgered job",
    "admission.missing": "a site contributed to a job it was never admitted to",
    "admission.refused": "a site contributed to a job after it was refused",
    "admission.policy": "a site was admitted under a policy that was not valid then",
    "round.duplicate": "a round of a job was opened twice",
    "round.not_opened": "a contribution or aggregate names a round never opened",
    "round.site_not_sampled": "a site contributed to a round it was not sampled in",
    "round.site_not_admitted": "a round sampled a site not admitted to its job",
    "contribution.duplicate": "a site contributed twice to one round",
    "aggregate.duplicate": "a round was aggregated twice",
    "aggregate.parent_mismatch": "an aggregate's parent is not the model its round started from",
    "aggregate.contributor_missing": "a named contributor has no accepted contribution",
    "aggregate.too_few_contributors": "fewer contributors than the job and their policies demand",
    "dp.budget_exceeded": "the ε spent on a site's data exceeds its policy's budget",
    "dp.unrecorded": "an aggregate of a job with differential privacy records no ε",
    "dp.job_exceeded": "an aggregate records more ε than its job declared",
    "model.duplicate": "one model digest was committed twice",
    "model.unknown": "a model was released that no aggregate committed",
    "release.recipient_not_allowed": "a model was released to a party its jobs did not name",
}
"""Every violation code a replay can report, with its meaning."""

UNVERIFIABLE_CHECKS: dict[str, str] = {
    "policy.allows": "that the cited policy allowed the job (needs the signed policy and job)",
    "aggregate.min_contributors": "the minimum contributors (needs the signed policies and job)",
    "dp.budget": "the ε budget (needs the contributors' signed policies)",
    "release.recipients": "the release's recipients (needs the signed jobs behind the model)",
}
"""Every check a replay may be unable to make without documents."""


@dataclass(frozen=True, slots=True)
class Violation:
    """An invariant that does not hold at ledger entry ``index`` (of kind ``kind``)."""

    index: int
    kind: str
    code: str
    message: str

    def describe(self) -> str:
        """Return ``entry <index> (<kind>): <code>: <message>``."""
        return f"entry {self.index} ({self.kind}): {self.code}: {self.message}"

    def to_json_value(self) -> dict[str, JsonValue]:
        """Return the violation as a JSON object."""
        return {"index": self.index, "kind": self.kind, "code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class Unverified:
    """A check about entry ``index`` that could not be made, and why."""

    index: int
    kind: str
    check: str
    reason: str

    def describe(self) -> str:
        """Return ``entry <index> (<kind>): cannot check <check>: <reason>``."""
        return f"entry {self.index} ({self.kind}): cannot check {self.check}: {self.reason}"

    def to_json_value(self) -> dict[str, JsonValue]:
        """Return the unverifiable check as a JSON object."""
        return {"index": self.index, "kind": self.kind, "check": self.check, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """The outcome of replaying ``entries`` ledger entries.

    ``violations`` and ``unverified`` are in ledger order; ``checked`` counts
    the document checks (policy allows, minimum contributors, ε budget, release
    recipients) that were made and passed.
    """

    entries: int
    violations: tuple[Violation, ...]
    unverified: tuple[Unverified, ...]
    checked: int

    def ok(self, *, strict: bool = False) -> bool:
        """Whether no invariant failed (and, when ``strict``, every check could be made)."""
        return not self.violations and not (strict and self.unverified)

    @property
    def first_violation(self) -> Violation | None:
        """The violation at the lowest ledger index, if any."""
        return min(self.violations, key=lambda v: v.index, default=None)

    def codes(self) -> set[str]:
        """The distinct violation codes reported."""
        return {v.code for v in self.violations}

    def to_json_value(self) -> dict[str, JsonValue]:
        """Return the report as a JSON object."""
        return {
            "entries": self.entries,
            "violations": [v.to_json_value() for v in self.violations],
            "unverified": [u.to_json_value() for u in self.unverified],
            "checked": self.checked,
        }
