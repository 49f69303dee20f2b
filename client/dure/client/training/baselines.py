"""A plain-torch federated-averaging loop: a cheap reference, not the federation.

Dure federates through Flower (:mod:`dure.server.federation`); this loop exists
so the learning benchmark can estimate, over several seeds and in seconds, what
the demo's federation learns compared with its two references:

* **pooled**: every admitted site's data in one place (one "site" holding it all);
* **local-only**: each site alone on its own data;
* **federated**: FedAvg over the sites (McMahan et al. 2017): every round each
  site starts from the global model, runs ``local_steps`` steps of
  :func:`~dure.client.training.local.train_local`, and the global model moves to
  the average of the sites' models weighted by their number of examples (what
  Flower's ``FedAvg`` does with ``"num-examples"``).

The server's step is :mod:`~dure.client.training.server_opt`'s (FedAvg,
FedAvgM, FedAdam or FedYogi with Flower's math), chosen by
:attr:`FederatedConfig.server`; the pooled and local-only references always take
the plain step (one site: its model is the new global model).

All three share one schedule: ``rounds`` rounds of ``local_steps`` steps with the
round's learning rate (:func:`~dure.client.training.local.round_learning_rate`
when ``cosine_lr``), so they get the same number of optimiser steps per site.

Differential privacy (:class:`ServerClipping`) follows Flower's
``DifferentialPrivacyServerSideFixedClipping``: each site's update
``w_site - w_global`` is clipped to L2 norm ``C`` (over all arrays together),
the clipped updates are averaged *unweighted* (the accounted path of Flower
1.41 requires equal weights), and Gaussian noise of standard deviation
``noise_multiplier * C / n`` is added to every coordinate of the average, ``n``
being the number of sites aggregated.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from dure.client.training.dataset import EpisodesDataset
from dure.client.training.errors import TrainingError
from dure.client.training.local import TrainConfig, round_learning_rate, train_local
from dure.client.training.server_opt import ServerOptConfig, ServerOptimiser

__all__ = ["FederatedConfig", "FederatedRun", "ServerClipping", "federated_average"]


@dataclass(frozen=True)
class FederatedConfig:
    """Schedule of a run: rounds, local steps per round, batch, learning rate, FedProx, seed.

    The defaults are the schedule measured in ``benchmarks/learning_bench.py`` (five
    non-IID sites, two Meta-World tasks each, 20 demonstrations per task): FedAvg
    reached about 97% of the pooled model's mean success.  Ten rounds of the same
    local steps reached about 75-80%.
    """

    rounds: int = 20
    local_steps: int = 50
    batch_size: int = 256
    lr: float = 3e-3
    cosine_lr: bool = True
    proximal_mu: float = 0.0
    seed: int = 0
    server: ServerOptConfig = field(default_factory=ServerOptConfig)

    def round_lr(self, server_round: int) -> float:
        """Learning rate of ``server_round`` (1-based)."""
        if not self.cosine_lr:
            return self.lr
        return round_learning_rate(self.lr, server_round, self.rounds)


@dataclass(frozen=True)
class ServerClipping:
    """Central DP with fixed clipping: clip each update to ``clipping_norm``, add noise."""

    clipping_norm: float
    noise_multiplier: float

    def noise_std(self, n_sites: int) -> float:
        """Standard deviation of the noise added to the average of ``n_sites`` updates."""
        return self.noise_multiplier * self.clipping_norm / n_sites


@dataclass
class FederatedRun:
    """The final global model and, per round, the mean training loss and update norm."""

    model: nn.Module
    losses: list[float] = field(default_factory=list)
    update_norms: list[float] = field(default_factory=list)


def federated_average(
    model: nn.Module,
    datasets: Sequence[EpisodesDataset],
    config: FederatedConfig,
    *,
    dp: ServerClipping | None = None,
) -> FederatedRun:
    """Run FedAvg of ``datasets`` (one per site) from ``model``'s weights.

    ``model`` is left untouched; the run's model is a copy.  With one dataset
    (and no DP) this is plain training on it with the same schedule: the pooled
    and local-only references.

    Raises
    ------
    TrainingError
        If no dataset is given, or the configuration is out of range.
    """
    if not datasets or config.rounds < 1:
        raise TrainingError(
            f"a federated run needs sites and rounds (got {len(datasets)} sites, "
            f"{config.rounds} rounds)",
            hint="Pass at least one site's dataset and rounds >= 1.",
        )
    run = FederatedRun(copy.deepcopy(model))
    noise = np.random.default_rng(config.seed)
    server = ServerOptimiser(config.server if len(datasets) > 1 else ServerOptConfig())
    for server_round in range(1, config.rounds + 1):
        start = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
        updates, weights, losses = [], [], []
        for index, dataset in enumerate(datasets):
            local = _local_round(run.model, dataset, config, server_round, index)
            updates.append({k: local[0][k] - start[k] for k in start})
            weights.append(float(local[1]))
            losses.append(local[2])
        run.losses.append(float(np.average(losses, weights=weights)))
        run.update_norms.append(float(np.mean([_norm(u) for u in updates])))
        step = _aggregate(updates, weights, dp, noise)
        run.model.load_state_dict(server.step(start, step, server_round))
    return run


def _local_round(
    model: nn.Module,
    dataset: EpisodesDataset,
    config: FederatedConfig,
    server_round: int,
    site: int,
) -> tuple[dict[str, torch.Tensor], int, float]:
    local = copy.deepcopy(model)
    global_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    seed = (config.seed * 1_000_003 + server_round * 1009 + site) % (2**31)
    train = TrainConfig(
        local_steps=config.local_steps,
        batch_size=config.batch_size,
        lr=config.round_lr(server_round),
        proximal_mu=config.proximal_mu,
        seed=seed,
    )
    result = train_local(local, dataset, train, global_state=global_state)
    state = {k: v.detach() for k, v in local.state_dict().items()}
    return state, result.num_examples, result.loss


def _norm(update: dict[str, torch.Tensor]) -> float:
    flat = torch.cat([v.detach().double().flatten() for v in update.values()])
    return float(torch.linalg.vector_norm(flat))


def _aggregate(
    updates: list[dict[str, torch.Tensor]],
    weights: list[float],
    dp: ServerClipping | None,
    noise: np.random.Generator,
) -> dict[str, torch.Tensor]:
    if dp is None:
        share = torch.tensor(weights, dtype=torch.float64) / sum(weights)
        return {key: _weighted(updates, key, share) for key in updates[0]}
    clipped = [_clip(u, dp.clipping_norm) for u in updates]
    even = torch.full((len(updates),), 1.0 / len(updates), dtype=torch.float64)
    std = dp.noise_std(len(updates))
    out = {}
    for key in updates[0]:
        mean = _weighted(clipped, key, even)
        out[key] = mean + torch.from_numpy(noise.normal(0.0, std, mean.shape)).to(mean.dtype)
    return out


def _weighted(
    updates: list[dict[str, torch.Tensor]], key: str, share: torch.Tensor
) -> torch.Tensor:
    stacked = torch.stack([u[key].double() for u in updates])
    mixed: torch.Tensor = torch.tensordot(share, stacked, dims=1)
    return mixed.to(updates[0][key].dtype)


def _clip(update: dict[str, torch.Tensor], bound: float) -> dict[str, torch.Tensor]:
    scale = min(1.0, bound / max(_norm(update), 1e-12))
    return {k: v * scale for k, v in update.items()}
