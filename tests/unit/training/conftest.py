"""A small learnable selection: two tasks, actions a fixed function of the state."""

from __future__ import annotations

import numpy as np
import pytest
from tests.builders.episodes import make_episode, replace_frames

from dure.client.episodes.schema import Episode
from dure.client.episodes.stats import FeatureStats, episode_stats, stats_by_feature
from dure.client.training.dataset import EpisodesDataset
from dure.client.training.normalisation import policy_dataset

STATE_DIM = 21
TASKS = ("push-v3", "reach-v3")
_MIX = np.random.default_rng(7).normal(size=(len(TASKS), STATE_DIM, 4)).astype(np.float32)


def learnable_episode(seed: int, task: str, *, n_frames: int = 40) -> Episode:
    """An episode whose action is ``tanh(state @ W_task)``: a task-dependent function."""
    episode = make_episode(seed, task=task, n_frames=n_frames, state_dim=STATE_DIM, force=True)
    state = episode.frames.observation["observation.state"]
    action = np.tanh(state @ _MIX[TASKS.index(task)] / 4).astype(np.float32)
    return replace_frames(episode, action=action)


@pytest.fixture(scope="session")
def episodes() -> list[Episode]:
    return [learnable_episode(seed, TASKS[seed % 2]) for seed in range(12)]


@pytest.fixture(scope="session")
def stats(episodes: list[Episode]) -> dict[str, FeatureStats]:
    return stats_by_feature([episode_stats(e) for e in episodes])


@pytest.fixture(scope="session")
def dataset(episodes: list[Episode], stats: dict[str, FeatureStats]) -> EpisodesDataset:
    return policy_dataset(episodes, stats, TASKS)
