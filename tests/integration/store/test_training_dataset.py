"""The torch Dataset over a selection: shapes, normalisation, task conditioning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tests.builders.episodes import make_episode
from torch.utils.data import DataLoader

from dure.client.errors import EpisodeError
from dure.client.store import EpisodeStore
from dure.client.training.dataset import EpisodesDataset

torch.set_num_threads(1)


def _store(tmp_path: Path) -> tuple[EpisodeStore, list[str]]:
    episodes = [
        make_episode(seed, task=task, force=True, n_frames=40)
        for seed, task in enumerate(["push", "reach", "push", "drawer-open"])
    ]
    store = EpisodeStore.open(tmp_path / "home")
    store.add(episodes)
    return store, [e.episode_id for e in episodes]


def test_items_shapes_and_task_conditioning(tmp_path: Path) -> None:
    store, ids = _store(tmp_path)
    with store:
        dataset = EpisodesDataset.from_store(store, ids)
    assert len(dataset) == 160
    assert dataset.tasks == ("drawer-open", "push", "reach")
    assert (dataset.observation_dim, dataset.action_dim) == (3 + 39, 4)
    item = dataset[45]  # second episode: "reach"
    assert item["observation"].shape == (42,) and item["observation"].dtype == torch.float32
    assert item["action"].shape == (4,)
    assert int(item["task_index"]) == 2
    assert item["task"].tolist() == [0.0, 0.0, 1.0]
    batch = next(iter(DataLoader(dataset, batch_size=16)))
    assert batch["observation"].shape == (16, 42) and batch["task"].shape == (16, 3)


def test_normalisation_uses_the_selection_statistics(tmp_path: Path) -> None:
    store, ids = _store(tmp_path)
    with store:
        dataset = EpisodesDataset.from_store(store, ids)
        raw = list(store.iter_episodes(ids))
    everything = torch.stack([dataset[i]["observation"] for i in range(len(dataset))])
    actions = torch.stack([dataset[i]["action"] for i in range(len(dataset))])
    torch.testing.assert_close(everything.mean(0), torch.zeros(42), atol=1e-4, rtol=0)
    torch.testing.assert_close(everything.std(0, unbiased=False), torch.ones(42), atol=1e-3, rtol=0)
    raw_actions = np.concatenate([e.frames.action for e in raw])
    np.testing.assert_allclose(dataset.denormalise_action(actions).numpy(), raw_actions, atol=1e-5)
    first = raw[0].frames.observation
    direct = dataset.normalise_observation({k: v[:1] for k, v in first.items()})
    torch.testing.assert_close(direct[0], dataset[0]["observation"])


def test_min_max_mode_and_given_vocabulary(tmp_path: Path) -> None:
    store, ids = _store(tmp_path)
    with store:
        dataset = EpisodesDataset.from_store(
            store, ids, mode="min_max", tasks=["reach", "push", "drawer-open", "door-open"]
        )
        assert dataset[0]["task"].tolist() == [0.0, 1.0, 0.0, 0.0]
        actions = torch.stack([dataset[i]["action"] for i in range(len(dataset))])
        assert float(actions.min()) == pytest.approx(-1.0, abs=1e-5)
        assert float(actions.max()) == pytest.approx(1.0, abs=1e-5)
        with pytest.raises(EpisodeError, match="vocabulary"):
            EpisodesDataset.from_store(store, ids, tasks=["push"])
        with pytest.raises(EpisodeError, match="empty"):
            EpisodesDataset([], {})
