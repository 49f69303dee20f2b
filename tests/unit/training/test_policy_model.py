from __future__ import annotations

import pytest
import torch

from dure.client.training.errors import TrainingError
from dure.client.training.model import BehaviourCloningPolicy, build_policy_model


def rows(batch: int, obs_dim: int, tasks: torch.Tensor, n_tasks: int) -> torch.Tensor:
    observation = torch.randn(batch, obs_dim, generator=torch.Generator().manual_seed(1))
    return torch.cat((observation, torch.nn.functional.one_hot(tasks, n_tasks).float()), dim=1)


def test_maps_observation_and_task_rows_to_actions() -> None:
    model = build_policy_model(21, 5, 4, hidden=(32, 16))
    out = model(rows(7, 21, torch.arange(7) % 5, 5))
    assert out.shape == (7, 4)
    assert model.input_dim == 26


def test_same_seed_same_weights_other_seed_other_weights() -> None:
    a = build_policy_model(21, 3, 4, seed=5).state_dict()
    b = build_policy_model(21, 3, 4, seed=5).state_dict()
    c = build_policy_model(21, 3, 4, seed=6).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_building_leaves_the_global_random_state_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_policy_model(21, 3, 4, seed=9)
    assert torch.equal(torch.rand(3), expected)


def test_each_task_reads_only_its_own_head() -> None:
    model = build_policy_model(8, 3, 2, hidden=(16,))
    x = rows(4, 8, torch.zeros(4, dtype=torch.long), 3)
    before = model(x).detach().clone()
    with torch.no_grad():
        model.heads.weight[2:].add_(1.0)  # heads of tasks 1 and 2 (2 actions each)
        model.heads.bias[2:].add_(1.0)
    assert torch.equal(model(x), before)
    with torch.no_grad():
        model.heads.bias[:2].add_(1.0)
    assert torch.allclose(model(x), before + 1.0)


def test_state_dict_lists_hidden_widths_then_heads() -> None:
    state = build_policy_model(21, 10, 4, hidden=(64, 32)).state_dict()
    weights = [v for k, v in state.items() if k.endswith("weight")]
    assert [w.shape[0] for w in weights] == [64, 32, 40]
    assert list(state)[-2:] == ["heads.weight", "heads.bias"]


@pytest.mark.parametrize(
    ("obs", "tasks", "actions", "hidden"),
    [(0, 2, 4, (8,)), (21, 0, 4, (8,)), (21, 2, 0, (8,)), (21, 2, 4, ()), (21, 2, 4, (8, 0))],
)
def test_rejects_empty_sizes(obs: int, tasks: int, actions: int, hidden: tuple[int, ...]) -> None:
    with pytest.raises(TrainingError, match="positive"):
        BehaviourCloningPolicy(obs, tasks, actions, hidden)
