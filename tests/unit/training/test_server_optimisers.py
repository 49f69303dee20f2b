"""The reference loop's server optimisers against naive per-coordinate formulas.

The references are written from the papers (Hsu et al. 2019 for FedAvgM,
Reddi et al. 2021, Algorithm 2, for FedAdam and FedYogi) with the conventions
of Flower's strategies (flwr/serverapp/strategy/fedavgm.py, fedadam.py,
fedyogi.py, fedopt.py): plain Python floats, one coordinate at a time.
"""

from __future__ import annotations

import math

import pytest
import torch

from dure.client.training.baselines import FederatedConfig, federated_average
from dure.client.training.dataset import EpisodesDataset
from dure.client.training.errors import TrainingError
from dure.client.training.model import build_policy_model
from dure.client.training.server_opt import ServerOptConfig, ServerOptimiser

from .conftest import TASKS

ROUNDS = 4
DELTAS = [[0.3, -0.2, 0.05], [0.1, 0.4, -0.3], [-0.25, 0.1, 0.0], [0.2, -0.05, 0.15]]
START = [1.0, -0.5, 0.25]


def naive(config: ServerOptConfig) -> list[list[float]]:
    """Every round's global vector, coordinate by coordinate, from the formulas."""
    x, m, v, mom = list(START), [0.0] * 3, [0.0] * 3, [0.0] * 3
    out = []
    for t, delta in enumerate(DELTAS, start=1):
        for i, d in enumerate(delta):
            if config.name == "fedavg":
                x[i] += d
            elif config.name == "fedavgm":
                g = -d
                mom[i] = g if t == 1 else config.server_momentum * mom[i] + g
                x[i] -= config.server_learning_rate * mom[i]
            else:
                m[i] = config.beta_1 * m[i] + (1 - config.beta_1) * d
                if config.name == "fedadam":
                    v[i] = config.beta_2 * v[i] + (1 - config.beta_2) * d * d
                    eta = (
                        config.eta
                        * math.sqrt(1 - config.beta_2 ** (t + 1))
                        / (1 - config.beta_1 ** (t + 1))
                    )
                else:
                    sign = (v[i] > d * d) - (v[i] < d * d)
                    v[i] = v[i] - (1 - config.beta_2) * d * d * sign
                    eta = config.eta
                x[i] += eta * m[i] / (math.sqrt(v[i]) + config.tau)
        out.append(list(x))
    return out


@pytest.mark.parametrize(
    "config",
    [
        ServerOptConfig("fedavg"),
        ServerOptConfig("fedavgm", server_learning_rate=0.7, server_momentum=0.9),
        ServerOptConfig("fedadam", eta=0.05, beta_1=0.9, beta_2=0.99, tau=1e-3),
        ServerOptConfig("fedyogi", eta=0.05, beta_1=0.8, beta_2=0.95, tau=1e-2),
    ],
    ids=lambda c: c.name,
)
def test_each_round_matches_the_naive_formula(config: ServerOptConfig) -> None:
    server = ServerOptimiser(config)
    current = {"w": torch.tensor(START, dtype=torch.float32)}
    for t, (delta, expected) in enumerate(zip(DELTAS, naive(config), strict=True), start=1):
        current = server.step(current, {"w": torch.tensor(delta)}, t)
        assert current["w"].dtype == torch.float32
        torch.testing.assert_close(current["w"], torch.tensor(expected), rtol=1e-5, atol=1e-6)


def test_fedavgm_without_momentum_and_unit_rate_is_fedavg() -> None:
    plain, momentum_free = (
        ServerOptimiser(ServerOptConfig()),
        ServerOptimiser(ServerOptConfig("fedavgm", server_learning_rate=1.0, server_momentum=0.0)),
    )
    a = b = {"w": torch.tensor(START)}
    for t, delta in enumerate(DELTAS, start=1):
        a = plain.step(a, {"w": torch.tensor(delta)}, t)
        b = momentum_free.step(b, {"w": torch.tensor(delta)}, t)
    torch.testing.assert_close(a["w"], b["w"])


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "fedprox"},
        {"eta": 0.0},
        {"tau": -1.0},
        {"server_momentum": 1.0},
        {"beta_2": 1.5},
        {"server_learning_rate": float("nan")},
    ],
)
def test_settings_out_of_range_are_refused_with_a_hint(bad: dict[str, object]) -> None:
    with pytest.raises(TrainingError) as caught:
        ServerOptConfig(**bad)  # type: ignore[arg-type]
    assert caught.value.hint
    assert next(iter(bad)) in str(caught.value)


def test_the_loop_applies_the_server_optimiser_to_the_weighted_average(
    dataset: EpisodesDataset,
) -> None:
    """One round of FedAdam in the loop = FedAdam's step on FedAvg's one-round delta."""
    model = build_policy_model(dataset.observation_dim, len(TASKS), dataset.action_dim, (16,))
    base = FederatedConfig(rounds=1, local_steps=3, batch_size=16, lr=1e-2, seed=1)
    adam = ServerOptConfig("fedadam", eta=0.01)
    sites = [dataset, dataset]
    averaged = federated_average(model, sites, base).model.state_dict()
    start = model.state_dict()
    expected = ServerOptimiser(adam).step(start, {k: averaged[k] - start[k] for k in start}, 1)
    got = federated_average(model, sites, FederatedConfig(**{**base.__dict__, "server": adam}))
    for key, value in got.model.state_dict().items():
        torch.testing.assert_close(value, expected[key])
    assert any(not torch.equal(averaged[k], expected[k]) for k in start)
