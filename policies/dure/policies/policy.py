"""The usage policy: what a factory's data may be used for, as an ODRL 2.2 document.

A :class:`UsagePolicy` is ODRL 2.2 compact JSON read as plain JSON, never
expanded as RDF.  Its structure is strict: an unknown field anywhere is a
:class:`~dure.policies.errors.DocumentError`.  Its *terms* (actions, operands,
operators, duty actions) are read as plain strings and judged later, closed
world, by :mod:`dure.policies.evaluation`, which denies on any term missing
from :mod:`dure.policies.terms`.  docs/policy-language.md is the reference.

Shape (every field required unless a default is shown)::

    {"@context": ["http://www.w3.org/ns/odrl.jsonld", {"dure": "https://dure.dev/odrl/"}],
     "@type": "Set", "uid": "urn:dure:policy:<site>:<label>",
     "profile": "https://dure.dev/odrl/profile/v1", "assigner": "urn:dure:site:<site>",
     "target": {"@type": "AssetCollection", "source": "urn:dure:dataset:<site>",
                "refinement": [<constraint>, ...] = []},
     "dure:issued": "2026-11-01T00:00:00Z",
     "dure:onRevocation": "exclude-future" | "retrain-without",
     "permission": [{"action", "assignee", "constraint": [] , "duty": [{"action"}] = []}],
     "prohibition": [{"action", "constraint": []}] = []}

SPEC: ODRL Information Model 2.2 §2.1 Policy (Set), §2.2.3 AssetCollection with
refinement, §2.3 Party, §2.5 Constraint, §2.6 Permission/Prohibition/Duty.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictStr,
    model_validator,
)

from dure.policies.canonical import JsonValue
from dure.policies.document import CanonicalDocument
from dure.policies.literals import NAME_RE, SiteUrn, Timestamp, party_name
from dure.policies.terms import ODRL_CONTEXT

__all__ = [
    "AssetCollection",
    "Constraint",
    "Duty",
    "Permission",
    "Prohibition",
    "RevocationMode",
    "RightOperand",
    "TypedLiteral",
    "UsagePolicy",
]

RevocationMode = Literal["exclude-future", "retrain-without"]
"""What revoking means; the same values as :data:`dure.policies.terms.REVOCATION_MODES`."""
_UID = re.compile(rf"urn:dure:policy:({NAME_RE}):({NAME_RE})\Z")


@dataclass(frozen=True, slots=True)
class TypedLiteral:
    """An RDF typed literal written ``{"@value": ..., "@type": ...}`` (e.g. a date-time)."""

    value: str
    type: str


RightOperand = str | int | bool | tuple[str, ...] | TypedLiteral
"""What a constraint compares against; the operand decides which shape is valid."""


def _right_operand(value: object) -> RightOperand:
    if isinstance(value, bool | int | str | TypedLiteral):
        return value
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return tuple(value)
    if (
        isinstance(value, Mapping)
        and set(value) == {"@value", "@type"}
        and all(isinstance(item, str) for item in value.values())
    ):
        return TypedLiteral(value["@value"], value["@type"])
    raise ValueError(
        "rightOperand must be a string, an integer, a boolean, a list of strings or "
        'a typed literal {"@value": ..., "@type": ...}'
    )


def _dump_right_operand(value: RightOperand) -> JsonValue:
    if isinstance(value, TypedLiteral):
        return {"@value": value.value, "@type": value.type}
    if isinstance(value, tuple):
        return list(value)
    return value


def _odrl_context(value: object) -> tuple[str, tuple[tuple[str, str], ...]]:
    expected = [ODRL_CONTEXT[0], dict(ODRL_CONTEXT[1])]
    if isinstance(value, list | tuple) and list(value) == expected:
        return ODRL_CONTEXT[0], tuple(sorted(ODRL_CONTEXT[1].items()))
    raise ValueError(f"@context must be exactly {expected}")


def _dump_context(value: tuple[str, tuple[tuple[str, str], ...]]) -> JsonValue:
    return [value[0], dict(value[1])]


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Constraint(_Part):
    """One ODRL constraint: ``leftOperand`` ``operator`` ``rightOperand``.

    The operand and operator are plain strings here; whether they are known,
    and allowed together, is decided at evaluation (closed world).
    """

    left_operand: StrictStr = Field(alias="leftOperand")
    operator: StrictStr
    right_operand: Annotated[
        RightOperand,
        PlainValidator(_right_operand),
        PlainSerializer(_dump_right_operand, return_type=Any),
    ] = Field(alias="rightOperand")


class Duty(_Part):
    """An obligation the assignee takes on when it exercises a permission."""

    action: StrictStr


class Permission(_Part):
    """Grants ``assignee`` one ``action`` on the target, under every constraint listed."""

    action: StrictStr
    assignee: StrictStr
    constraint: tuple[Constraint, ...] = ()
    duty: tuple[Duty, ...] = ()


class Prohibition(_Part):
    """Forbids ``action`` to everyone whenever every constraint listed holds."""

    action: StrictStr
    constraint: tuple[Constraint, ...] = ()


class AssetCollection(_Part):
    """The site's dataset, narrowed by ``refinement`` to the episodes a job may select."""

    type: Literal["AssetCollection"] = Field(alias="@type")
    source: StrictStr
    refinement: tuple[Constraint, ...] = ()


class UsagePolicy(CanonicalDocument):
    """A site's signed data-usage policy (ODRL 2.2 ``Set`` in the Dure profile).

    Besides the field checks, the site named in ``uid``, ``assigner`` and
    ``target.source`` must be the same.  Build one with :meth:`from_json_bytes`,
    :meth:`from_canonical_bytes` or :meth:`from_value`.
    """

    document_kind = "usage policy"

    context: Annotated[
        tuple[str, tuple[tuple[str, str], ...]],
        PlainValidator(_odrl_context),
        PlainSerializer(_dump_context, return_type=Any),
    ] = Field(alias="@context")
    type: Literal["Set"] = Field(alias="@type")
    uid: StrictStr
    profile: Literal["https://dure.dev/odrl/profile/v1"]
    assigner: SiteUrn
    target: AssetCollection
    issued: Timestamp = Field(alias="dure:issued")
    on_revocation: RevocationMode = Field(alias="dure:onRevocation")
    permission: tuple[Permission, ...]
    prohibition: tuple[Prohibition, ...] = ()

    @model_validator(mode="after")
    def _one_site(self) -> UsagePolicy:
        site = party_name(self.assigner)
        match = _UID.match(self.uid)
        if match is None or match.group(1) != site:
            raise ValueError(
                f"uid {self.uid[:80]!r} must be urn:dure:policy:{site}:<label> "
                f"(the assigner's site, then a label)"
            )
        if self.target.source != f"urn:dure:dataset:{site}":
            raise ValueError(
                f"target.source {self.target.source[:80]!r} must be "
                f"urn:dure:dataset:{site}, the assigner's own dataset"
            )
        return self

    @property
    def site(self) -> str:
        """The site (``urn:dure:site:<name>``) whose data the policy governs."""
        return self.assigner

    @property
    def label(self) -> str:
        """The label part of ``uid``, which tells a site's policies apart."""
        return self.uid.rsplit(":", 1)[1]

    def permissions_for(self, action: str) -> tuple[tuple[int, Permission], ...]:
        """Return ``(index, permission)`` for every permission of ``action``."""
        return tuple((i, p) for i, p in enumerate(self.permission) if p.action == action)
