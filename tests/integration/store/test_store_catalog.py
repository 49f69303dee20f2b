"""Catalog selection by every filter, and the Merkle root of a selection."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from tests.builders.episodes import make_episode

from dure.client.episodes.query import EpisodeQuery
from dure.client.episodes.schema import Episode, Source
from dure.client.errors import EpisodeNotFoundError
from dure.client.store import EpisodeStore
from dure.client.store.catalog import Catalog
from dure.policies.merkle import EMPTY_ROOT, leaf_hash, node_hash, root_hash
from dure.policies.selector import EpisodeFacts, EpisodeSelector

T0 = datetime(2025, 5, 1, tzinfo=UTC)


def _episodes() -> list[Episode]:
    return [
        make_episode(0, task="pick-place", cell="c1", robot="r1", start=T0, tags=("sim", "day")),
        make_episode(
            1,
            task="push",
            cell="c1",
            robot="r2",
            start=T0 + timedelta(hours=1),
            success=False,
            tags=("sim",),
        ),
        make_episode(
            2,
            task="push",
            cell="c2",
            robot="r2",
            start=T0 + timedelta(days=1),
            source=Source.TELEOPERATION,
            tags=("day",),
        ),
        make_episode(
            3,
            task="reach",
            cell="c2",
            robot="r3",
            start=T0 + timedelta(days=2),
            source=Source.HUMAN_IN_THE_LOOP,
            site="factory-b",
            tags=(),
        ),
    ]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EpisodeStore]:
    with EpisodeStore.open(tmp_path / "home") as opened:
        opened.add(_episodes())
        yield opened


def _seeds(store: EpisodeStore, **query: object) -> list[int]:
    ids = {e.episode_id: i for i, e in enumerate(_episodes())}
    return [ids[s.episode_id] for s in store.select(EpisodeQuery.model_validate(query))]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, [0, 1, 2, 3]),
        ({"tasks": ("push",)}, [1, 2]),
        ({"tasks": ("push", "reach")}, [1, 2, 3]),
        ({"cells": ("c2",)}, [2, 3]),
        ({"robots": ("r2",)}, [1, 2]),
        ({"sites": ("factory-b",)}, [3]),
        ({"sources": ("teleoperation", "human-in-the-loop")}, [2, 3]),
        ({"tags": ("sim",)}, [0, 1]),
        ({"tags": ("sim", "day")}, [0]),
        ({"tags": ("none",)}, []),
        ({"since": T0 + timedelta(hours=1)}, [1, 2, 3]),
        ({"until": T0 + timedelta(days=1)}, [0, 1]),
        ({"since": T0 + timedelta(minutes=30), "until": T0 + timedelta(days=2)}, [1, 2]),
        ({"success": True}, [0, 2, 3]),
        ({"success": False}, [1]),
        ({"tasks": ("push",), "success": True, "cells": ("c2",)}, [2]),
    ],
)
def test_select_by_every_filter(
    store: EpisodeStore, query: dict[str, object], expected: list[int]
) -> None:
    assert _seeds(store, **query) == expected


def test_select_by_ids_and_time_zone(store: EpisodeStore) -> None:
    chosen = [_episodes()[i].episode_id for i in (3, 1)]
    assert _seeds(store, episode_ids=tuple(chosen)) == [1, 3]
    plus_two = datetime(2025, 5, 1, 3, 0, tzinfo=UTC).astimezone()  # same instant, other zone
    assert _seeds(store, since=plus_two) == [2, 3]
    with pytest.raises(ValidationError, match="timezone-aware"):
        EpisodeQuery(since=datetime(2025, 5, 1))


def _reference_root(commitments: list[bytes]) -> bytes:
    """RFC 9162 MTH written out naively (split at the largest power of two below n)."""
    if not commitments:
        return EMPTY_ROOT
    if len(commitments) == 1:
        return leaf_hash(commitments[0])
    k = 1
    while k * 2 < len(commitments):
        k *= 2
    return node_hash(_reference_root(commitments[:k]), _reference_root(commitments[k:]))


def test_selection_root_matches_recomputation(store: EpisodeStore) -> None:
    episodes = _episodes()
    ids = [e.episode_id for e in episodes]
    by_id = {e.episode_id: e.commitment() for e in episodes}
    expected = _reference_root([by_id[i] for i in sorted(ids)])
    assert store.selection_root(ids) == expected
    assert store.selection_root(reversed(ids)) == expected
    assert store.selection_root([*ids, ids[0]]) == expected
    assert store.selection_root(ids[:3]) == root_hash([by_id[i] for i in sorted(ids[:3])])
    assert store.selection_root(ids[:3]) != expected
    assert store.selection_root([]) == EMPTY_ROOT
    with pytest.raises(EpisodeNotFoundError):
        store.selection_root([*ids, "factory-a-ffffffffffffffff"])


def test_catalog_on_its_own_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.sqlite'}"
    with EpisodeStore.open(tmp_path / "home", catalog_url=url) as store:
        store.add(_episodes()[:2])
    assert not (tmp_path / "home" / "catalog.sqlite").exists()
    catalog = Catalog.from_url(url)
    assert catalog.count() == 2
    catalog.close()


def test_summaries_are_selector_facts(store: EpisodeStore) -> None:
    summary = store.select(EpisodeQuery(tasks=("reach",)))[0]
    facts: EpisodeFacts = summary  # structural: the policy kernel reads catalog rows as they are
    assert (facts.task, facts.cell, facts.robot, facts.source) == (
        "reach",
        "c2",
        "r3",
        "human-in-the-loop",
    )
    assert facts.start_time == T0 + timedelta(days=2)
    assert EpisodeSelector().matches(facts)
