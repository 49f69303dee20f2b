"""Statistics of any selection against numpy, and LeRobot v3 exports that read back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from tests.builders.episodes import make_episode
from tests.builders.store import assert_same_episode

from dure.client.episodes.schema import Episode
from dure.client.episodes.stats import QUANTILES
from dure.client.errors import StoreError
from dure.client.store import DatasetReader, EpisodeStore


def _episodes() -> list[Episode]:
    return [
        make_episode(seed, task=("push" if seed % 3 == 0 else "reach"), force=True, n_frames=80)
        for seed in range(12)
    ]


def _check(stats_mean: np.ndarray, stats_std: np.ndarray, values: np.ndarray) -> None:
    np.testing.assert_allclose(
        stats_mean, values.astype(np.float64).mean(axis=0), rtol=1e-9, atol=1e-9
    )
    np.testing.assert_allclose(stats_std, values.astype(np.float64).std(axis=0), rtol=1e-9)


def test_stats_of_store_and_selections_match_numpy(tmp_path: Path) -> None:
    episodes = _episodes()
    with EpisodeStore.open(tmp_path / "home") as store:
        store.add(episodes[:5])
        store.add(episodes[5:])  # dataset statistics merge across ingests
        whole = store.stats()
        pushes = [e for e in episodes if e.context.task == "push"]
        subset = store.stats([e.episode_id for e in pushes])
    for key in ("observation.state", "observation.force"):
        values = np.concatenate([e.frames.observation[key] for e in episodes])
        _check(whole[key].mean, whole[key].std, values)
        for q in QUANTILES:  # rank error of about 1 / (frames per episode) at most
            ranks = (values <= whole[key].quantile(q)).mean(axis=0)
            assert np.abs(ranks - q).max() < 1.5 / 80, (key, q)
    actions = np.concatenate([e.frames.action for e in pushes])
    _check(subset["action"].mean, subset["action"].std, actions)
    np.testing.assert_array_equal(subset["action"].minimum, actions.min(axis=0))
    assert subset["action"].count == len(actions)
    stats_json = json.loads((tmp_path / "home/dataset/meta/stats.json").read_text())
    assert stats_json["observation.state"]["count"] == [12 * 80]
    np.testing.assert_allclose(stats_json["action"]["mean"], whole["action"].mean)


def test_export_is_reindexed_and_reads_back(tmp_path: Path) -> None:
    episodes = _episodes()
    chosen = [episodes[i] for i in (7, 2, 9)]
    with EpisodeStore.open(tmp_path / "home") as store:
        store.add(episodes)
        out = store.export([e.episode_id for e in chosen], tmp_path / "export")
        root = store.selection_root([e.episode_id for e in chosen])
    reader = DatasetReader(out)
    back = list(reader.iter_episodes())
    in_store_order = [episodes[i] for i in (2, 7, 9)]
    for got, want in zip(back, in_store_order, strict=True):
        assert_same_episode(got, want)
    info = json.loads((out / "meta/info.json").read_text())
    assert (info["total_episodes"], info["total_frames"]) == (3, 240)
    data = pq.read_table(out / "data/chunk-000/file-000.parquet")
    assert data.column("index").to_pylist() == list(range(240))
    assert sorted(set(data.column("episode_index").to_pylist())) == [0, 1, 2]
    assert reader.tasks == ["reach", "push"]
    assert data.column("task_index").to_pylist()[0] == 0
    assert sorted(reader.episode_rows()) == [0, 1, 2]
    assert len(root) == 32


def test_export_refuses_a_non_empty_target_and_empty_selection(tmp_path: Path) -> None:
    with EpisodeStore.open(tmp_path / "home") as store:
        store.add(_episodes()[:2])
        (tmp_path / "taken").mkdir()
        (tmp_path / "taken" / "keep.txt").write_text("mine")
        with pytest.raises(StoreError, match="not empty"):
            store.export([_episodes()[0].episode_id], tmp_path / "taken")
        with pytest.raises(StoreError, match="selection is empty"):
            store.export([], tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_reader_refuses_a_folder_without_info(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a LeRobot v3 dataset"):
        DatasetReader(tmp_path)


def test_stats_of_an_empty_store(tmp_path: Path) -> None:
    with EpisodeStore.open(tmp_path / "home") as store, pytest.raises(StoreError, match="empty"):
        store.stats()


def test_single_episode_selection_quantiles_are_exact(tmp_path: Path) -> None:
    episode = make_episode(3, n_frames=60)
    with EpisodeStore.open(tmp_path / "home") as store:
        store.add([episode])
        stats = store.stats([episode.episode_id])["action"]
    for q in QUANTILES:  # the stored sketch is float32: exact to float32 precision
        np.testing.assert_allclose(
            stats.quantile(q),
            np.quantile(episode.frames.action.astype(np.float64), q, axis=0),
            rtol=1e-6,
            atol=1e-6,
        )
