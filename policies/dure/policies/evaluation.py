"""Evaluating a usage policy against a job manifest: pure, deterministic, fail-closed.

The coordinator calls :func:`evaluate` for every registered site before it
samples anyone, and each factory calls it again before it touches its data;
both run this same code on the same signed documents.  The result is a
:class:`~dure.policies.decision.Decision` listing every check made.

Decision procedure (docs/policy-language.md explains each step):

1. the policy is not revoked;
2. every term of the policy and of the job's selector is in the profile
   (closed world: anything unknown denies);
3. the job belongs to the evaluator's consortium, is within its validity
   period, the round is within the job, and enough replies were aggregated;
4. for each action the job needs (``use`` and ``derive``, and ``distribute``
   when it names recipients) some permission grants it: its assignee is the
   job's consortium, every constraint holds and the job accepts every duty;
5. no prohibition fires (a prohibition of ``use`` covers every action);
6. the episode selector (policy refinement and job selector) is not empty.

Each step is a small rule returning reasons; the decision allows only when
every reason passed.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from dure.policies.constraints import check_constraint
from dure.policies.decision import Decision, Reason, RoundContext
from dure.policies.job import JobManifest
from dure.policies.literals import format_timestamp
from dure.policies.policy import Constraint, Permission, Prohibition, UsagePolicy
from dure.policies.selector import EpisodeSelector
from dure.policies.terms import ACTIONS, DUTIES, OPERANDS, SELECTOR_OPERANDS
from dure.policies.values import Value, checked_value, term_problem

__all__ = [
    "Decision",
    "Reason",
    "RoundContext",
    "dp_budget",
    "evaluate",
    "min_contributors_required",
    "vocabulary_problems",
]


def evaluate(policy: UsagePolicy, job: JobManifest, context: RoundContext) -> Decision:
    """Decide whether ``job`` may use the data ``policy`` governs, at ``context``.

    Pure and deterministic: the same three inputs always give the same
    decision, on the coordinator and on the factory.

    Returns
    -------
    Decision
        Allowed only when every check passed; ``reasons`` lists every check
        and ``selector`` the episodes the factory may select.
    """
    selector = EpisodeSelector.intersect(policy.target.refinement, job.episode_selector)
    reasons = [
        _revocation(context),
        *_vocabulary(policy, job),
        _consortium(job, context),
        _validity(job, context),
        _round(job, context),
        _contributors(job, context),
        *(
            reason
            for action in job.required_actions
            for reason in _grant(policy, job, context, action)
        ),
        *_prohibitions(policy, job, context),
        _selector(selector),
    ]
    return Decision(tuple(reasons), selector)


def vocabulary_problems(policy: UsagePolicy) -> tuple[Reason, ...]:
    """Return a failed reason for every term of ``policy`` outside the profile.

    Signing tools call this to refuse a policy that could only ever deny.
    """
    return tuple(
        Reason(code, False, message)
        for code, message in (
            *_rule_terms(policy),
            *_selector_terms(policy.target.refinement, "target.refinement"),
        )
    )


def min_contributors_required(policies: Iterable[UsagePolicy]) -> int:
    """Return the strictest ``dure:minContributors`` of ``policies`` (at least 1).

    The coordinator aggregates a round only if at least this many of the
    admitted sites' replies survive validation.
    """
    counts = [
        value
        for policy in policies
        for value in _values(policy, "dure:minContributors")
        if isinstance(value, int) and not isinstance(value, bool)
    ]
    return max([1, *counts])


def dp_budget(policy: UsagePolicy) -> Decimal | None:
    """Return the strictest total ε budget (``dure:dpEpsilon``) of ``policy``, if any."""
    budgets = [v for v in _values(policy, "dure:dpEpsilon") if isinstance(v, Decimal)]
    return min(budgets) if budgets else None


def _values(policy: UsagePolicy, operand: str) -> list[Value]:
    """The understood values of every permission constraint on ``operand``."""
    return [
        value
        for permission in policy.permission
        for term in permission.constraint
        if term.left_operand == operand and (value := checked_value(term, OPERANDS)) is not None
    ]


# --- rules: each returns the reasons of one step -------------------------------------------


def _revocation(ctx: RoundContext) -> Reason:
    if ctx.revoked:
        return Reason("revocation", False, "the policy has been revoked by its site")
    return Reason("revocation", True, "the policy is not revoked")


def _vocabulary(policy: UsagePolicy, job: JobManifest) -> list[Reason]:
    problems = [
        *_rule_terms(policy),
        *_selector_terms(policy.target.refinement, "target.refinement"),
        *_selector_terms(job.episode_selector, "job episode_selector"),
        *(
            ("vocabulary.duty", f"job duties_accepted lists unknown duty {d[:80]!r}")
            for d in job.duties_accepted
            if d not in DUTIES
        ),
    ]
    if not problems:
        return [Reason("vocabulary", True, "every term is in the dure profile v1")]
    return [Reason(code, False, message) for code, message in problems]


def _rule_terms(policy: UsagePolicy) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    rules: list[tuple[str, int, Permission | Prohibition]] = [
        ("permission", i, p) for i, p in enumerate(policy.permission)
    ]
    rules += [("prohibition", i, p) for i, p in enumerate(policy.prohibition)]
    for kind, index, rule in rules:
        where = f"{kind}[{index}]"
        if rule.action not in ACTIONS:
            found.append(("vocabulary.action", f"{where}: unknown action {rule.action[:80]!r}"))
        for c, term in enumerate(rule.constraint):
            problem = term_problem(term, OPERANDS, prohibition=kind == "prohibition")
            if problem is not None:
                found.append((f"vocabulary.{problem[0]}", f"{where}.constraint[{c}]: {problem[1]}"))
        if isinstance(rule, Permission):
            found += [
                ("vocabulary.duty", f"{where}.duty[{d}]: unknown duty {duty.action[:80]!r}")
                for d, duty in enumerate(rule.duty)
                if duty.action not in DUTIES
            ]
    return found


def _selector_terms(terms: Iterable[Constraint], where: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for index, term in enumerate(terms):
        problem = term_problem(term, SELECTOR_OPERANDS)
        if problem is not None:
            found.append((f"vocabulary.{problem[0]}", f"{where}[{index}]: {problem[1]}"))
    return found


def _consortium(job: JobManifest, ctx: RoundContext) -> Reason:
    ok = job.consortium == ctx.consortium
    relation = "is" if ok else "is not"
    return Reason(
        "job.consortium", ok, f"job consortium {job.consortium} {relation} {ctx.consortium}"
    )


def _validity(job: JobManifest, ctx: RoundContext) -> Reason:
    ok = job.issued <= ctx.now < job.expires
    span = f"{format_timestamp(job.issued)} to {format_timestamp(job.expires)}"
    state = "within" if ok else "outside"
    return Reason(
        "job.validity", ok, f"now {format_timestamp(ctx.now)} is {state} the job's {span}"
    )


def _round(job: JobManifest, ctx: RoundContext) -> Reason:
    ok = ctx.round <= job.rounds
    return Reason("job.round", ok, f"round {ctx.round} of the job's {job.rounds}")


def _contributors(job: JobManifest, ctx: RoundContext) -> Reason:
    if ctx.contributors is None:
        return Reason("job.contributors", True, "contributors not counted yet")
    ok = ctx.contributors >= job.min_contributors
    counted = f"{ctx.contributors} contributors, job minimum {job.min_contributors}"
    return Reason("job.contributors", ok, counted)


def _grant(policy: UsagePolicy, job: JobManifest, ctx: RoundContext, action: str) -> list[Reason]:
    code = f"permission.{action}"
    candidates = policy.permissions_for(action)
    if not candidates:
        return [Reason(code, False, f"no permission grants {action!r}")]
    checked = [(index, _permission(index, p, job, ctx)) for index, p in candidates]
    for index, reasons in checked:
        if all(reason.ok for reason in reasons):
            return [*reasons, Reason(code, True, f"permission[{index}] grants {action!r}")]
    tried = ", ".join(f"permission[{index}]" for index, _ in checked)
    failed = [reason for _, reasons in checked for reason in reasons]
    return [*failed, Reason(code, False, f"none of {tried} grants {action!r}")]


def _permission(
    index: int, permission: Permission, job: JobManifest, ctx: RoundContext
) -> list[Reason]:
    where = f"permission[{index}] ({permission.action})"
    ok = permission.assignee == job.consortium
    relation = "is" if ok else "is not"
    reasons = [
        Reason(
            "assignee",
            ok,
            f"{where}: assignee {permission.assignee[:80]} {relation} "
            f"the job's consortium {job.consortium}",
        )
    ]
    reasons += [
        check_constraint(term, f"{where} constraint[{c}]", job, ctx, prohibition=False).reason()
        for c, term in enumerate(permission.constraint)
    ]
    for duty in permission.duty:
        accepted = duty.action in DUTIES and duty.action in job.duties_accepted
        state = "accepted" if accepted else "not accepted"
        reasons.append(
            Reason("duty", accepted, f"{where}: duty {duty.action[:80]!r} {state} by the job")
        )
    return reasons


def _prohibitions(policy: UsagePolicy, job: JobManifest, ctx: RoundContext) -> list[Reason]:
    if not policy.prohibition:
        return [Reason("prohibition", True, "the policy prohibits nothing")]
    reasons = []
    for index, rule in enumerate(policy.prohibition):
        where = f"prohibition[{index}] ({rule.action[:40]})"
        # SPEC: ODRL 2.2 common vocabulary: derive and distribute are included in use.
        applies = rule.action == "use" or rule.action in job.required_actions
        applies = applies or rule.action not in ACTIONS  # unknown action: assume it applies
        checks = [
            check_constraint(term, f"constraint[{c}]", job, ctx, prohibition=True)
            for c, term in enumerate(rule.constraint)
        ]
        fires = applies and all(check.held for check in checks)
        detail = "; ".join(check.message for check in checks) or "unconditional"
        verdict = "fires" if fires else ("does not apply" if not applies else "does not fire")
        reasons.append(Reason("prohibition", not fires, f"{where} {verdict}: {detail}"))
    return reasons


def _selector(selector: EpisodeSelector) -> Reason:
    if selector.is_empty():
        return Reason("selector", False, f"no episode can match: {selector.describe()}")
    return Reason("selector", True, f"episodes selected: {selector.describe()}")
