"""Reading a constraint's ``rightOperand`` as the type its operand requires.

The document parser accepts any string, integer, boolean, list of strings or
typed literal as a ``rightOperand``; which one is right depends on the operand
and operator (:data:`dure.policies.terms.OPERANDS`).  :func:`parse_value`
checks that and returns a Python value to compare against, or raises
:class:`ValueError` with a message for the decision's reasons.  :func:`compare`
applies an ODRL operator to a scalar subject.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, TypeAlias

from dure.policies.literals import (
    check_name,
    check_party,
    check_purpose_pattern,
    parse_decimal,
    parse_timestamp,
)
from dure.policies.policy import Constraint, RightOperand, TypedLiteral
from dure.policies.terms import (
    AGGREGATION_STRATEGIES,
    EPISODE_SOURCES,
    OPERATORS,
    XSD_DATETIME,
    OperandSpec,
    ValueKind,
)

__all__ = ["Value", "checked_value", "compare", "parse_value", "show", "term_problem"]

Value: TypeAlias = str | int | bool | Decimal | datetime | tuple[str, ...]
"""A checked ``rightOperand``: lists are tuples of strings, decimals are Decimals."""


def parse_value(kind: ValueKind, right: RightOperand) -> Value:
    """Check ``right`` against ``kind`` and return it as a comparable value.

    Raises
    ------
    ValueError
        If ``right`` does not have the shape or range ``kind`` requires; lists
        must hold at least one value (an empty any-of or all-of denies).
    """
    value, problem = _parse_cached(kind, right)
    if problem is not None:
        raise ValueError(problem)
    return value


@lru_cache(maxsize=4096, typed=True)  # pure: the same term always parses the same way
def _parse_cached(kind: ValueKind, right: RightOperand) -> tuple[Value, str | None]:
    try:
        return _PARSERS[kind](right), None
    except ValueError as exc:
        return "", str(exc)


def term_problem(
    term: Constraint, table: Mapping[str, OperandSpec], *, prohibition: bool = False
) -> tuple[str, str] | None:
    """Say what is wrong with ``term`` under the vocabulary ``table``, if anything.

    Returns
    -------
    tuple[str, str] | None
        ``(problem, message)`` with problem ``"operand"`` (unknown, or not
        allowed in a prohibition), ``"operator"`` (unknown or not allowed with
        this operand) or ``"value"`` (wrong ``rightOperand``); ``None`` if the
        term is fully understood.
    """
    spec = table.get(term.left_operand)
    if spec is None:
        return "operand", f"unknown leftOperand {term.left_operand[:80]!r}"
    if prohibition and not spec.in_prohibition:
        return "operand", f"{spec.name} cannot constrain a prohibition"
    kind = spec.kinds.get(term.operator)
    if kind is None:
        known = "unknown" if term.operator not in OPERATORS else "not allowed with this operand"
        return "operator", (
            f"operator {term.operator[:40]!r} is {known} for {spec.name} "
            f"(allowed: {', '.join(sorted(spec.kinds))})"
        )
    try:
        parse_value(kind, term.right_operand)
    except ValueError as exc:
        return "value", f"{spec.name} {term.operator}: {exc}; expected a {kind.value}"
    return None


def checked_value(term: Constraint, table: Mapping[str, OperandSpec]) -> Value | None:
    """Return the term's parsed ``rightOperand``, or ``None`` if the term is not understood."""
    spec = table.get(term.left_operand)
    kind = spec.kinds.get(term.operator) if spec is not None else None
    if kind is None:
        return None
    try:
        return parse_value(kind, term.right_operand)
    except ValueError:
        return None


def compare(
    operator: str, subject: Any, value: Value, same: Callable[[Any, Any], bool] | None = None
) -> bool:
    """Apply an ODRL operator to a scalar ``subject``; unknown operators never hold.

    ``same(subject, item)`` decides equality for ``eq``, ``isAnyOf`` and
    ``isNoneOf`` (plain ``==`` by default; purposes match across versions).
    """
    equal = same or _equal
    if operator == "eq":
        return equal(subject, value)
    if operator in ("isAnyOf", "isNoneOf"):
        found = isinstance(value, tuple) and any(equal(subject, item) for item in value)
        return found if operator == "isAnyOf" else isinstance(value, tuple) and not found
    order = _ORDER.get(operator)
    return order is not None and not isinstance(value, tuple) and order(subject, value)


def show(right: RightOperand) -> str:
    """Render a ``rightOperand`` briefly for a reason's message."""
    if isinstance(right, TypedLiteral):
        return right.value
    if isinstance(right, tuple):
        return "[" + ", ".join(right) + "]"
    return repr(right) if isinstance(right, str) else str(right).lower()


def _equal(subject: Any, item: Any) -> bool:
    return bool(subject == item)


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "lt": lambda a, b: bool(a < b),
    "lteq": lambda a, b: bool(a <= b),
    "gt": lambda a, b: bool(a > b),
    "gteq": lambda a, b: bool(a >= b),
}


def _text(right: RightOperand) -> str:
    if not isinstance(right, str):
        raise ValueError(f"expected a string, got {show(right)}")
    return right


def _texts(check: Callable[[str], object]) -> Callable[[RightOperand], Value]:
    def parse(right: RightOperand) -> Value:
        if not isinstance(right, tuple) or not right:
            raise ValueError(f"expected a non-empty list, got {show(right)}")
        for item in right:
            check(item)
        return right

    return parse


def _member(allowed: frozenset[str], what: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"{text[:80]!r} is not a known {what}: {sorted(allowed)}")
        return text

    return check


def _integer(minimum: int) -> Callable[[RightOperand], Value]:
    def parse(right: RightOperand) -> Value:
        if isinstance(right, bool) or not isinstance(right, int) or right < minimum:
            raise ValueError(f"expected an integer >= {minimum}, got {show(right)}")
        return right

    return parse


def _boolean(right: RightOperand) -> Value:
    if not isinstance(right, bool):
        raise ValueError(f"expected true or false, got {show(right)}")
    return right


def _datetime(right: RightOperand) -> Value:
    if not isinstance(right, TypedLiteral) or right.type != XSD_DATETIME:
        raise ValueError(f'expected {{"@value": "...Z", "@type": "{XSD_DATETIME}"}}')
    return parse_timestamp(right.value)


def _decimal(below_one: bool) -> Callable[[RightOperand], Value]:
    def parse(right: RightOperand) -> Value:
        value = parse_decimal(_text(right))
        if below_one and value >= 1:
            raise ValueError(f"expected a decimal below 1, got {right!r}")
        return value

    return parse


_PARSERS: dict[ValueKind, Callable[[RightOperand], Value]] = {
    ValueKind.PURPOSE: lambda right: check_purpose_pattern(_text(right)),
    ValueKind.PURPOSES: _texts(check_purpose_pattern),
    ValueKind.PARTY: lambda right: check_party(_text(right)),
    ValueKind.PARTIES: _texts(check_party),
    ValueKind.DATETIME: _datetime,
    ValueKind.COUNT: _integer(0),
    ValueKind.POSITIVE: _integer(1),
    ValueKind.BOOLEAN: _boolean,
    ValueKind.STRATEGIES: _texts(_member(AGGREGATION_STRATEGIES, "aggregation strategy")),
    ValueKind.DECIMAL: _decimal(below_one=False),
    ValueKind.PROBABILITY: _decimal(below_one=True),
    ValueKind.NAMES: _texts(check_name),
    ValueKind.SOURCES: _texts(_member(EPISODE_SOURCES, "episode source")),
}
