"""The factory's work behind each message, once the gate allowed it: domain, not Flower.

- :func:`contribute` (``train``): select exactly the allowed episodes, train
  locally from the global model, clip the update when the job clips on the
  client (DP ``client-fixed``), and sign a
  :class:`~dure.policies.contribution.ContributionClaim` over its digest.
- :func:`describe` (``query.stats``): the moments of the allowed episodes, for
  the features the policy reads (``POLICY_OBSERVATION`` and ``action``).
- :func:`bind_node` (``query.identify``): sign a
  :class:`~dure.policies.contribution.NodeBinding` for the coordinator's
  challenge (no data is read).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from dure.client.federation.gate import Authorisation
from dure.client.federation.selection import Selection, select_episodes
from dure.client.federation.settings import FactorySettings
from dure.client.federation.statistics import consortium_stats, moments_json
from dure.client.federation.trainer import LocalTask, Trainer
from dure.client.federation.wire import TrainRequest
from dure.client.store.store import EpisodeStore
from dure.client.training.normalisation import POLICY_OBSERVATION
from dure.policies.contribution import ContributionClaim, NodeBinding, state_digest
from dure.policies.signed import sign_document

__all__ = [
    "Contribution",
    "Refusal",
    "bind_node",
    "clip_update",
    "contribute",
    "describe",
    "local_task",
]

Arrays = Mapping[str, npt.NDArray[Any]]


@dataclass(frozen=True, slots=True)
class Contribution:
    """A trained update, ready to send: tensors, examples, loss, signed claim (DSSE JSON)."""

    arrays: dict[str, npt.NDArray[Any]]
    examples: int
    loss: float
    claim: bytes


@dataclass(frozen=True, slots=True)
class Refusal:
    """Work the factory declines after the gate, with its reasons (e.g. nothing selected)."""

    reasons: tuple[str, ...]


def local_task(request: TrainRequest, store: EpisodeStore, episode_ids: Sequence[str]) -> LocalTask:
    """The trainer's task for ``request`` on ``episode_ids`` of ``store``."""
    return LocalTask(
        global_arrays=request.arrays,
        store=store,
        episode_ids=episode_ids,
        stats=consortium_stats(request.stats),
        tasks=request.tasks,
        local_steps=request.local_steps,
        lr=request.lr,
        proximal_mu=request.proximal_mu,
        seed=request.seed,
        batch_size=request.batch_size,
    )


def contribute(
    auth: Authorisation, request: TrainRequest, trainer: Trainer, now: datetime
) -> Contribution | Refusal:
    """Train on the allowed episodes and sign the claim (see the module docstring)."""
    settings = auth.settings
    with EpisodeStore.open(settings.home, create=False) as store:
        selection = select_episodes(store, auth.decision.selector)
        if selection.empty or selection.root is None:
            return _nothing(auth)
        result = trainer(local_task(request, store, selection.episode_ids))
    arrays = result.arrays
    if request.dp_clip is not None:
        arrays = clip_update(arrays, request.arrays, request.dp_clip)
    claim = _claim(auth, selection, state_digest(arrays), result.examples, now)
    return Contribution(arrays, result.examples, result.loss, claim)


def describe(auth: Authorisation) -> tuple[str, str, int] | Refusal:
    """Return ``(moments JSON, tasks JSON, episodes)`` over the allowed episodes."""
    with EpisodeStore.open(auth.settings.home, create=False) as store:
        selection = select_episodes(store, auth.decision.selector)
        if selection.empty:
            return _nothing(auth)
        stats = store.stats(list(selection.episode_ids))
    shared = {k: v for k, v in stats.items() if k in (*POLICY_OBSERVATION, "action")}
    return moments_json(shared), json.dumps(list(selection.tasks)), len(selection.episode_ids)


def bind_node(
    settings: FactorySettings, node_id: int, run_id: str, nonce: str, now: datetime
) -> bytes:
    """Sign the coordinator's identification challenge for ``node_id`` (DSSE JSON)."""
    binding = NodeBinding(
        site=settings.urn, node_id=str(node_id), run_id=run_id, nonce=nonce, issued=now
    )
    return sign_document("request", binding, settings.key).to_json()


def clip_update(update: Arrays, reference: Arrays, clip: float) -> dict[str, npt.NDArray[Any]]:
    """Scale ``update - reference`` down to L2 norm ``clip`` if it is longer (client-side DP)."""
    deltas = {
        k: np.asarray(update[k], np.float64) - np.asarray(v, np.float64)
        for k, v in reference.items()
    }
    norm = float(np.sqrt(sum(float(np.square(d).sum()) for d in deltas.values())))
    factor = min(1.0, clip / norm) if norm > 0 else 1.0
    return {
        k: (np.asarray(v, np.float64) + deltas[k] * factor).astype(np.asarray(update[k]).dtype)
        for k, v in reference.items()
    }


def _claim(
    auth: Authorisation, selection: Selection, digest: str, examples: int, now: datetime
) -> bytes:
    settings = auth.settings
    claim = ContributionClaim.model_validate(
        {
            "job_id": auth.job.document.job_id,
            "job_digest": auth.job.document_id,
            "round": auth.round,
            "site": settings.urn,
            "update_digest": digest,
            "examples": examples,
            "episodes_root": selection.root,
            "policy_id": settings.policy.document_id,
            "issued": now.replace(microsecond=0),
        }
    )
    return sign_document("contribution", claim, settings.key).to_json()


def _nothing(auth: Authorisation) -> Refusal:
    return Refusal((f"[selection.empty] no episode matches {auth.decision.selector.describe()}",))
