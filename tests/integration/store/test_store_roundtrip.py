"""Episodes written to the store come back equal, every Dure field included."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.builders.episodes import make_episode, make_episodes, replace_frames
from tests.builders.store import assert_same_episode

from dure.client.episodes.schema import Source
from dure.client.errors import EpisodeError, EpisodeNotFoundError, StoreError
from dure.client.store import EpisodeStore


def test_round_trip_every_field(tmp_path: Path) -> None:
    episodes = [
        make_episode(0, phases=True, force=True),
        make_episode(1, success=False, force=True, source=Source.TELEOPERATION, tags=()),
        make_episode(2, n_frames=1, success=False, force=True),
    ]
    with EpisodeStore.open(tmp_path / "home") as store:
        receipt = store.add(episodes)
        assert [s.episode_id for s in receipt.added] == [e.episode_id for e in episodes]
        assert receipt.n_frames == sum(e.n_frames for e in episodes)
        for episode in episodes:
            assert_same_episode(store.read(episode.episode_id), episode)
        again = list(store.iter_episodes([e.episode_id for e in episodes]))
    for got, want in zip(again, episodes, strict=True):
        assert_same_episode(got, want)


def test_summary_reflects_the_episode(tmp_path: Path) -> None:
    episode = make_episode(4, tags=("b", "a"))
    with EpisodeStore.open(tmp_path / "home") as store:
        store.add([episode])
        summary = store.get(episode.episode_id)
    assert summary.commitment == episode.commitment().hex()
    assert summary.tags == ("a", "b")
    assert summary.start_time == episode.context.start_time
    assert summary.sensors_digest == episode.context.sensors.digest()
    assert (summary.task, summary.cell, summary.success) == ("pick-place", "cell-1", True)


def test_appends_across_ingests_and_reopen(tmp_path: Path) -> None:
    first, second = make_episodes(3), [make_episode(s, task="push") for s in range(10, 12)]
    with EpisodeStore.open(tmp_path / "home") as store:
        store.add(first)
    with EpisodeStore.open(tmp_path / "home") as store:
        store.add(second)
        assert [s.episode_index for s in store.select()] == [0, 1, 2, 3, 4]
        for episode in [*first, *second]:
            assert_same_episode(store.read(episode.episode_id), episode)


def test_duplicates_are_skipped_or_refused(tmp_path: Path) -> None:
    episode = make_episode(0)
    with EpisodeStore.open(tmp_path / "home") as store:
        store.add([episode])
        receipt = store.add([episode, make_episode(1), make_episode(1)])
        assert receipt.skipped == (episode.episode_id, make_episode(1).episode_id)
        assert len(receipt.added) == 1
        with pytest.raises(StoreError, match="already stored"):
            store.add([episode], on_duplicate="error")
        assert store.add([episode]).commit_id is None
        assert store.catalog.count() == 2


def test_invalid_episode_is_refused(tmp_path: Path) -> None:
    bad = replace_frames(make_episode(0), action=make_episode(0).frames.action.astype(np.float64))
    with EpisodeStore.open(tmp_path / "home") as store, pytest.raises(EpisodeError, match="action"):
        store.add([bad])


def test_episode_that_does_not_fit_the_store(tmp_path: Path) -> None:
    with EpisodeStore.open(tmp_path / "home") as store:
        store.add([make_episode(0)])
        with pytest.raises(StoreError, match="fps 50") as info:
            store.add([make_episode(1, fps=50)])
        assert "--home" in info.value.hint
        with pytest.raises(StoreError, match=r"observation.state\[12\]"):
            store.add([make_episode(2, state_dim=12)])
        other_space = dataclasses.replace(
            make_episode(3),
            action_space=make_episode(3).action_space.model_copy(update={"mode": "absolute"}),
        )
        with pytest.raises(StoreError, match="action space"):
            store.add([other_space])


def test_unknown_episode_and_missing_home(tmp_path: Path) -> None:
    with EpisodeStore.open(tmp_path / "home") as store, pytest.raises(EpisodeNotFoundError):
        store.read("factory-a-0000000000000000")
    with pytest.raises(StoreError, match="no episode store"):
        EpisodeStore.open(tmp_path / "elsewhere", create=False)


@settings(max_examples=15, deadline=None)
@given(
    seeds=st.lists(st.integers(0, 10_000), min_size=1, max_size=4, unique=True),
    n_frames=st.integers(1, 40),
    phases=st.booleans(),
    success=st.booleans(),
)
def test_random_episodes_round_trip(
    tmp_path_factory: pytest.TempPathFactory,
    seeds: list[int],
    n_frames: int,
    phases: bool,
    success: bool,
) -> None:
    episodes = [
        make_episode(seed, n_frames=n_frames, phases=phases and n_frames >= 3, success=success)
        for seed in seeds
    ]
    home = tmp_path_factory.mktemp("home")
    with EpisodeStore.open(home) as store:
        store.add(episodes)
        for episode in episodes:
            assert_same_episode(store.read(episode.episode_id), episode)
