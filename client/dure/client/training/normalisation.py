"""What the policy sees, in which units: its features, its dataset and consortium statistics.

The policy observes :data:`POLICY_OBSERVATION` only (``observation.state``: hand,
gripper, objects and goal, the 21 numbers Meta-World's evaluation can give back
at every step); the other observation features a factory logs (joint angles,
wrench) stay in the store.  :func:`policy_dataset` builds the
:class:`~dure.client.training.dataset.EpisodesDataset` over those features, so a
model trained on it can be run by :mod:`dure.client.training.evaluate`.

Consortium statistics: every site must normalise with the same numbers, so the
statistics are those of the union of the admitted sites' selections.
:func:`merge_site_stats` merges per-site :class:`FeatureStats` exactly for
``count``, ``mean``, ``std``, ``min`` and ``max`` (Chan et al.'s update in
:func:`~dure.client.episodes.stats.merge_all`), which is all that ``mean_std`` and
``min_max`` normalisation read.  (Over Flower the same merge runs on moments
only, never frames: :mod:`dure.server.federation.statistics`.)

:class:`PolicyScaling` holds the two normalisers (observation in, action out)
and the task vocabulary, and turns one raw state and a task into a model input
row and a model output back into a raw action.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from dure.client.episodes.schema import Episode
from dure.client.episodes.stats import FeatureStats, Normalizer, merge_all
from dure.client.training.dataset import EpisodesDataset
from dure.client.training.errors import TrainingError

if TYPE_CHECKING:
    from dure.client.store.store import EpisodeStore

__all__ = [
    "POLICY_OBSERVATION",
    "NormalisationMode",
    "PolicyScaling",
    "merge_site_stats",
    "policy_dataset",
    "policy_dataset_from_store",
    "policy_episodes",
]

POLICY_OBSERVATION: tuple[str, ...] = ("observation.state",)
"""The observation features the policy reads, in the order they are concatenated."""

NormalisationMode = Literal["mean_std", "min_max"]


def policy_episodes(episodes: Sequence[Episode]) -> list[Episode]:
    """Return ``episodes`` with only the :data:`POLICY_OBSERVATION` features observed.

    Raises
    ------
    TrainingError
        If an episode lacks one of those features.
    """
    out = []
    for episode in episodes:
        observed = episode.frames.observation
        missing = [key for key in POLICY_OBSERVATION if key not in observed]
        if missing:
            raise TrainingError(
                f"{episode.label()}: no {missing} to train the policy on (has {sorted(observed)})",
                hint="Map the feature in the site profile and ingest the episodes again.",
            )
        frames = dataclasses.replace(
            episode.frames, observation={key: observed[key] for key in POLICY_OBSERVATION}
        )
        out.append(dataclasses.replace(episode, frames=frames))
    return out


def policy_dataset(
    episodes: Sequence[Episode],
    stats: Mapping[str, FeatureStats],
    tasks: Sequence[str],
    *,
    mode: NormalisationMode = "mean_std",
) -> EpisodesDataset:
    """The dataset the policy trains on: its features, consortium ``stats``, the vocabulary."""
    return EpisodesDataset(policy_episodes(episodes), stats, tasks=tasks, mode=mode)


def policy_dataset_from_store(
    store: EpisodeStore,
    episode_ids: Sequence[str],
    stats: Mapping[str, FeatureStats],
    tasks: Sequence[str],
    *,
    mode: NormalisationMode = "mean_std",
) -> EpisodesDataset:
    """:func:`policy_dataset` over ``episode_ids`` read from ``store`` (exactly those)."""
    return policy_dataset(list(store.iter_episodes(episode_ids)), stats, tasks, mode=mode)


def merge_site_stats(per_site: Sequence[Mapping[str, FeatureStats]]) -> dict[str, FeatureStats]:
    """Merge every site's statistics into the consortium's, feature by feature.

    Raises
    ------
    TrainingError
        If no site is given, or the sites do not share the same features.
    """
    if not per_site:
        raise TrainingError("no site statistics to merge", hint="Admit at least one site.")
    features = set(per_site[0])
    if any(set(site) != features for site in per_site):
        seen = [sorted(site) for site in per_site]
        raise TrainingError(
            f"sites report different features: {seen}",
            hint="Sites of one job must map the same canonical features.",
        )
    return {key: merge_all([site[key] for site in per_site]) for key in sorted(features)}


@dataclass(frozen=True)
class PolicyScaling:
    """The policy's input and output scaling and its task vocabulary.

    ``observation`` normalises each :data:`POLICY_OBSERVATION` feature; ``action``
    maps normalised actions back to the robot's units.
    """

    observation: tuple[Normalizer, ...]
    action: Normalizer
    tasks: tuple[str, ...]

    @classmethod
    def from_stats(
        cls,
        stats: Mapping[str, FeatureStats],
        tasks: Sequence[str],
        mode: NormalisationMode = "mean_std",
    ) -> PolicyScaling:
        """Build the scaling from (consortium) ``stats``, as :func:`policy_dataset` does.

        Raises
        ------
        TrainingError
            If a feature has no statistics or the vocabulary is empty.
        """
        missing = [key for key in (*POLICY_OBSERVATION, "action") if key not in stats]
        if missing or not tasks:
            raise TrainingError(
                f"cannot scale the policy: no statistics for {missing} or no tasks ({list(tasks)})",
                hint="Pass the statistics and task vocabulary the model was trained with.",
            )
        observation = tuple(Normalizer.from_stats(stats[key], mode) for key in POLICY_OBSERVATION)
        return cls(observation, Normalizer.from_stats(stats["action"], mode), tuple(tasks))

    def task_index(self, task: str) -> int:
        """Position of ``task`` in the vocabulary.

        Raises
        ------
        TrainingError
            If the vocabulary does not hold ``task``.
        """
        if task not in self.tasks:
            raise TrainingError(
                f"task {task!r} is not in the model's vocabulary {list(self.tasks)}",
                hint="Evaluate only tasks the model was built for.",
            )
        return self.tasks.index(task)

    def input_row(
        self, observation: Sequence[npt.NDArray[np.floating]], task: str
    ) -> npt.NDArray[np.float32]:
        """One model input: each feature normalised, concatenated, then the task one-hot."""
        parts = [
            norm.normalise(value) for norm, value in zip(self.observation, observation, strict=True)
        ]
        one_hot = np.zeros(len(self.tasks), dtype=np.float32)
        one_hot[self.task_index(task)] = 1.0
        return np.concatenate([*parts, one_hot]).astype(np.float32)

    def raw_action(self, normalised: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
        """Map a model output back to the robot's units."""
        return self.action.denormalise(normalised)
