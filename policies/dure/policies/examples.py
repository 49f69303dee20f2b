"""Valid example documents: a site's usage policy, a job it allows, a round context.

Used by the tests (which mutate the JSON values), by ``dure demo`` to show what
a factory signs, and by docs/policy-language.md.  The ``*_value`` functions
return plain JSON values; the others parse them into documents.  With the
same arguments, the example job is allowed by the example policy at
:data:`EXAMPLE_NOW` (or at ``issued`` plus a fortnight).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from dure.policies.canonical import JsonValue
from dure.policies.decision import RoundContext
from dure.policies.encoding import sha256, to_hex
from dure.policies.job import JobManifest
from dure.policies.literals import format_timestamp
from dure.policies.policy import RevocationMode, UsagePolicy
from dure.policies.terms import ODRL_CONTEXT, PROFILE, XSD_DATETIME

__all__ = [
    "EXAMPLE_ISSUED",
    "EXAMPLE_NOW",
    "EXAMPLE_PURPOSE",
    "example_context",
    "example_job",
    "example_job_value",
    "example_policy",
    "example_policy_value",
]

EXAMPLE_ISSUED = datetime(2026, 11, 1, tzinfo=UTC)
"""When the example documents are issued, unless told otherwise."""

EXAMPLE_NOW = EXAMPLE_ISSUED + timedelta(days=14, hours=9)
"""A moment at which the example job is allowed by the example policy."""

EXAMPLE_PURPOSE = "urn:dure:purpose:bc-manipulation:v1"
"""Behaviour cloning of manipulation skills, version 1."""

_MEMBERS = ("factory-a", "factory-b", "factory-c")
_TASKS = ("pick-place", "push", "reach", "drawer-open")
_DUTIES: list[JsonValue] = [{"action": "attribute"}, {"action": "dure:logToLedger"}]


def _term(operand: str, operator: str, value: JsonValue) -> dict[str, JsonValue]:
    return {"leftOperand": operand, "operator": operator, "rightOperand": value}


def _dt(value: datetime) -> dict[str, JsonValue]:
    return {"@value": format_timestamp(value), "@type": XSD_DATETIME}


def example_policy_value(
    site: str = "factory-a",
    *,
    consortium: str = "robotics-coop",
    coordinator: str = "robotics-coop",
    members: Sequence[str] = _MEMBERS,
    tasks: Sequence[str] = _TASKS,
    issued: datetime = EXAMPLE_ISSUED,
    secure_aggregation: bool = False,
    dp_epsilon: str | None = "10.0",
    on_revocation: RevocationMode = "exclude-future",
) -> dict[str, JsonValue]:
    """Return the JSON of a realistic policy for ``site`` (names, not URNs, as arguments).

    It lets ``consortium`` train behaviour-cloning models on the ``tasks``
    episodes for a year, at most 50 rounds with at least 3 contributors,
    with the listed aggregation strategies and, unless ``dp_epsilon`` is
    ``None``, differential privacy within that ε budget; models may be
    released to the ``members``; surveillance and military uses are forbidden.
    """
    group = f"urn:dure:consortium:{consortium}"
    training: list[JsonValue] = [
        _term("purpose", "isAnyOf", [EXAMPLE_PURPOSE, "urn:dure:purpose:bc-assembly"]),
        _term("dure:coordinator", "eq", f"urn:dure:coordinator:{coordinator}"),
        _term("dateTime", "lt", _dt(issued + timedelta(days=365))),
        _term("count", "lteq", 50),
        _term("dure:minContributors", "gteq", 3),
        _term("dure:secureAggregation", "eq", secure_aggregation),
        _term("dure:aggregation", "isAnyOf", ["fedavg", "fedprox", "trimmed-mean", "krum"]),
    ]
    if dp_epsilon is not None:
        training += [
            _term("dure:dpEpsilon", "lteq", dp_epsilon),
            _term("dure:dpDelta", "lteq", "0.00001"),
            _term("dure:dpClip", "lteq", "5.0"),
        ]
    releases = [f"urn:dure:site:{member}" for member in members] + [group]
    return {
        "@context": [ODRL_CONTEXT[0], dict(ODRL_CONTEXT[1])],
        "@type": "Set",
        "uid": f"urn:dure:policy:{site}:training",
        "profile": PROFILE,
        "assigner": f"urn:dure:site:{site}",
        "target": {
            "@type": "AssetCollection",
            "source": f"urn:dure:dataset:{site}",
            "refinement": [
                _term("dure:task", "isAnyOf", list(tasks)),
                _term("dure:tag", "isNoneOf", ["customer-confidential"]),
            ],
        },
        "dure:issued": format_timestamp(issued),
        "dure:onRevocation": on_revocation,
        "permission": [
            {"action": "use", "assignee": group, "constraint": training, "duty": _DUTIES},
            {
                "action": "derive",
                "assignee": group,
                "constraint": [training[0]],
                "duty": _DUTIES,
            },
            {
                "action": "distribute",
                "assignee": group,
                "constraint": [_term("recipient", "isAnyOf", list(releases))],
                "duty": [{"action": "attribute"}],
            },
        ],
        "prohibition": [
            {
                "action": "use",
                "constraint": [
                    _term(
                        "purpose",
                        "isAnyOf",
                        ["urn:dure:purpose:surveillance", "urn:dure:purpose:military"],
                    )
                ],
            }
        ],
    }


def example_policy(site: str = "factory-a", **options: Any) -> UsagePolicy:
    """Parse :func:`example_policy_value` (same arguments) into a :class:`UsagePolicy`."""
    return UsagePolicy.from_value(example_policy_value(site, **options))


def example_job_value(
    *,
    consortium: str = "robotics-coop",
    coordinator: str = "robotics-coop",
    members: Sequence[str] = _MEMBERS,
    purpose: str = EXAMPLE_PURPOSE,
    task: str = "pick-place",
    rounds: int = 20,
    issued: datetime = EXAMPLE_ISSUED,
    secure_aggregation: bool = False,
    dp: bool = True,
) -> dict[str, JsonValue]:
    """Return the JSON of a behaviour-cloning job on ``task`` across the ``members``."""
    privacy: JsonValue = {
        "epsilon": "4.0",
        "delta": "0.00001",
        "clip": "1.0",
        "noise_multiplier": "0.8",
        "mode": "server-fixed",
    }
    return {
        "type": "dure/job/v1",
        "job_id": f"bc-{task}-1",
        "consortium": f"urn:dure:consortium:{consortium}",
        "coordinator": f"urn:dure:coordinator:{coordinator}",
        "purpose": purpose,
        "model": {"name": "bc-mlp", "architecture": "mlp 39-256-256-4 relu", "parameters": 77060},
        "code_hash": to_hex(sha256(b"dure example training code v1")),
        "rounds": rounds,
        "aggregation": {
            "strategy": "fedavg",
            "secure": secure_aggregation,
            "norm_bound": "10.0",
            "params": {},
        },
        "dp": privacy if dp else None,
        "min_contributors": 3,
        "recipients": [f"urn:dure:site:{member}" for member in members],
        "episode_selector": [
            _term("dure:task", "isAnyOf", [task]),
            _term("dure:success", "eq", True),
        ],
        "issued": format_timestamp(issued),
        "expires": format_timestamp(issued + timedelta(days=90)),
        "duties_accepted": ["attribute", "dure:logToLedger"],
    }


def example_job(**options: Any) -> JobManifest:
    """Parse :func:`example_job_value` (same arguments) into a :class:`JobManifest`."""
    return JobManifest.from_value(example_job_value(**options))


def example_context(
    *,
    consortium: str = "robotics-coop",
    now: datetime = EXAMPLE_NOW,
    round: int = 0,
    contributors: int | None = None,
    epsilon_spent: str = "0",
    revoked: bool = False,
) -> RoundContext:
    """Return a :class:`RoundContext` for the example consortium (admission by default)."""
    return RoundContext(
        consortium=f"urn:dure:consortium:{consortium}",
        now=now,
        round=round,
        contributors=contributors,
        epsilon_spent=Decimal(epsilon_spent),
        revoked=revoked,
    )
