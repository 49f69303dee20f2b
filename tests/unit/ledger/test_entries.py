"""Ledger entries: canonical round trips, strict parsing, fuzzing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from tests.builders.ledger import T, hexd, sample_entries

from dure.policies.canonical import canonical_bytes
from dure.policies.entries import (
    ENTRY_KINDS,
    AggregateCommitted,
    AnyLedgerEntry,
    LedgerEntry,
    RoundOpened,
    SiteAdmitted,
    SiteRefused,
    StatisticsShared,
    statistics_digest,
)
from dure.policies.errors import DocumentError, EncodingError

SAMPLES = [
    *sample_entries(),
    StatisticsShared(
        time=T,
        job_id="pick-place-1",
        site="urn:dure:site:factory-a",
        stats_digest=statistics_digest('{"action": {}}', '["pick-place"]', 4),
        episodes=4,
        policy_id=hexd(4),
    ),
]


def test_samples_cover_every_kind() -> None:
    assert sorted(e.kind for e in SAMPLES) == sorted(ENTRY_KINDS)
    assert len(ENTRY_KINDS) == 12


@pytest.mark.parametrize("entry", SAMPLES, ids=lambda e: e.kind)
def test_round_trip(entry: LedgerEntry) -> None:
    data = entry.to_bytes()
    assert data == canonical_bytes(json.loads(data))  # exactly RFC 8785
    parsed = LedgerEntry.from_bytes(data)
    assert parsed == entry and type(parsed) is type(entry)
    assert parsed.to_bytes() == data
    assert type(entry).from_bytes(data) == entry


def test_encoding_is_the_documented_one() -> None:
    entry = SiteAdmitted(time=T, job_id="job-1", site="urn:dure:site:a", policy_id=hexd(1))
    assert entry.to_bytes() == (
        b'{"job_id":"job-1","kind":"site_admitted","policy_id":"'
        + hexd(1).encode()
        + b'","site":"urn:dure:site:a","time":"2026-03-01T12:00:00Z","v":1}'
    )


def as_value(entry: LedgerEntry) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(entry.to_bytes())
    return value


def mutated(entry: LedgerEntry, **changes: Any) -> bytes:
    value = as_value(entry)
    for key, item in changes.items():
        if item is _DROP:
            del value[key]
        else:
            value[key] = item
    return canonical_bytes(value)


_DROP = object()
ADMITTED = SAMPLES[3]
AGGREGATE = next(e for e in SAMPLES if isinstance(e, AggregateCommitted))
ROUND = next(e for e in SAMPLES if isinstance(e, RoundOpened))


@pytest.mark.parametrize(
    "data",
    [
        mutated(ADMITTED, kind="site_ejected"),
        mutated(ADMITTED, kind=None),
        mutated(ADMITTED, kind=_DROP),
        mutated(ADMITTED, v=2),
        mutated(ADMITTED, v=_DROP),
        mutated(ADMITTED, time="2026-03-01T12:00:00+00:00"),
        mutated(ADMITTED, time="2026-02-30T12:00:00Z"),
        mutated(ADMITTED, policy_id=hexd(0xAB).upper()),
        mutated(ADMITTED, policy_id=hexd(1)[:-2]),
        mutated(ADMITTED, site="factory-a"),
        mutated(ADMITTED, job_id="Job 1"),
        mutated(ADMITTED, weights="AAAA"),  # unknown fields: no raw data sneaks in
        mutated(ADMITTED, policy_id=_DROP),
        mutated(AGGREGATE, epsilon_spent="1e-3"),
        mutated(AGGREGATE, contributors=[]),
        mutated(AGGREGATE, strategy="my-average"),
        mutated(ROUND, round=0),
        mutated(ROUND, round="1"),
        mutated(ROUND, sites=["urn:dure:site:a", "urn:dure:site:a"]),
        canonical_bytes([as_value(ADMITTED)]),
        canonical_bytes("site_admitted"),
    ],
)
def test_invalid_documents_are_refused(data: bytes) -> None:
    with pytest.raises(DocumentError):
        LedgerEntry.from_bytes(data)


@pytest.mark.parametrize(
    "data",
    [
        json.dumps(as_value(ADMITTED)).encode(),  # whitespace: valid JSON, not canonical
        json.dumps(as_value(ADMITTED), sort_keys=True, separators=(",", ":")).encode() + b"\n",
        ADMITTED.to_bytes().replace(b'"v":1', b'"v":1.0'),
        ADMITTED.to_bytes().replace(b'{"job_id"', b'{"v":1,"job_id"'),  # duplicate key
        b"\xff" + ADMITTED.to_bytes(),
        b"",
    ],
)
def test_non_canonical_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(EncodingError):
        LedgerEntry.from_bytes(data)


def test_a_subclass_parses_only_its_kind() -> None:
    with pytest.raises(DocumentError, match="expected a SiteRefused"):
        SiteRefused.from_bytes(ADMITTED.to_bytes())


def test_refusals_need_reasons() -> None:
    refused = next(e for e in SAMPLES if isinstance(e, SiteRefused))
    with pytest.raises(DocumentError):
        LedgerEntry.from_bytes(mutated(refused, reasons=[]))
    with pytest.raises(DocumentError):
        LedgerEntry.from_bytes(mutated(refused, reasons=[""]))


def test_entries_are_frozen() -> None:
    with pytest.raises(ValueError, match="frozen"):
        ADMITTED.time = ADMITTED.time  # type: ignore[misc]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_parse_or_fail_with_our_errors(data: bytes) -> None:
    try:
        entry = LedgerEntry.from_bytes(data)
    except (DocumentError, EncodingError):
        return
    assert entry.to_bytes() == data


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(SAMPLES),
    st.dictionaries(st.sampled_from(["kind", "v", "time", "site", "round", "x", "reasons"]), JSON),
    st.sets(st.sampled_from(["kind", "v", "time", "site", "job_id"])),
)
def test_mutated_entries_parse_or_fail_with_our_errors(
    entry: LedgerEntry, changes: dict[str, Any], dropped: set[str]
) -> None:
    value = as_value(entry) | changes
    for key in dropped:
        value.pop(key, None)
    try:
        data = canonical_bytes(value)
    except EncodingError:
        return  # e.g. a non-NFC string or an integer outside I-JSON
    try:
        parsed = LedgerEntry.from_bytes(data)
    except (DocumentError, EncodingError):
        return
    assert parsed.to_bytes() == data


@settings(max_examples=100, deadline=None)
@given(
    st.integers(min_value=1, max_value=1_000_000),
    st.lists(st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True), unique=True, max_size=5),
    st.one_of(st.none(), st.integers(min_value=0, max_value=2**256 - 1)),
)
def test_generated_rounds_round_trip(round_: int, names: list[str], parent: int | None) -> None:
    entry = RoundOpened(
        time=T,
        job_id="job-1",
        round=round_,
        sites=tuple(f"urn:dure:site:{n}" for n in names),
        parent_model=None if parent is None else hexd(parent),
    )
    assert LedgerEntry.from_bytes(entry.to_bytes()) == entry


def test_the_discriminated_union_picks_the_kind() -> None:
    adapter: TypeAdapter[LedgerEntry] = TypeAdapter(AnyLedgerEntry)
    for entry in SAMPLES:
        assert adapter.validate_json(entry.to_bytes()) == entry
