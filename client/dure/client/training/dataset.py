"""A torch ``Dataset`` over a selection of canonical episodes.

Each item is one frame::

    {
        "observation": float32 (D,)   every observation feature, normalised, concatenated
                                      in sorted key order (observation.force before
                                      observation.state),
        "task_index":  int64 ()       the episode's task in the task vocabulary,
        "task":        float32 (T,)   the same as a one-hot vector,
        "action":      float32 (A,)   the action, normalised,
    }

Normalisation uses the statistics given (by default the store's statistics of
the selection, :meth:`EpisodeStore.stats`), so a model trained here and the
policy that runs it agree; :meth:`EpisodesDataset.denormalise_action` maps a
prediction back to the robot's units.  The task vocabulary is the sorted tasks
of the selection unless one is given (a federation passes the consortium's, so
every site's one-hot means the same thing).

The whole selection is held in memory as tensors built once.  Threads are the
caller's business: call ``torch.set_num_threads(1)`` where training runs on
shared cores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from dure.client.episodes.schema import Episode
from dure.client.episodes.stats import FeatureStats, Normalizer
from dure.client.errors import EpisodeError

if TYPE_CHECKING:
    from dure.client.store.store import EpisodeStore

__all__ = ["EpisodesDataset"]


class EpisodesDataset(Dataset[dict[str, torch.Tensor]]):
    """Frames of ``episodes`` as normalised (observation, task, action) items.

    Parameters
    ----------
    episodes
        The selection (validated episodes sharing one feature schema).
    stats
        Statistics per feature (every observation key and ``"action"``).
    tasks
        The task vocabulary; defaults to the sorted tasks of ``episodes``.
    mode
        ``"mean_std"`` or ``"min_max"`` normalisation.
    """

    def __init__(
        self,
        episodes: Sequence[Episode],
        stats: Mapping[str, FeatureStats],
        *,
        tasks: Sequence[str] | None = None,
        mode: Literal["mean_std", "min_max"] = "mean_std",
    ) -> None:
        if not episodes:
            raise EpisodeError("cannot train on an empty selection", hint="Widen the selection.")
        self.observation_keys = sorted(episodes[0].frames.observation)
        self.tasks = (
            tuple(tasks) if tasks is not None else tuple(sorted({e.context.task for e in episodes}))
        )
        self.normalizers = {
            key: Normalizer.from_stats(_stats_for(stats, key), mode)
            for key in [*self.observation_keys, "action"]
        }
        self._observation = torch.from_numpy(self._observations(episodes))
        self._action = torch.from_numpy(
            self.normalizers["action"].normalise(
                np.concatenate([e.frames.action for e in episodes])
            )
        )
        self._task_index = torch.from_numpy(self._task_indices(episodes))
        self._one_hot = torch.eye(len(self.tasks), dtype=torch.float32)

    @classmethod
    def from_store(
        cls,
        store: EpisodeStore,
        episode_ids: Sequence[str],
        *,
        stats: Mapping[str, FeatureStats] | None = None,
        tasks: Sequence[str] | None = None,
        mode: Literal["mean_std", "min_max"] = "mean_std",
    ) -> EpisodesDataset:
        """Load the selection from ``store``; statistics default to the selection's own."""
        episodes = list(store.iter_episodes(episode_ids))
        chosen = stats if stats is not None else store.stats(episode_ids)
        return cls(episodes, chosen, tasks=tasks, mode=mode)

    def __len__(self) -> int:
        return int(self._action.shape[0])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        task = self._task_index[index]
        return {
            "observation": self._observation[index],
            "task_index": task,
            "task": self._one_hot[task],
            "action": self._action[index],
        }

    @property
    def observation_dim(self) -> int:
        """Length ``D`` of the concatenated observation."""
        return int(self._observation.shape[1])

    @property
    def action_dim(self) -> int:
        """Length ``A`` of the action."""
        return int(self._action.shape[1])

    def denormalise_action(self, action: torch.Tensor) -> torch.Tensor:
        """Map normalised actions (``(..., A)``) back to the robot's units."""
        norm = self.normalizers["action"]
        return action * torch.from_numpy(norm.scale) + torch.from_numpy(norm.shift)

    def normalise_observation(self, observation: Mapping[str, np.ndarray]) -> torch.Tensor:
        """Normalise raw observations (key -> ``(..., d)``) the way the items are."""
        parts = [self.normalizers[key].normalise(observation[key]) for key in self.observation_keys]
        return torch.from_numpy(np.concatenate(parts, axis=-1))

    def _observations(self, episodes: Sequence[Episode]) -> np.ndarray:
        parts = []
        for key in self.observation_keys:
            raw = np.concatenate([_feature(e, key) for e in episodes])
            parts.append(self.normalizers[key].normalise(raw))
        return np.ascontiguousarray(np.concatenate(parts, axis=1))

    def _task_indices(self, episodes: Sequence[Episode]) -> np.ndarray:
        lookup = {task: index for index, task in enumerate(self.tasks)}
        missing = sorted({e.context.task for e in episodes} - set(lookup))
        if missing:
            raise EpisodeError(
                f"tasks {missing} are not in the task vocabulary {list(self.tasks)}",
                hint="Pass a vocabulary that lists every task of the selection.",
            )
        return np.concatenate(
            [np.full(e.n_frames, lookup[e.context.task], dtype=np.int64) for e in episodes]
        )


def _stats_for(stats: Mapping[str, FeatureStats], key: str) -> FeatureStats:
    if key not in stats:
        raise EpisodeError(
            f"no statistics for feature {key!r} (have {sorted(stats)})",
            hint="Compute the statistics over the same selection (EpisodeStore.stats).",
        )
    return stats[key]


def _feature(episode: Episode, key: str) -> np.ndarray:
    if key not in episode.frames.observation:
        raise EpisodeError(
            f"{episode.label()}: has no {key!r}; a selection's episodes share their features",
            hint="Select episodes from one store (one feature schema).",
        )
    return episode.frames.observation[key]
