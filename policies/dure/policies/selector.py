"""Episode selectors: which of a site's episodes a job may train on.

A selector is a conjunction of constraints over an episode's catalog facts
(task, cell, robot, source, start time, tags, success), written with the
operands of :data:`dure.policies.terms.SELECTOR_OPERANDS`.  A policy narrows its
dataset with ``target.refinement``; a job may narrow further with its
``episode_selector``.  The selector a factory applies is the intersection of the
two: every term of both must hold.  A term the factory does not understand
matches no episode (closed world).  No terms at all select every episode the
policy covers.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from dure.policies.canonical import JsonValue
from dure.policies.policy import Constraint
from dure.policies.terms import SELECTOR_OPERANDS
from dure.policies.values import Value, checked_value, compare, show

__all__ = ["EpisodeFacts", "EpisodeRow", "EpisodeSelector"]

_NAME_SETS = ("dure:task", "dure:cell", "dure:robot", "dure:source")


class EpisodeFacts(Protocol):
    """What a selector may read of one episode: the catalog's summary row fits.

    ``source`` is how the episode was produced (``teleoperation``,
    ``scripted``, ``policy``, ``human-in-the-loop``); ``start_time`` is
    timezone-aware; a ``success`` of ``None`` (unknown) never matches
    ``dure:success``.
    """

    @property
    def task(self) -> str:
        """The task name."""
        ...

    @property
    def cell(self) -> str:
        """The robot cell that recorded the episode."""
        ...

    @property
    def robot(self) -> str:
        """The robot that performed it."""
        ...

    @property
    def source(self) -> str:
        """How it was produced."""
        ...

    @property
    def start_time(self) -> datetime:
        """When it started (timezone-aware)."""
        ...

    @property
    def tags(self) -> Collection[str]:
        """Its catalog tags."""
        ...

    @property
    def success(self) -> bool | None:
        """Its outcome, None when unknown."""
        ...


@dataclass(frozen=True, slots=True)
class EpisodeRow:
    """A plain :class:`EpisodeFacts` (for tests, examples and callers without a catalog)."""

    task: str
    cell: str
    robot: str
    source: str
    start_time: datetime
    tags: frozenset[str] = frozenset()
    success: bool | None = None


_SUBJECTS: dict[str, Callable[[EpisodeFacts], Any]] = {
    "dure:task": lambda facts: facts.task,
    "dure:cell": lambda facts: facts.cell,
    "dure:robot": lambda facts: facts.robot,
    "dure:source": lambda facts: facts.source,
    "dure:recordedAt": lambda facts: facts.start_time,
    "dure:success": lambda facts: facts.success,
}


@dataclass(frozen=True, slots=True)
class EpisodeSelector:
    """A conjunction of selector terms; see the module docstring."""

    terms: tuple[Constraint, ...] = field(default=())

    @classmethod
    def intersect(cls, *parts: Iterable[Constraint]) -> EpisodeSelector:
        """Return the selector that keeps only episodes every part keeps."""
        return cls(tuple(term for part in parts for term in part))

    def matches(self, facts: EpisodeFacts) -> bool:
        """Whether the episode described by ``facts`` is selected."""
        return all(_term_matches(term, facts) for term in self.terms)

    def is_empty(self) -> bool:
        """Whether the terms provably select no episode at all.

        True when a term is not understood, when the allowed names of one
        operand have no value in common, when the time range is empty, or
        when the tags or the outcome contradict each other.  A ``False`` answer
        does not promise that the catalog holds a matching episode.
        """
        values = [(term, checked_value(term, SELECTOR_OPERANDS)) for term in self.terms]
        if any(value is None for _, value in values):
            return True
        checked = [(term, value) for term, value in values if value is not None]
        return (
            any(_names_empty(checked, operand) for operand in _NAME_SETS)
            or _time_empty(checked)
            or _tags_empty(checked)
            or len({v for t, v in checked if t.left_operand == "dure:success"}) > 1
        )

    def to_json_value(self) -> list[JsonValue]:
        """Return the terms as ODRL constraint objects."""
        return [term.model_dump(mode="json", by_alias=True) for term in self.terms]

    def describe(self) -> str:
        """Render the selector on one line for people."""
        if not self.terms:
            return "every episode of the dataset"
        return " and ".join(
            f"{t.left_operand} {t.operator} {show(t.right_operand)}" for t in self.terms
        )


def _term_matches(term: Constraint, facts: EpisodeFacts) -> bool:
    value = checked_value(term, SELECTOR_OPERANDS)
    if value is None:
        return False
    if term.left_operand == "dure:tag":
        return _tags_match(term.operator, frozenset(facts.tags), value)
    subject = _SUBJECTS[term.left_operand](facts)
    return subject is not None and compare(term.operator, subject, value)


def _tags_match(operator: str, tags: frozenset[str], value: Value) -> bool:
    wanted = frozenset(value) if isinstance(value, tuple) else frozenset()
    if operator == "isAllOf":
        return wanted <= tags
    if operator == "isAnyOf":
        return bool(wanted & tags)
    return operator == "isNoneOf" and not wanted & tags


def _names_empty(checked: list[tuple[Constraint, Value]], operand: str) -> bool:
    allowed: set[Any] | None = None
    excluded: set[Any] = set()
    for term, value in checked:
        if term.left_operand != operand or not isinstance(value, tuple):
            continue
        if term.operator == "isAnyOf":
            allowed = set(value) if allowed is None else allowed & set(value)
        else:
            excluded |= set(value)
    return allowed is not None and not allowed - excluded


def _time_empty(checked: list[tuple[Constraint, Value]]) -> bool:
    lower: list[tuple[datetime, bool]] = []  # (bound, strict)
    upper: list[tuple[datetime, bool]] = []
    for term, value in checked:
        if term.left_operand == "dure:recordedAt" and isinstance(value, datetime):
            bounds = lower if term.operator in ("gt", "gteq") else upper
            bounds.append((value, term.operator in ("gt", "lt")))
    if not lower or not upper:
        return False
    low, low_strict = max(lower)  # at equal times the strict bound sorts last
    high, high_strict = min(upper, key=lambda bound: (bound[0], not bound[1]))
    return low > high or (low == high and (low_strict or high_strict))


def _tags_empty(checked: list[tuple[Constraint, Value]]) -> bool:
    tags = [
        (term.operator, set(value))
        for term, value in checked
        if term.left_operand == "dure:tag" and isinstance(value, tuple)
    ]
    none_of: set[str] = set().union(*(v for op, v in tags if op == "isNoneOf"))
    all_of: set[str] = set().union(*(v for op, v in tags if op == "isAllOf"))
    any_of = [v for op, v in tags if op == "isAnyOf"]
    return bool(all_of & none_of) or any(v <= none_of for v in any_of)
