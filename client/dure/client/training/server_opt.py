"""Server optimisers of the reference loop, with the math of Flower's strategies.

Each round the server holds the global arrays ``x`` and receives the aggregate
``x_agg`` (the clients' models averaged by number of examples, what FedAvg would
adopt); ``delta = x_agg - x``.  The new global arrays are, per array:

* ``fedavg``: ``x + delta`` (McMahan et al. 2017);
* ``fedavgm`` (Hsu et al. 2019; Flower's ``FedAvgM``, PyTorch-SGD convention):
  pseudo-gradient ``g = -delta``; momentum ``v = g`` in the first round, then
  ``v = server_momentum * v + g``; ``x - server_learning_rate * v`` (with
  ``server_momentum = 0`` and ``server_learning_rate = 1`` this is FedAvg);
* ``fedadam`` (Reddi et al. 2021; Flower's ``FedAdam``): ``m = beta_1 m +
  (1 - beta_1) delta``, ``v = beta_2 v + (1 - beta_2) delta^2`` (both from zero),
  ``eta_t = eta sqrt(1 - beta_2^(t+1)) / (1 - beta_1^(t+1))`` at round ``t``,
  ``x + eta_t m / (sqrt(v) + tau)``;
* ``fedyogi`` (Reddi et al. 2021; Flower's ``FedYogi``): ``m`` as FedAdam,
  ``v = v - (1 - beta_2) delta^2 sign(v - delta^2)`` (from zero),
  ``x + eta m / (sqrt(v) + tau)`` (no bias correction, as Flower).

Parameter names are Flower's (``server_learning_rate``, ``server_momentum``,
``eta``, ``beta_1``, ``beta_2``, ``tau``); Flower's ``eta_l`` (the clients'
learning rate) is :attr:`~dure.client.training.baselines.FederatedConfig.lr`.
The arithmetic is done in float64 and cast back to each array's dtype.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch

from dure.client.training.errors import TrainingError

__all__ = ["SERVER_OPTIMISERS", "ServerOptConfig", "ServerOptimiser"]

ServerOptName = Literal["fedavg", "fedavgm", "fedadam", "fedyogi"]
SERVER_OPTIMISERS: tuple[ServerOptName, ...] = ("fedavg", "fedavgm", "fedadam", "fedyogi")

State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class ServerOptConfig:
    """Which server optimiser and its parameters (Flower's names and defaults per strategy).

    ``eta``, ``beta_1``, ``beta_2`` and ``tau`` are read by ``fedadam`` and
    ``fedyogi``; ``server_learning_rate`` and ``server_momentum`` by ``fedavgm``.
    """

    name: ServerOptName = "fedavg"
    server_learning_rate: float = 1.0
    server_momentum: float = 0.0
    eta: float = 1e-2
    beta_1: float = 0.9
    beta_2: float = 0.99
    tau: float = 1e-3

    def __post_init__(self) -> None:
        problems = []
        if self.name not in SERVER_OPTIMISERS:
            problems.append(f"name={self.name!r} (one of {', '.join(SERVER_OPTIMISERS)})")
        for key in ("server_learning_rate", "eta", "tau"):
            value = getattr(self, key)
            if not (value > 0 and math.isfinite(value)):
                problems.append(f"{key}={value} (> 0)")
        for key in ("server_momentum", "beta_1", "beta_2"):
            value = getattr(self, key)
            if not 0.0 <= value < 1.0:
                problems.append(f"{key}={value} (in [0, 1))")
        if problems:
            raise TrainingError(
                f"server optimiser settings out of range: {'; '.join(problems)}",
                hint="Use fedavg, fedavgm, fedadam or fedyogi with positive rates, "
                "momentum and betas in [0, 1) and tau > 0.",
            )


@dataclass
class ServerOptimiser:
    """The server's state across rounds (momentum, first and second moments)."""

    config: ServerOptConfig
    momentum: State | None = None
    m_t: State = field(default_factory=dict)
    v_t: State = field(default_factory=dict)

    def step(
        self,
        current: Mapping[str, torch.Tensor],
        delta: Mapping[str, torch.Tensor],
        server_round: int,
    ) -> State:
        """New global arrays from ``current`` and the aggregate's ``delta`` at ``server_round``."""
        cfg = self.config
        x = {k: v.detach().double() for k, v in current.items()}
        d = {k: delta[k].detach().double() for k in x}
        if cfg.name == "fedavg":
            new = {k: x[k] + d[k] for k in x}
        elif cfg.name == "fedavgm":
            new = self._fedavgm(x, d)
        else:
            new = self._adaptive(x, d, server_round)
        return {k: new[k].to(current[k].dtype) for k in x}

    def _fedavgm(self, x: State, d: State) -> State:
        cfg = self.config
        grad = {k: -d[k] for k in x}
        if cfg.server_momentum > 0.0:
            if self.momentum is None:
                self.momentum = grad
            else:
                self.momentum = {k: cfg.server_momentum * self.momentum[k] + grad[k] for k in x}
            grad = self.momentum
        return {k: x[k] - cfg.server_learning_rate * grad[k] for k in x}

    def _adaptive(self, x: State, d: State, server_round: int) -> State:
        cfg = self.config
        if not self.m_t:
            self.m_t = {k: torch.zeros_like(v) for k, v in d.items()}
            self.v_t = {k: torch.zeros_like(v) for k, v in d.items()}
        self.m_t = {k: cfg.beta_1 * self.m_t[k] + (1 - cfg.beta_1) * d[k] for k in x}
        if cfg.name == "fedadam":
            self.v_t = {k: cfg.beta_2 * self.v_t[k] + (1 - cfg.beta_2) * d[k] ** 2 for k in x}
            eta = (
                cfg.eta
                * math.sqrt(1 - cfg.beta_2 ** (server_round + 1.0))
                / (1 - cfg.beta_1 ** (server_round + 1.0))
            )
        else:
            self.v_t = {
                k: self.v_t[k]
                - (1.0 - cfg.beta_2) * d[k] ** 2 * torch.sign(self.v_t[k] - d[k] ** 2)
                for k in x
            }
            eta = cfg.eta
        return {k: x[k] + eta * self.m_t[k] / (torch.sqrt(self.v_t[k]) + cfg.tau) for k in x}
