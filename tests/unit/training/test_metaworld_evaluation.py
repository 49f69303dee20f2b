"""Evaluation in Meta-World: a short real rollout, and the policy wrapper's arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dure.client.episodes.stats import FeatureStats
from dure.client.training.errors import TrainingError
from dure.client.training.evaluate import (
    SUCCESS_DEFINITION,
    MetaWorldPolicy,
    evaluate_in_metaworld,
    evaluate_tasks,
)
from dure.client.training.model import build_policy_model
from dure.client.training.normalisation import PolicyScaling

from .conftest import STATE_DIM, TASKS

pytest.importorskip("metaworld")


def test_the_success_definition_is_the_simulators() -> None:
    from dure.client.sim.truth import SUCCESS_DEFINITION as SIM

    assert SUCCESS_DEFINITION == SIM == "any-step"


def test_policy_normalises_the_state_and_denormalises_the_action(
    stats: dict[str, FeatureStats],
) -> None:
    model = build_policy_model(STATE_DIM, len(TASKS), 4, (16,), seed=3)
    scaling = PolicyScaling.from_stats(stats, TASKS)
    policy = MetaWorldPolicy(model, scaling, "reach-v3")
    state = np.linspace(-1, 1, STATE_DIM, dtype=np.float32)
    row = torch.from_numpy(scaling.input_row([state], "reach-v3"))[None]
    with torch.no_grad():
        expected = scaling.raw_action(model(row)[0].numpy())
    np.testing.assert_allclose(policy(state), np.clip(expected, -1, 1), rtol=1e-6)
    assert row[0, -2:].tolist() == [0.0, 1.0]  # reach-v3 is the second task


def test_unknown_tasks_fail_before_any_rollout(stats: dict[str, FeatureStats]) -> None:
    model = build_policy_model(STATE_DIM, len(TASKS), 4, (16,))
    with pytest.raises(TrainingError, match="door-open-v3"):
        evaluate_in_metaworld(model, stats, ["door-open-v3"], TASKS, 1, 0)


def test_a_model_trained_on_more_features_is_refused(stats: dict[str, FeatureStats]) -> None:
    wider = build_policy_model(STATE_DIM + 6, len(TASKS), 4, (16,))
    with pytest.raises(TrainingError, match="input row"):
        evaluate_tasks(wider, stats, ["reach-v3"], TASKS, 1, 0)
    other_actions = build_policy_model(STATE_DIM, len(TASKS), 3, (16,))
    with pytest.raises(TrainingError, match="actions"):
        evaluate_tasks(other_actions, stats, ["reach-v3"], TASKS, 1, 0)


def test_evaluates_fresh_layouts_of_one_task(stats: dict[str, FeatureStats]) -> None:
    model = build_policy_model(STATE_DIM, len(TASKS), 4, (16,))
    results = evaluate_tasks(model, stats, ["reach-v3"], TASKS, 3, seed=2, max_steps=20)
    assert list(results) == ["reach-v3"]
    assert len(results["reach-v3"]) == 3
    rates = evaluate_in_metaworld(model, stats, ["reach-v3"], TASKS, 3, seed=2, max_steps=20)
    assert rates == {"reach-v3": sum(results["reach-v3"]) / 3}
    assert model.training is False
