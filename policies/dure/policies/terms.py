"""The closed vocabulary of the Dure ODRL profile.

A usage policy may only use the terms listed here.  The document parsers read
actions, operands and operators as plain strings, so that a policy written for a
newer profile still parses; :mod:`dure.policies.evaluation` then checks every
term against these tables and *denies* on anything it does not know (closed
world), so a newer policy is never silently read as more permissive.

SPEC: ODRL Information Model 2.2 (W3C Recommendation, 2018-02-15), §2.5
Constraint, §2.6 Duty; ODRL Vocabulary & Expression 2.2, "Common Vocabulary"
for ``use``, ``derive``, ``distribute``, ``attribute``, ``purpose``,
``recipient``, ``dateTime``, ``count``, and the operators.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

__all__ = [
    "ACTIONS",
    "AGGREGATION_STRATEGIES",
    "DP_MODES",
    "DUTIES",
    "EPISODE_SOURCES",
    "FIXED_CLIPPING_DP_MODES",
    "ODRL_CONTEXT",
    "OPERANDS",
    "OPERATORS",
    "PROFILE",
    "REVOCATION_MODES",
    "SELECTOR_OPERANDS",
    "XSD_DATETIME",
    "OperandSpec",
    "ValueKind",
]

ODRL_CONTEXT: Final = ("http://www.w3.org/ns/odrl.jsonld", {"dure": "https://dure.dev/odrl/"})
"""The exact ``@context`` of every usage policy (checked, never expanded)."""

PROFILE: Final = "https://dure.dev/odrl/profile/v1"
"""The ODRL profile every usage policy declares."""

XSD_DATETIME: Final = "xsd:dateTime"
"""The ``@type`` of a typed date-time literal, the only typed literal accepted."""

ACTIONS: Final = frozenset({"use", "derive", "distribute"})
"""Rule actions: ``use`` (train on the episodes), ``derive`` (produce a model from
them), ``distribute`` (release that model to the job's recipients)."""

DUTIES: Final = frozenset({"attribute", "dure:logToLedger"})
"""Duty actions a permission may impose and a job must accept."""

OPERATORS: Final = frozenset({"eq", "lt", "lteq", "gt", "gteq", "isAnyOf", "isAllOf", "isNoneOf"})
"""Every operator the profile knows; each operand allows only some of them."""

AGGREGATION_STRATEGIES: Final = frozenset(
    {
        "fedavg",
        "fedavgm",
        "fedprox",
        "fedadam",
        "fedadagrad",
        "fedyogi",
        "fedmedian",
        "trimmed-mean",
        "krum",
        "multi-krum",
        "bulyan",
    }
)
"""Aggregation strategies a job may name (Flower's built-in strategies)."""

DP_MODES: Final = frozenset({"server-fixed", "server-adaptive", "client-fixed", "client-adaptive"})
"""Differential-privacy modes: where the noise is added, and whether the clipping
bound is fixed or adapted during training (Flower's four DP wrappers)."""

FIXED_CLIPPING_DP_MODES: Final = frozenset({"server-fixed", "client-fixed"})
"""The DP modes whose clipping bound stays what the job declares."""

EPISODE_SOURCES: Final = frozenset({"teleoperation", "scripted", "policy", "human-in-the-loop"})
"""How an episode was produced (the episode's ``source`` context field)."""

REVOCATION_MODES: Final = ("exclude-future", "retrain-without")
"""What revoking a policy means, from weakest to strongest."""


class ValueKind(Enum):
    """The type a constraint's ``rightOperand`` must have for its operand."""

    PURPOSE = "purpose id"
    PURPOSES = "list of purpose ids"
    PARTY = "party URN"
    PARTIES = "list of party URNs"
    DATETIME = 'typed literal {"@value": "YYYY-MM-DDTHH:MM:SSZ", "@type": "xsd:dateTime"}'
    COUNT = "non-negative integer"
    POSITIVE = "positive integer"
    BOOLEAN = "boolean"
    STRATEGIES = "list of aggregation strategy names"
    DECIMAL = 'decimal string such as "8.0"'
    PROBABILITY = 'decimal string below 1, such as "0.00001"'
    NAMES = "list of names"
    SOURCES = "list of episode sources"


@dataclass(frozen=True, slots=True)
class OperandSpec:
    """One ``leftOperand`` of the profile: the operators it takes and its value type.

    Parameters
    ----------
    name
        The term as written in the policy, e.g. ``"purpose"``.
    kinds
        The accepted ``rightOperand`` type for each accepted operator.
    in_prohibition
        Whether the operand may constrain a prohibition as well as a permission.
    meaning
        One line for people, shown in errors and in docs/policy-language.md.
    """

    name: str
    kinds: dict[str, ValueKind]
    in_prohibition: bool
    meaning: str


def _spec(
    name: str, kinds: dict[str, ValueKind], meaning: str, *, in_prohibition: bool = False
) -> tuple[str, OperandSpec]:
    return name, OperandSpec(name, kinds, in_prohibition, meaning)


_K = ValueKind
_DATES = {"lt": _K.DATETIME, "lteq": _K.DATETIME, "gt": _K.DATETIME, "gteq": _K.DATETIME}

OPERANDS: Final[dict[str, OperandSpec]] = dict(
    [
        _spec(
            "purpose",
            {"eq": _K.PURPOSE, "isAnyOf": _K.PURPOSES, "isNoneOf": _K.PURPOSES},
            "the job's declared purpose",
            in_prohibition=True,
        ),
        _spec(
            "recipient",
            {"isAnyOf": _K.PARTIES, "isNoneOf": _K.PARTIES},
            "each party the trained model is released to (the job's recipients)",
            in_prohibition=True,
        ),
        _spec(
            "dure:coordinator",
            {"eq": _K.PARTY, "isAnyOf": _K.PARTIES},
            "the coordinator that runs the job",
            in_prohibition=True,
        ),
        _spec(
            "dateTime",
            _DATES,
            "the time of evaluation (lt/lteq: expiry; gt/gteq: not before)",
            in_prohibition=True,
        ),
        _spec("count", {"lteq": _K.COUNT, "lt": _K.COUNT}, "the number of training rounds"),
        _spec(
            "dure:minContributors",
            {"gteq": _K.POSITIVE},
            "contributors per aggregate (declared by the job, and counted when known)",
        ),
        _spec(
            "dure:secureAggregation",
            {"eq": _K.BOOLEAN},
            "true: the job must use secure aggregation; false: not required",
        ),
        _spec(
            "dure:aggregation",
            {"isAnyOf": _K.STRATEGIES, "isNoneOf": _K.STRATEGIES},
            "the job's aggregation strategy",
            in_prohibition=True,
        ),
        _spec(
            "dure:dpEpsilon",
            {"lteq": _K.DECIMAL},
            "total ε budget on this data: ε already spent plus the job's ε",
        ),
        _spec("dure:dpDelta", {"lteq": _K.PROBABILITY}, "the job's δ"),
        _spec("dure:dpClip", {"lteq": _K.DECIMAL}, "the job's fixed clipping bound (L2 norm)"),
    ]
)
"""Operands of permission and prohibition constraints."""

_NAMES = {"isAnyOf": _K.NAMES, "isNoneOf": _K.NAMES}

SELECTOR_OPERANDS: Final[dict[str, OperandSpec]] = dict(
    [
        _spec("dure:task", _NAMES, "the episode's task name"),
        _spec("dure:cell", _NAMES, "the robot cell that recorded the episode"),
        _spec("dure:robot", _NAMES, "the robot (embodiment) that performed the episode"),
        _spec("dure:source", {"isAnyOf": _K.SOURCES, "isNoneOf": _K.SOURCES}, "how it was made"),
        _spec("dure:recordedAt", _DATES, "the episode's start time"),
        _spec(
            "dure:tag",
            {"isAnyOf": _K.NAMES, "isAllOf": _K.NAMES, "isNoneOf": _K.NAMES},
            "the episode's catalog tags",
        ),
        _spec("dure:success", {"eq": _K.BOOLEAN}, "whether the episode succeeded"),
    ]
)
"""Operands of episode selectors (``target.refinement`` and a job's ``episode_selector``)."""
