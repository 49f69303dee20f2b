"""Fine-tuning starts from the consortium model and lowers the site's own loss."""

from __future__ import annotations

import pytest
import torch

from dure.client.training.dataset import EpisodesDataset
from dure.client.training.errors import TrainingError
from dure.client.training.model import build_policy_model
from dure.client.training.personalise import (
    FineTuneConfig,
    TaskRoutedPolicy,
    action_mse,
    fine_tune,
)

from .conftest import TASKS


def test_fine_tuning_starts_from_the_consortium_model_and_lowers_own_loss(
    dataset: EpisodesDataset,
) -> None:
    consortium = build_policy_model(dataset.observation_dim, len(TASKS), dataset.action_dim, (32,))
    before = {k: v.clone() for k, v in consortium.state_dict().items()}
    untouched = fine_tune(consortium, dataset, FineTuneConfig(steps=0))
    for key, value in untouched.state_dict().items():
        assert torch.equal(value, before[key])
    tuned = fine_tune(consortium, dataset, FineTuneConfig(steps=60, lr=1e-2, batch_size=32))
    for key, value in consortium.state_dict().items():
        assert torch.equal(value, before[key]), "the consortium model must be left as it was"
    assert action_mse(tuned, dataset) < 0.8 * action_mse(consortium, dataset)


def test_negative_steps_are_refused(dataset: EpisodesDataset) -> None:
    model = build_policy_model(dataset.observation_dim, len(TASKS), dataset.action_dim, (8,))
    with pytest.raises(TrainingError) as caught:
        fine_tune(model, dataset, FineTuneConfig(steps=-1))
    assert caught.value.hint


def test_task_routing_runs_own_tasks_on_the_personal_model_others_on_the_consortium(
    dataset: EpisodesDataset,
) -> None:
    dims = (dataset.observation_dim, len(TASKS), dataset.action_dim, (8,))
    personal, consortium = build_policy_model(*dims, seed=1), build_policy_model(*dims, seed=2)
    routed = TaskRoutedPolicy(personal, consortium, dataset.observation_dim, [0])
    rows = torch.zeros(2, dataset.observation_dim + len(TASKS))
    rows[0, dataset.observation_dim + 0] = 1.0
    rows[1, dataset.observation_dim + 1] = 1.0
    with torch.no_grad():
        out = routed(rows)
        torch.testing.assert_close(out[0], personal(rows)[0])
        torch.testing.assert_close(out[1], consortium(rows)[1])
    assert not torch.allclose(personal(rows), consortium(rows))
