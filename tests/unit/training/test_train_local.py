from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch

from dure.client.training.dataset import EpisodesDataset
from dure.client.training.errors import TrainingError
from dure.client.training.local import (
    TrainConfig,
    dataset_tensors,
    round_learning_rate,
    train_local,
)
from dure.client.training.model import BehaviourCloningPolicy, build_policy_model


def fresh(dataset: EpisodesDataset, seed: int = 0) -> BehaviourCloningPolicy:
    return build_policy_model(
        dataset.observation_dim, len(dataset.tasks), dataset.action_dim, (64, 64), seed=seed
    )


def mse(model: torch.nn.Module, dataset: EpisodesDataset) -> float:
    inputs, targets = dataset_tensors(dataset)
    with torch.no_grad():
        return float(torch.mean((model(inputs) - targets) ** 2))


def test_tensors_are_the_items_in_order(dataset: EpisodesDataset) -> None:
    inputs, targets = dataset_tensors(dataset)
    assert inputs.shape == (len(dataset), dataset.observation_dim + len(dataset.tasks))
    for index in (0, 17, len(dataset) - 1):
        item = dataset[index]
        assert torch.equal(inputs[index], torch.cat((item["observation"], item["task"])))
        assert torch.equal(targets[index], item["action"])


def test_training_reduces_the_loss(dataset: EpisodesDataset) -> None:
    model = fresh(dataset)
    before = mse(model, dataset)
    result = train_local(model, dataset, TrainConfig(local_steps=300, batch_size=64, lr=3e-3))
    after = mse(model, dataset)
    assert result.num_examples == len(dataset)
    assert after < 0.25 * before
    assert result.loss < before


def test_same_config_same_weights(dataset: EpisodesDataset) -> None:
    config = TrainConfig(local_steps=20, batch_size=32, seed=4)
    a, b, c = fresh(dataset), fresh(dataset), fresh(dataset)
    train_local(a, dataset, config)
    train_local(b, dataset, config)
    train_local(c, dataset, dataclasses.replace(config, seed=5))
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert not all(torch.equal(a.state_dict()[k], c.state_dict()[k]) for k in a.state_dict())


def distance(model: torch.nn.Module, anchor: dict[str, torch.Tensor]) -> float:
    return float(sum(torch.sum((p.detach() - anchor[n]) ** 2) for n, p in model.named_parameters()))


def test_proximal_term_pulls_toward_the_global_state(dataset: EpisodesDataset) -> None:
    anchor = {k: torch.zeros_like(v) for k, v in fresh(dataset).state_dict().items()}
    config = TrainConfig(local_steps=100, batch_size=64, lr=3e-3)
    free, held = fresh(dataset), fresh(dataset)
    train_local(free, dataset, config, global_state=anchor)
    train_local(held, dataset, dataclasses.replace(config, proximal_mu=1.0), global_state=anchor)
    assert distance(held, anchor) < 0.5 * distance(free, anchor)


def test_proximal_term_needs_a_global_state(dataset: EpisodesDataset) -> None:
    with pytest.raises(TrainingError, match="global_state"):
        train_local(fresh(dataset), dataset, TrainConfig(proximal_mu=0.1))


def test_global_state_must_match_the_model(dataset: EpisodesDataset) -> None:
    state = dict(fresh(dataset).state_dict())
    state["heads.bias"] = torch.zeros(3)
    with pytest.raises(TrainingError, match=r"heads\.bias"):
        train_local(fresh(dataset), dataset, TrainConfig(proximal_mu=0.1), global_state=state)


def test_model_must_fit_the_dataset(dataset: EpisodesDataset) -> None:
    wrong_obs = build_policy_model(dataset.observation_dim + 1, 2, 4, (8,))
    wrong_actions = build_policy_model(dataset.observation_dim, 2, 3, (8,))
    for model in (wrong_obs, wrong_actions):
        with pytest.raises(TrainingError, match="inputs"):
            train_local(model, dataset, TrainConfig(local_steps=1))


@pytest.mark.parametrize(
    "config",
    [
        TrainConfig(local_steps=0),
        TrainConfig(batch_size=0),
        TrainConfig(lr=0.0),
        TrainConfig(lr=float("nan")),
        TrainConfig(proximal_mu=-1.0),
    ],
)
def test_rejects_configurations_out_of_range(dataset: EpisodesDataset, config: TrainConfig) -> None:
    with pytest.raises(TrainingError, match="out of range"):
        train_local(fresh(dataset), dataset, config)


def full_batch_adam(
    model: torch.nn.Module, dataset: EpisodesDataset, steps: int, lr: float
) -> list[float]:
    """Reference: ``steps`` Adam steps on the MSE over every frame at once; the losses."""
    inputs, targets = dataset_tensors(dataset)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    for _ in range(steps):
        loss = torch.mean((model(inputs) - targets) ** 2)
        optimiser.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimiser.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


def test_batches_larger_than_the_dataset_use_every_frame(dataset: EpisodesDataset) -> None:
    """Each step of a batch over the dataset's size is a step on the loss of every frame.

    Every frame has its own observation and action, so each moves the gradient its
    own way: dropping, repeating or weighting any frame changes the weights after
    three Adam steps (the second and third depend on the gradients' magnitudes,
    not only their signs), and the mean loss the call reports.
    """
    steps, lr = 3, 1e-3
    trained, reference = fresh(dataset), fresh(dataset)
    result = train_local(trained, dataset, TrainConfig(local_steps=steps, batch_size=10**6, lr=lr))
    losses = full_batch_adam(reference, dataset, steps, lr)
    assert result.num_examples == len(dataset)
    assert result.loss == pytest.approx(sum(losses) / steps, rel=1e-5)
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(trained.state_dict()[name], value, rtol=1e-4, atol=1e-6)
    moved = fresh(dataset).state_dict()
    assert not all(torch.equal(trained.state_dict()[k], moved[k]) for k in moved)


def test_a_model_trained_on_fewer_frames_differs_from_the_reference(
    dataset: EpisodesDataset,
) -> None:
    """The comparison above tells the whole dataset from any frame left out."""
    steps, lr = 3, 1e-3
    reference, fewer = fresh(dataset), fresh(dataset)
    full_batch_adam(reference, dataset, steps, lr)
    train_local(fewer, dataset, TrainConfig(local_steps=steps, batch_size=len(dataset) - 1, lr=lr))
    assert any(
        not torch.allclose(fewer.state_dict()[k], v, rtol=1e-4, atol=1e-6)
        for k, v in reference.state_dict().items()
    )


def test_cosine_rate_starts_at_the_base_and_decays() -> None:
    rates = [round_learning_rate(1e-3, r, 10) for r in range(1, 11)]
    assert rates[0] == pytest.approx(1e-3)
    assert all(a > b for a, b in itertools.pairwise(rates))
    assert rates[-1] > 0
    assert round_learning_rate(1e-3, 6, 10) == pytest.approx(0.5e-3)
    assert round_learning_rate(1e-3, 11, 10, floor=0.1) == pytest.approx(1e-4)
