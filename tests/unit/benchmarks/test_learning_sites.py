"""The learning benchmark simulates its demonstrations with the evaluation's episode length."""

from __future__ import annotations

import inspect

from benchmarks.learning_sites import build_sites

from dure.client.sim.metaworld_env import EPISODE_STEPS


def test_demonstrations_are_simulated_with_the_shared_episode_length() -> None:
    assert inspect.signature(build_sites).parameters["max_steps"].default == EPISODE_STEPS
