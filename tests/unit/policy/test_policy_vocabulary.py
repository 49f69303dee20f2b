"""The vocabulary tables, the typed literals, the public surface and the reference doc agree."""

from __future__ import annotations

import importlib
import inspect
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import get_args

import pytest

from dure.policies import job, policy, terms
from dure.policies.constraints import SUBJECT_OPERANDS
from dure.policies.decision import RoundContext
from dure.policies.examples import example_job_value, example_policy_value
from dure.policies.literals import (
    check_decimal,
    check_name,
    check_party,
    check_purpose_pattern,
    format_timestamp,
    parse_timestamp,
    purpose_matches,
)
from dure.policies.values import compare

REPO = Path(__file__).resolve().parents[3]
MODULES = [
    "terms", "literals", "document", "policy", "job", "revocation", "values", "selector",
    "decision", "constraints", "evaluation", "examples",
]  # fmt: skip


@pytest.mark.parametrize("name", MODULES)
def test_public_surface_is_all(name: str) -> None:
    module = importlib.import_module(f"dure.policies.{name}")
    exported = module.__all__
    assert len(set(exported)) == len(exported)
    assert all(hasattr(module, item) for item in exported)
    defined = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and (inspect.isclass(v) or inspect.isfunction(v))
        and v.__module__ == module.__name__
    }
    assert defined <= set(exported)


def test_every_operand_has_a_meaning() -> None:
    assert set(terms.OPERANDS) == SUBJECT_OPERANDS


def test_literal_types_mirror_the_tables() -> None:
    assert set(get_args(job.AggregationStrategy)) == terms.AGGREGATION_STRATEGIES
    assert set(get_args(job.DpMode)) == terms.DP_MODES
    assert get_args(policy.RevocationMode) == terms.REVOCATION_MODES
    assert terms.FIXED_CLIPPING_DP_MODES < terms.DP_MODES
    profile = policy.UsagePolicy.model_fields["profile"].annotation
    assert get_args(profile) == (terms.PROFILE,)


def test_tables_use_known_operators_only() -> None:
    for table in (terms.OPERANDS, terms.SELECTOR_OPERANDS):
        for spec in table.values():
            assert set(spec.kinds) <= terms.OPERATORS, spec.name
    assert not set(terms.OPERANDS) & set(terms.SELECTOR_OPERANDS)


def test_reference_documents_every_term() -> None:
    doc = (REPO / "docs" / "policy-language.md").read_text(encoding="utf-8")
    words = [
        *terms.ACTIONS, *terms.DUTIES, *terms.OPERATORS, *terms.OPERANDS,
        *terms.SELECTOR_OPERANDS, *terms.AGGREGATION_STRATEGIES, *terms.DP_MODES,
        *terms.EPISODE_SOURCES, *terms.REVOCATION_MODES, terms.PROFILE,
    ]  # fmt: skip
    missing = [word for word in words if f"`{word}`" not in doc]
    assert not missing, f"docs/policy-language.md does not mention {missing}"


@pytest.mark.parametrize(
    ("text", "ok"),
    [("factory-a", True), ("a", True), ("a.b_c-1", True), ("-a", False), ("A", False),
     ("", False), ("a" * 63, True), ("a" * 64, False), ("a:b", False), ("a\n", False)],
)  # fmt: skip
def test_names(text: str, ok: bool) -> None:
    if ok:
        assert check_name(text) == text
    else:
        with pytest.raises(ValueError):
            check_name(text)


def test_parties_and_purposes() -> None:
    assert check_party("urn:dure:org:acme") == "urn:dure:org:acme"
    with pytest.raises(ValueError):
        check_party("urn:dure:org:acme", "site")
    with pytest.raises(ValueError):
        check_party("urn:dure:person:acme")
    assert check_purpose_pattern("urn:dure:purpose:x") == "urn:dure:purpose:x"
    for bad in ("urn:dure:purpose:", "urn:dure:purpose:x:v0", "urn:dure:purpose:x:2"):
        with pytest.raises(ValueError):
            check_purpose_pattern(bad)
    with pytest.raises(ValueError):
        check_purpose_pattern("urn:dure:purpose:x", versioned=True)
    assert purpose_matches("urn:dure:purpose:x", "urn:dure:purpose:x:v3")
    assert purpose_matches("urn:dure:purpose:x:v3", "urn:dure:purpose:x:v3")
    assert not purpose_matches("urn:dure:purpose:x:v3", "urn:dure:purpose:x:v31")
    assert not purpose_matches("urn:dure:purpose:x", "urn:dure:purpose:xy:v1")


def test_timestamps_have_one_spelling() -> None:
    moment = parse_timestamp("2026-11-01T00:00:00Z")
    assert moment == datetime(2026, 11, 1, tzinfo=UTC)
    assert format_timestamp(moment.astimezone(timezone(timedelta(hours=9)))) == (
        "2026-11-01T00:00:00Z"
    )
    for bad in ("2026-11-01T00:00:00", "2026-11-01T00:00:00.5Z", "2026-11-01 00:00:00Z",
                "2026-13-01T00:00:00Z", "2026-11-01t00:00:00z"):  # fmt: skip
        with pytest.raises(ValueError):
            parse_timestamp(bad)


@pytest.mark.parametrize(
    ("text", "ok"),
    [("0", True), ("8.0", True), ("0.00001", True), ("10", True), ("-1", False), ("1e3", False),
     ("01", False), (".5", False), ("5.", False), ("NaN", False), ("1_000", False)],
)  # fmt: skip
def test_decimals(text: str, ok: bool) -> None:
    if ok:
        assert Decimal(check_decimal(text)) >= 0
    else:
        with pytest.raises(ValueError):
            check_decimal(text)


@pytest.mark.parametrize(
    ("operator", "subject", "value", "expected"),
    [("eq", 1, 1, True), ("eq", 1, 2, False), ("lt", 1, 2, True), ("lt", 2, 2, False),
     ("lteq", 2, 2, True), ("gt", 3, 2, True), ("gt", 2, 2, False), ("gteq", 2, 2, True),
     ("isAnyOf", "a", ("a", "b"), True), ("isAnyOf", "c", ("a", "b"), False),
     ("isNoneOf", "c", ("a", "b"), True), ("isNoneOf", "a", ("a",), False),
     ("isAnyOf", "a", "a", False), ("lt", 1, ("a",), False), ("neq", 1, 2, False),
     ("isAllOf", "a", ("a",), False)],
)  # fmt: skip
def test_compare_against_python(operator: str, subject: object, value: object,
                                expected: bool) -> None:  # fmt: skip
    assert compare(operator, subject, value) is expected  # type: ignore[arg-type]


def test_round_context_refuses_nonsense() -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    RoundContext("urn:dure:consortium:x", now)
    for bad in (
        {"now": datetime(2026, 11, 1)},
        {"round": -1},
        {"contributors": -1},
        {"epsilon_spent": Decimal("-0.1")},
        {"epsilon_spent": 0.5},
        {"epsilon_spent": Decimal("NaN")},
    ):
        arguments = {"consortium": "urn:dure:consortium:x", "now": now, **bad}
        with pytest.raises(ValueError):
            RoundContext(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("marker", "expected"),
    [("dure:example-policy", example_policy_value()), ("dure:example-job", example_job_value())],
)
def test_reference_examples_are_the_examples(marker: str, expected: object) -> None:
    doc = (REPO / "docs" / "policy-language.md").read_text(encoding="utf-8")
    after = doc.split(f"<!-- {marker}", 1)[1]
    block = after.split("```json\n", 1)[1].split("```", 1)[0]
    assert json.loads(block) == expected
