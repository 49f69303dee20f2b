"""Evaluation of the policy in Meta-World, on layouts no demonstration used.

Success definition (:data:`SUCCESS_DEFINITION`, ``"any-step"``): an evaluation
episode succeeds if Meta-World's ``info["success"]`` was true after any step
within ``max_steps`` steps (by default
:data:`~dure.client.sim.metaworld_env.EPISODE_STEPS`, the length the demonstrations
were simulated with, Meta-World's own limit of 500); the episode
stops at the first success.  The success rate of a task is the fraction of its
``episodes_per_task`` episodes that succeeded.

Layouts: episode ``k`` of an evaluation with ``seed`` uses the layout seed
``EVAL_SEED_BASE + seed * 1000 + k`` (:func:`dure.client.sim.metaworld_env.evaluate_policy`),
at or above :data:`~dure.client.sim.metaworld_env.EVAL_SEED_BASE` (10^9), while
every demonstration's layout seed lies below it: no evaluation layout was ever
demonstrated.

The policy runs on the CPU, one thread, without gradients: at each step the
21-number ``observation.state`` is normalised with the consortium statistics the
model was trained with, the task one-hot is appended, and the predicted
normalised action is mapped back to the robot's units and clipped to [-1, 1].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from dure.client.episodes.stats import FeatureStats
from dure.client.sim.metaworld_env import EPISODE_STEPS
from dure.client.sim.truth import STATE_NAMES
from dure.client.training.errors import TrainingError
from dure.client.training.normalisation import NormalisationMode, PolicyScaling

__all__ = [
    "STATE_DIM",
    "SUCCESS_DEFINITION",
    "MetaWorldPolicy",
    "evaluate_in_metaworld",
    "evaluate_tasks",
]

STATE_DIM = len(STATE_NAMES)
"""Length of the canonical ``observation.state`` Meta-World gives back (21)."""

SUCCESS_DEFINITION = "any-step"
"""An evaluation episode succeeds if ``info["success"]`` was true after any step."""


class MetaWorldPolicy:
    """The trained model as a Meta-World policy for one task (state in, action out).

    Parameters
    ----------
    model
        The policy network (normalised observation ‖ task one-hot → normalised action).
    scaling
        The statistics and vocabulary it was trained with.
    task
        The task to perform (must be in the vocabulary).
    """

    def __init__(self, model: nn.Module, scaling: PolicyScaling, task: str) -> None:
        self.model = model
        self.scaling = scaling
        self.task = task
        scaling.task_index(task)  # fail now, not at the first step

    def check(self, state_dim: int) -> None:
        """Run one zero state through the model: fail now if it does not take the input.

        Raises
        ------
        TrainingError
            If the model does not map the policy's input row to one action.
        """
        row = self.scaling.input_row([np.zeros(state_dim, dtype=np.float32)], self.task)
        try:
            with torch.no_grad():
                out = self.model(torch.from_numpy(row)[None])
        except RuntimeError as exc:
            raise TrainingError(
                f"the model does not take the policy's {row.shape[0]}-number input row: {exc}",
                hint="Train on policy_dataset(...) (observation.state only) so that Meta-World "
                "can give the model its whole input.",
            ) from exc
        if tuple(out.shape) != (1, self.scaling.action.shift.shape[0]):
            raise TrainingError(
                f"the model returns {tuple(out.shape[1:])} actions, the statistics describe "
                f"{self.scaling.action.shift.shape[0]}",
                hint="Evaluate with the statistics the model was trained with.",
            )

    def __call__(self, state: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Return the action for the canonical ``observation.state`` ``state``."""
        row = torch.from_numpy(self.scaling.input_row([state], self.task))[None]
        with torch.no_grad():
            out = self.model(row)[0].numpy()
        return np.clip(self.scaling.raw_action(out), -1.0, 1.0)


def evaluate_tasks(
    model: nn.Module,
    stats: Mapping[str, FeatureStats],
    tasks: Sequence[str],
    task_vocab: Sequence[str],
    episodes_per_task: int = 10,
    seed: int = 0,
    *,
    max_steps: int = EPISODE_STEPS,
    mode: NormalisationMode = "mean_std",
) -> dict[str, tuple[bool, ...]]:
    """Run ``model`` on fresh layouts of each task; return each episode's success.

    Raises
    ------
    TrainingError
        If a task is not in ``task_vocab``, ``stats`` lacks a policy feature, or
        the model does not take the policy's input row.
    """
    from dure.client.sim.metaworld_env import evaluate_policy

    torch.set_num_threads(1)
    scaling = PolicyScaling.from_stats(stats, task_vocab, mode)
    policies = {task: MetaWorldPolicy(model, scaling, task) for task in tasks}
    device = next(model.parameters()).device
    model.to("cpu").eval()
    try:
        for policy in policies.values():
            policy.check(STATE_DIM)
        return {
            task: evaluate_policy(
                policy, task, episodes=episodes_per_task, seed=seed, max_steps=max_steps
            ).successes
            for task, policy in policies.items()
        }
    finally:
        model.to(device)


def evaluate_in_metaworld(
    model: nn.Module,
    stats: Mapping[str, FeatureStats],
    tasks: Sequence[str],
    task_vocab: Sequence[str],
    episodes_per_task: int = 10,
    seed: int = 0,
    *,
    max_steps: int = EPISODE_STEPS,
    mode: NormalisationMode = "mean_std",
) -> dict[str, float]:
    """Success rate per task (:data:`SUCCESS_DEFINITION`) on fresh layouts.

    Parameters
    ----------
    model
        The trained policy.
    stats
        The (consortium) statistics it was trained with.
    tasks
        The tasks to evaluate, each in ``task_vocab``.
    task_vocab
        The vocabulary the model's one-hot uses.
    episodes_per_task
        Evaluation episodes (fresh layouts) per task.
    seed
        Chooses the layouts (see the module docstring).
    max_steps
        Step limit of an episode.
    mode
        The normalisation the model was trained with.

    Raises
    ------
    TrainingError
        If a task is not in ``task_vocab`` or ``stats`` lacks a policy feature.
    """
    results = evaluate_tasks(
        model,
        stats,
        tasks,
        task_vocab,
        episodes_per_task,
        seed,
        max_steps=max_steps,
        mode=mode,
    )
    return {task: sum(ok) / len(ok) if ok else 0.0 for task, ok in results.items()}
