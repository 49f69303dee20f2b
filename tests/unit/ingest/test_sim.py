"""Simulated factories: seeded layouts, stated success, disjoint evaluation seeds."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from dure.client.sim.metaworld_env import (
    EVAL_SEED_BASE,
    demonstration_seed,
    evaluate_policy,
    rollout_expert,
)
from dure.client.sim.truth import FEATURE_NAMES, SUCCESS_DEFINITION, canonical_state, hold_samples


def test_the_seed_fixes_the_layout_and_different_seeds_differ() -> None:
    a = rollout_expert("reach-v3", 3, max_steps=5)
    b = rollout_expert("reach-v3", 3, max_steps=5)
    c = rollout_expert("reach-v3", 4, max_steps=5)
    np.testing.assert_array_equal(a.features["observation.state"], b.features["observation.state"])
    assert not np.array_equal(
        a.features["observation.state"][0, 18:], c.features["observation.state"][0, 18:]
    )


def test_an_episode_carries_every_canonical_feature_with_its_width() -> None:
    ep = rollout_expert("push-v3", 1, max_steps=8)
    for name, names in FEATURE_NAMES.items():
        assert ep.features[name].shape == (8, len(names))
    assert ep.reward.shape == ep.success.shape == (8,)


@pytest.mark.slow
def test_the_expert_succeeds_and_stops_after_settling() -> None:
    ep = rollout_expert("reach-v3", 2, max_steps=200, settle=5)
    assert ep.succeeded and SUCCESS_DEFINITION == "any-step"
    first = int(np.argmax(ep.success))
    assert ep.n_frames == first + 6


def test_evaluation_seeds_never_overlap_demonstration_seeds() -> None:
    assert max(demonstration_seed(s, k) for s in (0, 999_999) for k in (0, 999)) < EVAL_SEED_BASE
    result = evaluate_policy(lambda s: np.zeros(4), "reach-v3", episodes=2, seed=1, max_steps=3)
    assert all(seed >= EVAL_SEED_BASE for seed in result.seeds)
    assert result.success_rate == 0.0 and result.success_definition == "any-step"


def test_a_policy_sees_the_canonical_state() -> None:
    seen: list[npt.NDArray[np.float32]] = []

    def policy(state: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        seen.append(state)
        return np.zeros(4)

    evaluate_policy(policy, "reach-v3", episodes=1, max_steps=2)
    assert seen[0].shape == (21,) and seen[0].dtype == np.float32
    assert canonical_state(np.arange(39.0)).tolist() == [*range(18), 36, 37, 38]


def test_hold_samples_read_the_frame_in_force() -> None:
    values = np.arange(4.0)[:, None]  # frames at 0, 12.5, 25, 37.5 ms
    t, v = hold_samples(values, 0, 200)  # every 5 ms up to 37.5 ms
    assert t.tolist() == [
        0,
        5_000_000,
        10_000_000,
        15_000_000,
        20_000_000,
        25_000_000,
        30_000_000,
        35_000_000,
    ]
    assert v[:, 0].tolist() == [0, 0, 0, 1, 1, 2, 2, 2]
