"""Simulation and evaluation share one episode length (it was 200 steps against 500)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from dure.client.sim.factory import simulate_episodes, simulate_factory
from dure.client.sim.metaworld_env import EPISODE_STEPS, evaluate_policy, rollout_expert
from dure.client.training.evaluate import evaluate_in_metaworld, evaluate_tasks


@pytest.mark.parametrize(
    "function",
    [
        rollout_expert,
        simulate_episodes,
        simulate_factory,
        evaluate_policy,
        evaluate_tasks,
        evaluate_in_metaworld,
    ],
    ids=lambda f: f.__name__,
)
def test_every_default_episode_length_is_the_shared_constant(function: Callable[..., Any]) -> None:
    assert inspect.signature(function).parameters["max_steps"].default == EPISODE_STEPS


def test_the_shared_length_is_meta_worlds_own_limit() -> None:
    assert EPISODE_STEPS == 500
