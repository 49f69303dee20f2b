from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dure.client.episodes.schema import Episode
from dure.client.episodes.stats import FeatureStats
from dure.client.training.dataset import EpisodesDataset
from dure.client.training.errors import TrainingError
from dure.client.training.normalisation import (
    POLICY_OBSERVATION,
    PolicyScaling,
    merge_site_stats,
    policy_episodes,
)

from .conftest import TASKS

blocks = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=40),
        st.floats(min_value=-5, max_value=5),
        st.floats(min_value=0.01, max_value=3),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(blocks, st.integers(min_value=0, max_value=2**31))
def test_merged_site_stats_are_the_pooled_stats(
    sites: list[tuple[int, float, float]], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    samples = [
        {
            "action": rng.normal(loc, scale, size=(n, 3)),
            "observation.state": rng.normal(size=(n, 2)),
        }
        for n, loc, scale in sites
    ]
    per_site = [{k: FeatureStats.from_samples(v) for k, v in s.items()} for s in samples]
    merged = merge_site_stats(per_site)
    for key in ("action", "observation.state"):
        pooled = np.concatenate([s[key] for s in samples])
        assert merged[key].count == len(pooled)
        np.testing.assert_allclose(merged[key].mean, pooled.mean(axis=0), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(merged[key].std, pooled.std(axis=0), rtol=1e-7, atol=1e-9)
        np.testing.assert_array_equal(merged[key].minimum, pooled.min(axis=0))
        np.testing.assert_array_equal(merged[key].maximum, pooled.max(axis=0))


def test_sites_must_share_their_features(stats: dict[str, FeatureStats]) -> None:
    with pytest.raises(TrainingError, match="different features"):
        merge_site_stats([stats, {"action": stats["action"]}])
    with pytest.raises(TrainingError, match="no site"):
        merge_site_stats([])


def test_policy_episodes_keep_only_the_policy_observation(episodes: list[Episode]) -> None:
    assert "observation.force" in episodes[0].frames.observation
    projected = policy_episodes(episodes)
    assert all(tuple(e.frames.observation) == POLICY_OBSERVATION for e in projected)
    assert projected[0].frames.action is episodes[0].frames.action


def test_policy_episodes_need_the_state(episodes: list[Episode]) -> None:
    frames = episodes[0].frames
    import dataclasses

    bare = dataclasses.replace(
        episodes[0],
        frames=dataclasses.replace(frames, observation={"observation.force": frames.action}),
    )
    with pytest.raises(TrainingError, match=r"observation\.state"):
        policy_episodes([bare])


def test_evaluation_scaling_matches_the_training_items(
    episodes: list[Episode], stats: dict[str, FeatureStats], dataset: EpisodesDataset
) -> None:
    scaling = PolicyScaling.from_stats(stats, TASKS)
    episode = episodes[1]
    state = episode.frames.observation["observation.state"][5]
    offset = episodes[0].n_frames + 5
    item = dataset[offset]
    row = scaling.input_row([state], episode.context.task)
    np.testing.assert_allclose(
        row, torch.cat((item["observation"], item["task"])).numpy(), rtol=1e-6
    )
    back = scaling.raw_action(item["action"].numpy())
    np.testing.assert_allclose(back, episode.frames.action[5], rtol=1e-5, atol=1e-6)


def test_scaling_refuses_unknown_tasks_and_missing_features(
    stats: dict[str, FeatureStats],
) -> None:
    with pytest.raises(TrainingError, match="vocabulary"):
        PolicyScaling.from_stats(stats, TASKS).task_index("door-open-v3")
    with pytest.raises(TrainingError, match="no statistics"):
        PolicyScaling.from_stats({"action": stats["action"]}, TASKS)
    with pytest.raises(TrainingError, match="no tasks"):
        PolicyScaling.from_stats(stats, ())
