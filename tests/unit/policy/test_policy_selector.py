"""Episode selectors: matching catalog rows, intersection, and provable emptiness."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dure.policies.policy import Constraint
from dure.policies.selector import EpisodeRow, EpisodeSelector

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def c(operand: str, operator: str, value: Any) -> Constraint:
    return Constraint.model_validate(
        {"leftOperand": operand, "operator": operator, "rightOperand": value}
    )


def dt(moment: datetime) -> dict[str, str]:
    return {"@value": moment.strftime("%Y-%m-%dT%H:%M:%SZ"), "@type": "xsd:dateTime"}


ROW = EpisodeRow(
    task="pick-place",
    cell="cell-1",
    robot="ur5e-01",
    source="teleoperation",
    start_time=T0,
    tags=frozenset({"day-shift", "calibrated"}),
    success=True,
)

MATCHES = [
    (c("dure:task", "isAnyOf", ["pick-place", "push"]), True),
    (c("dure:task", "isAnyOf", ["push"]), False),
    (c("dure:task", "isNoneOf", ["push"]), True),
    (c("dure:task", "isNoneOf", ["pick-place"]), False),
    (c("dure:cell", "isAnyOf", ["cell-1"]), True),
    (c("dure:cell", "isNoneOf", ["cell-1"]), False),
    (c("dure:robot", "isAnyOf", ["ur5e-02"]), False),
    (c("dure:source", "isAnyOf", ["teleoperation", "scripted"]), True),
    (c("dure:source", "isNoneOf", ["teleoperation"]), False),
    (c("dure:recordedAt", "gteq", dt(T0)), True),
    (c("dure:recordedAt", "gt", dt(T0)), False),
    (c("dure:recordedAt", "lt", dt(T0)), False),
    (c("dure:recordedAt", "lteq", dt(T0)), True),
    (c("dure:recordedAt", "lt", dt(T0 + timedelta(seconds=1))), True),
    (c("dure:tag", "isAnyOf", ["night-shift", "calibrated"]), True),
    (c("dure:tag", "isAnyOf", ["night-shift"]), False),
    (c("dure:tag", "isAllOf", ["day-shift", "calibrated"]), True),
    (c("dure:tag", "isAllOf", ["day-shift", "night-shift"]), False),
    (c("dure:tag", "isNoneOf", ["customer-confidential"]), True),
    (c("dure:tag", "isNoneOf", ["calibrated"]), False),
    (c("dure:success", "eq", True), True),
    (c("dure:success", "eq", False), False),
    # closed world: not understood never matches
    (c("dure:shift", "isAnyOf", ["day"]), False),
    (c("dure:task", "eq", "pick-place"), False),
    (c("dure:task", "isAnyOf", []), False),
    (c("dure:recordedAt", "gteq", "2026-06-01T00:00:00Z"), False),
    (c("dure:source", "isAnyOf", ["imagined"]), False),
]


@pytest.mark.parametrize(("term", "expected"), MATCHES, ids=str)
def test_each_term_matches(term: Constraint, expected: bool) -> None:
    assert EpisodeSelector((term,)).matches(ROW) is expected


def test_unknown_success_never_matches() -> None:
    row = EpisodeRow("pick-place", "cell-1", "ur5e-01", "scripted", T0, success=None)
    assert not EpisodeSelector((c("dure:success", "eq", True),)).matches(row)
    assert not EpisodeSelector((c("dure:success", "eq", False),)).matches(row)


def test_empty_selector_selects_everything_and_says_so() -> None:
    selector = EpisodeSelector()
    assert selector.matches(ROW) and not selector.is_empty()
    assert selector.describe() == "every episode of the dataset"


def test_intersection_is_conjunction() -> None:
    left = [c("dure:task", "isAnyOf", ["pick-place", "push"])]
    right = [c("dure:task", "isAnyOf", ["push"])]
    both = EpisodeSelector.intersect(left, right)
    assert both.terms == (*left, *right)
    assert not both.matches(ROW)
    assert both.to_json_value()[1] == {
        "leftOperand": "dure:task",
        "operator": "isAnyOf",
        "rightOperand": ["push"],
    }
    assert "dure:task isAnyOf [push]" in both.describe()


EMPTY = [
    ([c("dure:task", "isAnyOf", ["a"]), c("dure:task", "isAnyOf", ["b"])], True),
    ([c("dure:task", "isAnyOf", ["a", "b"]), c("dure:task", "isAnyOf", ["b"])], False),
    ([c("dure:task", "isAnyOf", ["a"]), c("dure:task", "isNoneOf", ["a"])], True),
    ([c("dure:cell", "isAnyOf", ["a"]), c("dure:task", "isAnyOf", ["b"])], False),
    ([c("dure:recordedAt", "gteq", dt(T0)), c("dure:recordedAt", "lteq", dt(T0))], False),
    ([c("dure:recordedAt", "gt", dt(T0)), c("dure:recordedAt", "lteq", dt(T0))], True),
    ([c("dure:recordedAt", "gteq", dt(T0)), c("dure:recordedAt", "lt", dt(T0))], True),
    ([c("dure:recordedAt", "gteq", dt(T0)), c("dure:recordedAt", "gt", dt(T0)),
      c("dure:recordedAt", "lteq", dt(T0))], True),
    ([c("dure:tag", "isAllOf", ["x"]), c("dure:tag", "isNoneOf", ["x", "y"])], True),
    ([c("dure:tag", "isAnyOf", ["x", "y"]), c("dure:tag", "isNoneOf", ["x", "y"])], True),
    ([c("dure:tag", "isAnyOf", ["x", "z"]), c("dure:tag", "isNoneOf", ["x", "y"])], False),
    ([c("dure:success", "eq", True), c("dure:success", "eq", False)], True),
    ([c("dure:success", "eq", True), c("dure:success", "eq", True)], False),
    ([c("dure:unknown", "eq", True)], True),
]  # fmt: skip


@pytest.mark.parametrize(("terms", "empty"), EMPTY, ids=str)
def test_is_empty(terms: list[Constraint], empty: bool) -> None:
    assert EpisodeSelector(tuple(terms)).is_empty() is empty


# --- property: is_empty() is sound against an exhaustive little universe -------------------

NAMES = ["a", "b", "c"]
TIMES = [T0 + timedelta(hours=h) for h in range(3)]
UNIVERSE = [
    EpisodeRow(task, cell, "r", source, moment, frozenset(tags), success)
    for task, cell, source, moment, tags, success in itertools.product(
        NAMES, NAMES, ["scripted", "policy"], TIMES,
        [(), ("a",), ("b",), ("a", "b"), ("c",)], [True, False],
    )
]  # fmt: skip

names = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True)
terms = st.one_of(
    st.builds(c, st.sampled_from(["dure:task", "dure:cell"]),
              st.sampled_from(["isAnyOf", "isNoneOf"]), names),
    st.builds(c, st.just("dure:tag"), st.sampled_from(["isAnyOf", "isAllOf", "isNoneOf"]), names),
    st.builds(c, st.just("dure:recordedAt"), st.sampled_from(["lt", "lteq", "gt", "gteq"]),
              st.sampled_from(TIMES).map(dt)),
    st.builds(c, st.just("dure:success"), st.just("eq"), st.booleans()),
    st.builds(c, st.just("dure:source"), st.just("isAnyOf"),
              st.lists(st.sampled_from(["scripted", "policy"]), min_size=1, unique=True)),
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(terms, max_size=5))
def test_is_empty_is_sound(selected: list[Constraint]) -> None:
    selector = EpisodeSelector(tuple(selected))
    if selector.is_empty():
        assert not any(selector.matches(row) for row in UNIVERSE)


# "z" stands for every name no selector mentions, so emptiness here is emptiness anywhere.
NAME_UNIVERSE = [
    EpisodeRow(task, cell, "r", "scripted", T0)
    for task, cell in itertools.product([*NAMES, "z"], repeat=2)
]
name_terms = st.builds(
    c,
    st.sampled_from(["dure:task", "dure:cell"]),
    st.sampled_from(["isAnyOf", "isNoneOf"]),
    names,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(name_terms, max_size=5))
def test_is_empty_is_exact_for_name_sets(selected: list[Constraint]) -> None:
    selector = EpisodeSelector(tuple(selected))
    assert selector.is_empty() is not any(selector.matches(row) for row in NAME_UNIVERSE)
