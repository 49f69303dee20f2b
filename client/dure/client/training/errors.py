"""Errors of local training and evaluation.

Hierarchy (code in :data:`dure.policies.errors.CATALOG`)::

    DureError
    └── TrainingError   client.training: a model, dataset, state or task that do not fit together
"""

from __future__ import annotations

from dure.policies.errors import DureError

__all__ = ["TrainingError"]


class TrainingError(DureError):
    """A model, dataset, global state, statistics or task vocabulary that do not fit together."""

    code = "client.training"
    default_hint = (
        "Build the model and the dataset from the same consortium statistics and task "
        "vocabulary (dure.client.training.normalisation.policy_dataset)."
    )
