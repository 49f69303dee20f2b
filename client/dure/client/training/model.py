"""The multi-task behaviour-cloning policy: normalised observation and task in, action out.

Input: one row ``x = observation ‖ one_hot(task)`` of length ``obs_dim + n_tasks``
(the normalised observation of :class:`~dure.client.training.dataset.EpisodesDataset`
followed by its task one-hot).  Output: the normalised action (``action_dim``).

Architecture: a shared trunk of ``Linear + ReLU`` layers reads the whole row,
and one linear *head per task* maps the trunk's features to that task's action;
the task's one-hot picks the head.  Per-task heads matter for federation: each
factory holds only some tasks (non-IID), and with a single shared output layer
the sites' local steps pull that layer toward their own tasks, so their average
served none of them well (measured while building ``benchmarks/learning_bench.py``,
one seed, five two-task sites: FedAvg reached 66-82% of the pooled model's mean
success with one output layer, 92% with heads).  A head that no data of a site
touched gets no gradient there, so a local-only model keeps untrained heads for
the tasks it never saw.

The ``state_dict`` lists the trunk's layers in order and then ``heads``
(``trunk.0.weight``, ``trunk.0.bias``, ``trunk.2.weight`` ... ``heads.weight``,
``heads.bias``): every 2-D weight but the last has a hidden width as its first
dimension, which is how a receiver rebuilds the model from arrays alone.
"""

from __future__ import annotations

import torch
from torch import nn

from dure.client.training.errors import TrainingError

__all__ = ["BehaviourCloningPolicy", "build_policy_model"]


class BehaviourCloningPolicy(nn.Module):
    """Shared MLP trunk over ``observation ‖ task one-hot``, one linear head per task.

    Parameters
    ----------
    obs_dim, n_tasks, action_dim
        Sizes of the normalised observation, the task vocabulary and the action.
    hidden
        Widths of the trunk's hidden layers (at least one).
    """

    def __init__(
        self, obs_dim: int, n_tasks: int, action_dim: int, hidden: tuple[int, ...]
    ) -> None:
        super().__init__()
        if min(obs_dim, n_tasks, action_dim) < 1 or not hidden or min(hidden) < 1:
            raise TrainingError(
                f"policy sizes must be positive: obs_dim={obs_dim}, n_tasks={n_tasks}, "
                f"action_dim={action_dim}, hidden={hidden}",
                hint="Take the sizes from the dataset (observation_dim, action_dim) and the "
                "task vocabulary, with at least one hidden layer.",
            )
        self.obs_dim = obs_dim
        self.n_tasks = n_tasks
        self.action_dim = action_dim
        layers: list[nn.Module] = []
        width = obs_dim + n_tasks
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.trunk = nn.Sequential(*layers)
        self.heads = nn.Linear(width, n_tasks * action_dim)

    @property
    def input_dim(self) -> int:
        """Length of one input row (``obs_dim + n_tasks``)."""
        return self.obs_dim + self.n_tasks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, obs_dim + n_tasks)`` rows to ``(B, action_dim)`` normalised actions."""
        task = x[:, self.obs_dim :]
        per_task = self.heads(self.trunk(x)).view(-1, self.n_tasks, self.action_dim)
        return torch.einsum("bta,bt->ba", per_task, task)


def build_policy_model(
    obs_dim: int,
    n_tasks: int,
    action_dim: int,
    hidden: tuple[int, ...] = (256, 256),
    *,
    seed: int = 0,
) -> BehaviourCloningPolicy:
    """Build the policy with weights drawn from ``seed`` (same seed, same weights).

    The global random state is left as it was: initialisation draws from a
    forked generator seeded with ``seed``.

    Raises
    ------
    TrainingError
        If a size is not positive or ``hidden`` is empty.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return BehaviourCloningPolicy(obs_dim, n_tasks, action_dim, tuple(hidden))
