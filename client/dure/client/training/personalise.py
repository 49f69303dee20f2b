"""Personalised models: the consortium model fine-tuned on one site's own data.

:func:`fine_tune` copies the consortium (federated) model and runs ``steps`` Adam
steps of :func:`~dure.client.training.local.train_local` on the site's own
frames at a constant learning rate ``lr`` (the consortium model is left as it
was).  Fine-tuning moves the shared trunk toward the site's tasks and can make
the model worse on the tasks the site lacks (forgetting), so the site's
personalised policy is *task-routed* (:class:`TaskRoutedPolicy`): for the site's
own tasks it runs the fine-tuned weights, for every other task the consortium
weights, unchanged.  Both weight sets stay at the site (only digests leave it).

:func:`action_mse` is the cheap proxy the benchmark tunes with: the mean squared
error between predicted and demonstrated normalised actions on held-out frames.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from dure.client.training.dataset import EpisodesDataset
from dure.client.training.errors import TrainingError
from dure.client.training.local import TrainConfig, dataset_tensors, train_local

__all__ = ["FineTuneConfig", "TaskRoutedPolicy", "action_mse", "fine_tune"]


@dataclass(frozen=True)
class FineTuneConfig:
    """Fine-tuning of the consortium model on a site's data: steps, rate, batch, seed.

    ``steps = 0`` keeps the consortium model (no personalisation).
    """

    steps: int = 200
    lr: float = 3e-4
    batch_size: int = 256
    seed: int = 0


def fine_tune(model: nn.Module, dataset: EpisodesDataset, config: FineTuneConfig) -> nn.Module:
    """A copy of ``model`` trained ``config.steps`` steps on ``dataset`` (``model`` untouched).

    Raises
    ------
    TrainingError
        If the settings are out of range or the dataset does not fit the model.
    """
    if config.steps < 0:
        raise TrainingError(
            f"fine-tuning steps must be >= 0 (got {config.steps})",
            hint="Use 0 to keep the consortium model, or a positive number of steps.",
        )
    personal = copy.deepcopy(model)
    if config.steps:
        train = TrainConfig(
            local_steps=config.steps,
            batch_size=config.batch_size,
            lr=config.lr,
            seed=config.seed,
        )
        train_local(personal, dataset, train)
    return personal


class TaskRoutedPolicy(nn.Module):
    """The site's fine-tuned weights for its own tasks, the consortium's for the others.

    Input rows are ``observation ‖ task one-hot`` (``obs_dim`` numbers, then the
    one-hot over the consortium vocabulary); each row goes to the model its task
    routes it to.

    Parameters
    ----------
    personal, consortium
        The fine-tuned and the consortium model (same architecture).
    obs_dim
        Length of the normalised observation.
    own_tasks
        Indices, in the consortium vocabulary, of the site's own tasks.
    """

    def __init__(
        self, personal: nn.Module, consortium: nn.Module, obs_dim: int, own_tasks: Sequence[int]
    ) -> None:
        super().__init__()
        self.personal = personal
        self.consortium = consortium
        self.obs_dim = obs_dim
        self.own = sorted(set(own_tasks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, obs_dim + n_tasks)`` rows to actions, each by its task's model."""
        own = x[:, self.obs_dim :][:, self.own].sum(dim=1, keepdim=True) > 0
        out: torch.Tensor = torch.where(own, self.personal(x), self.consortium(x))
        return out


def action_mse(model: nn.Module, dataset: EpisodesDataset) -> float:
    """Mean squared error of ``model``'s normalised actions on every frame of ``dataset``."""
    inputs, targets = dataset_tensors(dataset)
    model.eval()
    with torch.no_grad():
        return float(torch.mean((model(inputs) - targets) ** 2))
