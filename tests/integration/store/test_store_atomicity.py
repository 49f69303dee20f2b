"""A failed or interrupted ingest leaves the factory home byte-for-byte as it was."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from tests.builders.episodes import make_episode, make_episodes, replace_frames
from tests.builders.store import assert_same_episode, tree_digest

from dure.client.episodes.schema import Episode
from dure.client.errors import EpisodeError, StoreError
from dure.client.store import EpisodeStore
from dure.client.store.catalog import Catalog
from dure.client.store.transaction import Staging


class SourceBrokeError(Exception):
    pass


def _seeded_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    with EpisodeStore.open(home) as store:
        store.add(make_episodes(3, phases=True))
    return home


def _failing(after: int) -> Iterator[Episode]:
    for seed in range(100, 100 + after):
        yield make_episode(seed, task="push")
    raise SourceBrokeError("the source log broke mid-ingest")


@pytest.mark.parametrize("empty", [True, False])
def test_source_failure_mid_write(tmp_path: Path, empty: bool) -> None:
    home = tmp_path / "home" if empty else _seeded_home(tmp_path)
    with EpisodeStore.open(home) as store:
        before = tree_digest(home)
        with pytest.raises(SourceBrokeError):
            store.add(_failing(after=4))
        assert tree_digest(home) == before
        assert store.catalog.count() == (0 if empty else 3)


def test_invalid_episode_mid_batch(tmp_path: Path) -> None:
    home = _seeded_home(tmp_path)
    bad = replace_frames(make_episode(7), next_reward=np.full(50, np.nan, dtype=np.float32))
    with EpisodeStore.open(home) as store:
        before = tree_digest(home)
        with pytest.raises(EpisodeError, match="next_reward"):
            store.add([make_episode(5), make_episode(6), bad])
        assert tree_digest(home) == before


def test_catalog_failure_at_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = _seeded_home(tmp_path)

    def refuse(self: Catalog, commit_id: str, entries: object, *updates: object) -> None:
        raise StoreError("disk full while committing")

    with EpisodeStore.open(home) as store:
        before = tree_digest(home)
        monkeypatch.setattr(Catalog, "record_commit", refuse)
        with pytest.raises(StoreError, match="disk full"):
            store.add(make_episodes(2, task="push"))
        assert tree_digest(home) == before


def test_duplicate_commitment_inside_catalog_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _seeded_home(tmp_path)

    @contextlib.contextmanager
    def blind_probe(self: Catalog) -> Iterator[Callable[[str], bool]]:
        yield lambda _commitment: False  # the duplicate reaches the catalog's unique index

    with EpisodeStore.open(home) as store:
        before = tree_digest(home)
        monkeypatch.setattr(Catalog, "commitment_probe", blind_probe)
        with pytest.raises(StoreError, match="catalog refused"):
            store.add([make_episode(9), make_episode(0, phases=True)])
        assert tree_digest(home) == before


def test_interrupt_is_rolled_back_too(tmp_path: Path) -> None:
    home = _seeded_home(tmp_path)

    def interrupted() -> Iterator[Episode]:
        yield make_episode(11)
        raise KeyboardInterrupt

    with EpisodeStore.open(home) as store:
        before = tree_digest(home)
        with pytest.raises(KeyboardInterrupt):
            store.add(interrupted())
        assert tree_digest(home) == before


def test_crash_after_commit_point_is_rolled_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _seeded_home(tmp_path)
    new = [make_episode(s, task="push") for s in (40, 41)]
    calls = {"n": 0}
    real_replace = os.replace

    def crash_after_one(src: Path, dst: Path) -> None:
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError("power lost")
        real_replace(src, dst)

    with EpisodeStore.open(home) as store:
        monkeypatch.setattr("dure.client.store.transaction.os.replace", crash_after_one)
        with pytest.raises(StoreError, match="committed"):
            store.add(new)
        monkeypatch.undo()
    assert any((home / "staging").iterdir())
    with EpisodeStore.open(home) as store:  # recovery on open
        assert not any((home / "staging").iterdir())
        assert store.catalog.count() == 5
        for episode in new:
            assert_same_episode(store.read(episode.episode_id), episode)


def test_unsealed_or_uncommitted_staging_is_discarded(tmp_path: Path) -> None:
    home = _seeded_home(tmp_path)
    before = tree_digest(home)
    with EpisodeStore.open(home) as store:
        leftover = Staging(home / "staging").create()
        leftover.path("data/chunk-000/file-009.parquet").write_bytes(b"half")
        sealed = Staging(home / "staging").create()
        sealed.path("meta/info.json").write_bytes(b"{}")
        sealed.seal()  # sealed, but the catalog never recorded it
        assert store.recover() == 2
    assert tree_digest(home) == before
