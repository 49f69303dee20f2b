"""Local training behind a small protocol, so the federation does not depend on the model.

The ClientApp hands a :class:`LocalTask` (the global model, the store and the
exact episode ids the gate allowed, the consortium statistics and task
vocabulary, the round's hyper-parameters) to a :class:`Trainer` and gets a
:class:`LocalResult` back.  :func:`train_policy`, the default, is the
multi-task behaviour-cloning policy of :mod:`dure.client.training`
(``build_policy_model`` / ``train_local`` on ``policy_dataset_from_store``: the
policy's own features, normalised with the consortium statistics), trained with
torch (CUDA when present, else one CPU thread); tests pass lighter trainers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy.typing as npt

if TYPE_CHECKING:
    from dure.client.episodes.stats import FeatureStats
    from dure.client.store.store import EpisodeStore

__all__ = ["LocalResult", "LocalTask", "Trainer", "hidden_sizes", "train_policy"]


@dataclass(frozen=True)
class LocalTask:
    """One round of local training: what to start from, on which episodes, how."""

    global_arrays: Mapping[str, npt.NDArray[Any]]
    store: EpisodeStore
    episode_ids: Sequence[str]
    stats: Mapping[str, FeatureStats]
    tasks: tuple[str, ...]
    local_steps: int
    lr: float
    proximal_mu: float
    seed: int
    batch_size: int = 256


@dataclass(frozen=True)
class LocalResult:
    """The trained tensors (same names, shapes, dtypes), examples seen, final loss."""

    arrays: dict[str, npt.NDArray[Any]]
    examples: int
    loss: float


class Trainer(Protocol):
    """Trains locally; MUST read only ``task.episode_ids`` from ``task.store``."""

    def __call__(self, task: LocalTask) -> LocalResult:
        """Train from ``task.global_arrays`` and return the result."""
        ...


def hidden_sizes(arrays: Mapping[str, npt.NDArray[Any]]) -> tuple[int, ...]:
    """Infer an MLP's hidden widths: the output sizes of every 2-D weight but the last.

    Works for a ``state_dict`` of stacked ``Linear`` layers listed in order.
    """
    widths = [int(v.shape[0]) for k, v in arrays.items() if k.endswith("weight") and v.ndim == 2]
    return tuple(widths[:-1])


def train_policy(task: LocalTask) -> LocalResult:
    """Train :func:`dure.client.training.model.build_policy_model` with ``train_local``."""
    import numpy as np
    import torch

    from dure.client.training.local import TrainConfig, train_local
    from dure.client.training.model import build_policy_model
    from dure.client.training.normalisation import policy_dataset_from_store

    torch.set_num_threads(1)
    dataset = policy_dataset_from_store(task.store, list(task.episode_ids), task.stats, task.tasks)
    model = build_policy_model(
        dataset.observation_dim,
        len(task.tasks),
        dataset.action_dim,
        hidden=hidden_sizes(task.global_arrays),
    )
    state = {
        name: torch.from_numpy(np.array(v, copy=True)) for name, v in task.global_arrays.items()
    }
    model.load_state_dict(state)
    config = TrainConfig(
        local_steps=task.local_steps,
        batch_size=task.batch_size,
        lr=task.lr,
        proximal_mu=task.proximal_mu,
        seed=task.seed,
    )
    result = train_local(model, dataset, config, global_state=state)
    arrays = {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}
    return LocalResult(arrays, int(result.num_examples), float(result.loss))
