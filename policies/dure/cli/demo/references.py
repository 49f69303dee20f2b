"""The demo's reference models and their evaluation in Meta-World.

The federated model is compared with a **pooled** model (every admitted site's
allowed episodes trained in one place: the upper reference) and with each
factory's **local-only** model (its own episodes alone), all trained with the
same schedule, and evaluated on fresh layouts whose seeds no demonstration used.
Success: ``info["success"]`` at any step (:data:`SUCCESS_DEFINITION`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy.typing as npt
import torch

from dure.cli.demo.sites import DemoSite
from dure.client.episodes.query import EpisodeQuery
from dure.client.episodes.schema import Episode
from dure.client.episodes.stats import FeatureStats
from dure.client.store import EpisodeStore
from dure.client.training.baselines import FederatedConfig, federated_average
from dure.client.training.evaluate import SUCCESS_DEFINITION, evaluate_in_metaworld
from dure.client.training.model import build_policy_model
from dure.client.training.normalisation import (
    POLICY_OBSERVATION,
    merge_site_stats,
    policy_dataset,
)

__all__ = ["SUCCESS_DEFINITION", "Evaluation", "federated_model", "train_reference"]


@dataclass(frozen=True)
class Evaluation:
    """How many fresh layouts per task, and how long an attempt may run."""

    episodes: int
    local_episodes: int
    max_steps: int
    seed: int

    def success(
        self,
        model: torch.nn.Module,
        stats: Mapping[str, FeatureStats],
        tasks: Sequence[str],
        vocab: Sequence[str],
        *,
        local: bool = False,
    ) -> dict[str, float]:
        """Success rate per task of ``model`` on fresh layouts."""
        episodes = self.local_episodes if local else self.episodes
        return evaluate_in_metaworld(
            model, stats, tasks, vocab, episodes, self.seed, max_steps=self.max_steps
        )


def _episodes(site: DemoSite) -> list[Episode]:
    with EpisodeStore.open(site.home, create=False) as store:
        ids = [s.episode_id for s in store.select(EpisodeQuery(success=True))]
        return list(store.iter_episodes(ids))


def _site_stats(site: DemoSite) -> dict[str, FeatureStats]:
    with EpisodeStore.open(site.home, create=False) as store:
        ids = [s.episode_id for s in store.select(EpisodeQuery(success=True))]
        return store.stats(ids)


def train_reference(
    sites: Sequence[DemoSite],
    vocab: Sequence[str],
    config: FederatedConfig,
    hidden: tuple[int, ...],
    stats: Mapping[str, FeatureStats] | None = None,
) -> tuple[torch.nn.Module, dict[str, FeatureStats]]:
    """Train one model on the pooled episodes of ``sites`` with FedAvg's schedule.

    With one site this is that site's local-only model; ``stats`` defaults to
    the merged statistics of ``sites``.
    """
    torch.set_num_threads(1)
    chosen = dict(stats) if stats is not None else merge_site_stats([_site_stats(s) for s in sites])
    dataset = policy_dataset([e for s in sites for e in _episodes(s)], chosen, vocab)
    init = build_policy_model(
        dataset.observation_dim, len(vocab), dataset.action_dim, hidden, seed=config.seed
    )
    return federated_average(init, [dataset], config).model, chosen


def federated_model(
    arrays: Mapping[str, npt.NDArray[Any]],
    stats: Mapping[str, FeatureStats],
    vocab: Sequence[str],
    hidden: tuple[int, ...],
) -> torch.nn.Module:
    """Load the federation's final weights into the policy model."""
    observation = sum(int(stats[name].mean.shape[0]) for name in POLICY_OBSERVATION)
    action = int(stats["action"].mean.shape[0])
    model = build_policy_model(observation, len(vocab), action, hidden)
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in arrays.items()})
    return model
