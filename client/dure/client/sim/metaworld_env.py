"""Meta-World 3.1.1 scripted experts, seeded layouts, and policy evaluation.

The traps DESIGN.md lists are handled here once:

* ``env.reset(seed=...)`` ignores its seed: we call ``env.seed(s)`` and unfreeze the
  layout (``_freeze_rand_vec = False``, ``seeded_rand_vec = True``) before ``reset()``,
  so seed ``s`` always gives the same object and goal layout.
* Success is only ``info["success"]`` and can switch back off: an episode succeeds if it
  was true after *any* step (:data:`~dure.client.sim.truth.SUCCESS_DEFINITION`).
* The experts warn on every step ("Constant(s) may be too high"): filtered here.
* State-only observations (39 numbers), 4-D actions, 80 Hz, no rendering.

Demonstration seeds and evaluation seeds are disjoint by construction:
demonstrations use ``seed * 1000 + k`` style seeds below :data:`EVAL_SEED_BASE`;
evaluation layouts use seeds from :data:`EVAL_SEED_BASE` upward.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from dure.client.sim.truth import (
    SUCCESS_DEFINITION,
    SimulatedEpisode,
    canonical_state,
)

__all__ = [
    "EPISODE_STEPS",
    "EVAL_SEED_BASE",
    "EvaluationResult",
    "Policy",
    "demonstration_seed",
    "evaluate_policy",
    "known_tasks",
    "rollout_expert",
]

EPISODE_STEPS = 500
"""Step limit of every episode, demonstrated or evaluated (Meta-World's own limit).

Simulation (:func:`rollout_expert`) and evaluation (:func:`evaluate_policy`,
:func:`dure.client.training.evaluate.evaluate_in_metaworld`) use this one length,
so a task whose expert needs more than a shorter limit is neither demonstrated as
a failure nor evaluated with more time than its demonstrations had.
"""

EVAL_SEED_BASE = 1_000_000_000
"""Evaluation layouts use seeds at or above this; demonstrations stay below it."""

Policy = Callable[[npt.NDArray[np.float32]], npt.ArrayLike]
"""A policy maps the canonical 21-number ``observation.state`` to a 4-number action."""

_WARNING = re.escape("Constant(s) may be too high")
_RawPolicy = Callable[[npt.NDArray[np.float64]], npt.ArrayLike]


@contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_WARNING)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module="gymnasium")
        yield


def known_tasks() -> tuple[str, ...]:
    """Return the Meta-World v3 task names that have a scripted expert."""
    from metaworld.policies import ENV_POLICY_MAP

    return tuple(sorted(ENV_POLICY_MAP))


def demonstration_seed(factory_seed: int, index: int) -> int:
    """Return the layout seed of demonstration ``index`` of a factory seeded ``factory_seed``."""
    return (factory_seed % 1_000_000) * 1000 + index


def _make_env(task: str, seed: int) -> Any:
    import metaworld

    envs = metaworld.ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE  # type: ignore[attr-defined]
    key = f"{task}-goal-observable"
    if key not in envs:
        raise KeyError(task)
    with _quiet():
        env = envs[key]()
        env._freeze_rand_vec = False
        env.seeded_rand_vec = True
        env.seed(seed)
    return env


def _reset(env: Any, seed: int) -> npt.NDArray[np.float64]:
    env.seed(seed)
    with _quiet():
        obs, _ = env.reset()
    return np.asarray(obs, dtype=np.float64)


def _probe(env: Any) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Return the arm joint angles (rad) and the hand's external wrench (force, torque)."""
    import mujoco

    mujoco.mj_rnePostConstraint(env.model, env.data)
    joints = np.array(env.data.qpos[:7], dtype=np.float64)
    torque_force = np.array(env.data.cfrc_ext[env.model.body("hand").id], dtype=np.float64)
    return joints, np.concatenate([torque_force[3:], torque_force[:3]])


@dataclass
class _Trace:
    obs: list[npt.NDArray[np.float64]]
    joints: list[npt.NDArray[np.float64]]
    wrench: list[npt.NDArray[np.float64]]
    actions: list[npt.NDArray[np.float64]]
    rewards: list[float]
    success: list[bool]


def _run(
    env: Any, policy: _RawPolicy, obs: npt.NDArray[np.float64], max_steps: int, settle: int
) -> _Trace:
    trace = _Trace([], [], [], [], [], [])
    since_success = -1
    for _ in range(max_steps):
        joints, wrench = _probe(env)
        action = np.clip(np.asarray(policy(obs), dtype=np.float64), -1, 1)
        trace.obs.append(obs)
        trace.joints.append(joints)
        trace.wrench.append(wrench)
        trace.actions.append(action)
        with _quiet():
            obs, reward, _, truncated, info = env.step(action)
        trace.rewards.append(float(reward))
        trace.success.append(bool(info["success"]))
        since_success = since_success + 1 if (since_success >= 0 or info["success"]) else -1
        if truncated or since_success >= settle:
            break
    return trace


def _expert(task: str) -> _RawPolicy:
    from metaworld.policies import ENV_POLICY_MAP

    policy_class: Any = ENV_POLICY_MAP[task]
    expert = policy_class()

    def act(obs: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        with _quiet():
            return np.asarray(expert.get_action(obs), dtype=np.float64)

    return act


def rollout_expert(
    task: str,
    seed: int,
    *,
    index: int = 0,
    start_ns: int = 0,
    max_steps: int = EPISODE_STEPS,
    settle: int = 10,
) -> SimulatedEpisode:
    """Roll out the scripted expert for ``task`` on the layout of ``seed``.

    The episode stops ``settle`` steps after the first success, or after
    ``max_steps`` steps (:data:`EPISODE_STEPS` by default).

    Raises
    ------
    KeyError
        If ``task`` is not a Meta-World v3 task with an expert.
    """
    env = _make_env(task, seed)
    try:
        obs = _reset(env, seed)
        trace = _run(env, _expert(task), obs, max_steps, settle)
    finally:
        env.close()
    return _to_episode(task, seed, index, start_ns, trace)


def _to_episode(task: str, seed: int, index: int, start_ns: int, trace: _Trace) -> SimulatedEpisode:
    obs = np.stack(trace.obs)
    features = {
        "observation.state": canonical_state(obs).astype(np.float64),
        "observation.joints": np.stack(trace.joints),
        "observation.force": np.stack(trace.wrench),
        "action": np.stack(trace.actions),
    }
    return SimulatedEpisode(
        task=task,
        seed=seed,
        index=index,
        start_ns=start_ns,
        features=features,
        reward=np.asarray(trace.rewards, dtype=np.float64),
        success=np.asarray(trace.success, dtype=np.bool_),
    )


@dataclass(frozen=True)
class EvaluationResult:
    """Success of a policy on fresh layouts of one task.

    ``success_definition`` is :data:`~dure.client.sim.truth.SUCCESS_DEFINITION`: an
    episode counts as a success if ``info["success"]`` was true after any step.
    """

    task: str
    seeds: tuple[int, ...]
    successes: tuple[bool, ...]
    success_definition: str = SUCCESS_DEFINITION

    @property
    def success_rate(self) -> float:
        """Fraction of evaluation episodes that succeeded."""
        return sum(self.successes) / len(self.successes) if self.successes else 0.0


def evaluate_policy(
    policy: Policy,
    task: str,
    *,
    episodes: int = 20,
    seed: int = 0,
    max_steps: int = EPISODE_STEPS,
) -> EvaluationResult:
    """Roll ``policy`` out on ``episodes`` fresh layouts of ``task`` and count successes.

    The policy receives the canonical 21-number ``observation.state`` (float32) and
    returns a 4-number action, clipped to [-1, 1].  Layout seeds are
    ``EVAL_SEED_BASE + seed * 1000 + k``, disjoint from every demonstration seed.
    An episode stops at its first success or after ``max_steps`` steps.
    """
    seeds = tuple(EVAL_SEED_BASE + (seed % 1_000_000) * 1000 + k for k in range(episodes))
    env = _make_env(task, seeds[0])
    successes = []
    try:
        for layout in seeds:
            obs = _reset(env, layout)
            trace = _run(env, lambda o: policy(canonical_state(o)), obs, max_steps, settle=0)
            successes.append(any(trace.success))
    finally:
        env.close()
    return EvaluationResult(task=task, seeds=seeds, successes=tuple(successes))
