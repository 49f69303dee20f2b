from __future__ import annotations

import copy

import pytest
import torch

from dure.client.episodes.schema import Episode
from dure.client.episodes.stats import FeatureStats
from dure.client.training.baselines import FederatedConfig, ServerClipping, federated_average
from dure.client.training.dataset import EpisodesDataset
from dure.client.training.errors import TrainingError
from dure.client.training.local import TrainConfig, train_local
from dure.client.training.model import BehaviourCloningPolicy, build_policy_model
from dure.client.training.normalisation import policy_dataset

from .conftest import TASKS


@pytest.fixture(scope="module")
def sites(episodes: list[Episode], stats: dict[str, FeatureStats]) -> list[EpisodesDataset]:
    by_task = [[e for e in episodes if e.context.task == task] for task in TASKS]
    return [policy_dataset(part, stats, TASKS) for part in (by_task[0][:2], by_task[1])]


def fresh(dataset: EpisodesDataset) -> BehaviourCloningPolicy:
    return build_policy_model(dataset.observation_dim, len(TASKS), dataset.action_dim, (32,))


def flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([v.flatten() for v in model.state_dict().values()])


def test_one_round_is_the_example_weighted_mean_of_local_models(
    sites: list[EpisodesDataset],
) -> None:
    model = fresh(sites[0])
    config = FederatedConfig(rounds=1, local_steps=5, batch_size=16, lr=1e-2, seed=3)
    run = federated_average(model, sites, config)
    expected = torch.zeros_like(flat(model))
    total = sum(len(d) for d in sites)
    for index, dataset in enumerate(sites):
        local = copy.deepcopy(model)
        seed = (3 * 1_000_003 + 1 * 1009 + index) % (2**31)
        train_local(local, dataset, TrainConfig(5, 16, 1e-2, seed=seed))
        expected += flat(local) * (len(dataset) / total)
    assert torch.allclose(flat(run.model), expected, atol=1e-6)
    assert len(run.losses) == len(run.update_norms) == 1


def test_the_starting_model_is_left_untouched(sites: list[EpisodesDataset]) -> None:
    model = fresh(sites[0])
    before = flat(model).clone()
    federated_average(model, sites, FederatedConfig(rounds=2, local_steps=3, batch_size=16))
    assert torch.equal(flat(model), before)


def test_federated_training_lowers_the_loss(sites: list[EpisodesDataset]) -> None:
    config = FederatedConfig(rounds=8, local_steps=20, batch_size=32)
    run = federated_average(fresh(sites[0]), sites, config)
    assert run.losses[-1] < 0.5 * run.losses[0]


def test_clipped_updates_move_the_model_at_most_the_bound(sites: list[EpisodesDataset]) -> None:
    model = fresh(sites[0])
    dp = ServerClipping(clipping_norm=0.05, noise_multiplier=0.0)
    config = FederatedConfig(rounds=1, local_steps=10, batch_size=16, lr=1e-2)
    run = federated_average(model, sites, config, dp=dp)
    assert run.update_norms[0] > 0.05  # the bound binds
    step = torch.linalg.vector_norm(flat(run.model) - flat(model))
    assert step <= 0.05 + 1e-6


def test_noise_has_the_flower_standard_deviation(sites: list[EpisodesDataset]) -> None:
    model = fresh(sites[0])
    dp = ServerClipping(clipping_norm=1e-4, noise_multiplier=1000.0)  # updates clip to ~0
    config = FederatedConfig(rounds=1, local_steps=1, batch_size=8)
    run = federated_average(model, sites, config, dp=dp)
    noise = flat(run.model) - flat(model)
    assert noise.numel() > 1000
    assert dp.noise_std(2) == pytest.approx(0.05)
    assert noise.std().item() == pytest.approx(0.05, rel=0.1)
    assert abs(noise.mean().item()) < 0.01


def test_needs_sites_and_rounds(sites: list[EpisodesDataset]) -> None:
    with pytest.raises(TrainingError, match="sites and rounds"):
        federated_average(fresh(sites[0]), [], FederatedConfig())
    with pytest.raises(TrainingError, match="sites and rounds"):
        federated_average(fresh(sites[0]), sites, FederatedConfig(rounds=0))


def test_constant_and_cosine_schedules() -> None:
    assert FederatedConfig(lr=1e-3, cosine_lr=False).round_lr(7) == 1e-3
    cosine = FederatedConfig(lr=1e-3, rounds=4)
    assert cosine.round_lr(1) == pytest.approx(1e-3)
    assert cosine.round_lr(4) < cosine.round_lr(3) < cosine.round_lr(2) < 1e-3
