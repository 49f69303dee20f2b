"""Which Meta-World tasks the learning benchmark may draw, decided from simulation alone.

The rule (:class:`EligibilityRule`), applied to every Meta-World v3 task with a
scripted expert *before* any model is trained, and never revised by how a
method did:

* the scripted expert must succeed on at least ``min_expert_success`` (90%) of
  ``layouts`` fresh layouts within :data:`~dure.client.sim.metaworld_env.EPISODE_STEPS`
  steps, the episode length of both simulation and evaluation (a task its own
  expert cannot do is not a test of learning);
* no constant action of :data:`CONSTANT_ACTIONS` (standing still, or pushing
  the hand at full speed along one axis, gripper untouched) may succeed on any
  of ``constant_layouts`` fresh layouts (a task a policy "solves" without
  looking at the scene measures nothing: measured here, ``drawer-close-v3`` and
  ``handle-press-v3`` pass the zero action but not a constant push).

Success is :data:`~dure.client.sim.truth.SUCCESS_DEFINITION` (``info["success"]``
after any step).  The expert's layouts use seeds from :data:`SCREEN_SEED_BASE`
(demonstrations use ``factory_seed * 1000 + k`` with the benchmark's factory seeds
below 10^4, so below 10^7); the constant actions' use the evaluation range with
the evaluation seed 999999 (the benchmark evaluates with seeds 0, 1, 2 ...).

The verdicts are cached in ``bench-results/learning-eligible-tasks.json`` with
the rule's parameters; a cache written under other parameters is recomputed.
Random splits (:func:`random_split`) draw only from eligible tasks.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchmarks.learning_sites import FactorySpec
from dure.client.sim.metaworld_env import (
    EPISODE_STEPS,
    evaluate_policy,
    known_tasks,
    rollout_expert,
)

__all__ = [
    "SCREEN_SEED_BASE",
    "STYLES_IN_TURN",
    "EligibilityRule",
    "TaskScreen",
    "eligible_tasks",
    "random_split",
    "screen_task",
]

SCREEN_SEED_BASE = 900_000_000
"""Layout seeds of the rule's rollouts start here (no demonstration or evaluation uses them)."""

STYLES_IN_TURN = ("rosbag", "mcap", "lerobot-v3", "robomimic", "csv")
"""Logging styles given to a split's factories in turn."""

CACHE = Path("bench-results/learning-eligible-tasks.json")

CONSTANT_ACTIONS: tuple[tuple[float, float, float, float], ...] = (
    (0.0, 0.0, 0.0, 0.0),
    (1.0, 0.0, 0.0, 0.0),
    (-1.0, 0.0, 0.0, 0.0),
    (0.0, 1.0, 0.0, 0.0),
    (0.0, -1.0, 0.0, 0.0),
    (0.0, 0.0, 1.0, 0.0),
    (0.0, 0.0, -1.0, 0.0),
)
"""The constant actions the rule tries: none, and full speed along +-x, +-y, +-z."""


@dataclass(frozen=True)
class EligibilityRule:
    """The exclusion rule's parameters (see the module docstring)."""

    layouts: int = 10
    min_expert_success: float = 0.9
    constant_layouts: int = 2
    max_constant_success: float = 0.0
    max_steps: int = EPISODE_STEPS

    def admits(self, expert_success: float, constant_success: float) -> bool:
        """Whether a task with these simulated rates may be drawn (no learning involved).

        ``constant_success`` is the best success rate of any constant action.
        """
        return (
            expert_success >= self.min_expert_success
            and constant_success <= self.max_constant_success
        )


@dataclass(frozen=True)
class TaskScreen:
    """One task's simulated rates under the rule and the verdict."""

    task: str
    expert_success: float
    constant_success: float
    eligible: bool


class _Constant:
    """The policy that ignores the state and always returns one action."""

    def __init__(self, action: Sequence[float]) -> None:
        self.action = np.asarray(action, dtype=np.float32)

    def __call__(self, _state: np.ndarray) -> np.ndarray:
        return self.action


def screen_task(task: str, rule: EligibilityRule) -> TaskScreen:
    """Roll out the expert and every constant action on fresh layouts of ``task``.

    Only simulation: no model is trained or run.  Stops trying constant actions
    once one has succeeded more often than the rule allows.
    """
    seeds = [SCREEN_SEED_BASE + k for k in range(rule.layouts)]
    expert = [
        bool(rollout_expert(task, s, max_steps=rule.max_steps, settle=0).success.any())
        for s in seeds
    ]
    best = 0.0
    for action in CONSTANT_ACTIONS:
        rate = evaluate_policy(
            _Constant(action),
            task,
            episodes=rule.constant_layouts,
            seed=999_999,
            max_steps=rule.max_steps,
        ).success_rate
        best = max(best, rate)
        if best > rule.max_constant_success:
            break
    expert_rate = sum(expert) / len(expert)
    return TaskScreen(task, expert_rate, best, rule.admits(expert_rate, best))


def eligible_tasks(
    rule: EligibilityRule | None = None,
    *,
    cache: Path = CACHE,
    tasks: Sequence[str] | None = None,
    progress: Callable[[TaskScreen], None] | None = None,
) -> tuple[str, ...]:
    """The eligible tasks under ``rule``, screened once and cached with the rule's parameters."""
    chosen = rule or EligibilityRule()
    names = tuple(tasks) if tasks is not None else known_tasks()
    screens = _load(cache, chosen)
    for task in names:
        if task not in screens:
            screens[task] = screen_task(task, chosen)
            if progress is not None:
                progress(screens[task])
            _save(cache, chosen, screens)
    return tuple(t for t in sorted(names) if screens[t].eligible)


def _load(cache: Path, rule: EligibilityRule) -> dict[str, TaskScreen]:
    if not cache.exists():
        return {}
    document = json.loads(cache.read_text(encoding="utf-8"))
    if document.get("rule") != asdict(rule):
        return {}
    return {row["task"]: TaskScreen(**row) for row in document["tasks"]}


def _save(cache: Path, rule: EligibilityRule, screens: dict[str, TaskScreen]) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    rows = [asdict(screens[t]) for t in sorted(screens)]
    document = {"rule": asdict(rule), "tasks": rows}
    cache.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def random_split(
    seed: int, eligible: Sequence[str], *, factories: int = 4, tasks_per_factory: int = 2
) -> tuple[FactorySpec, ...]:
    """``factories`` factories of ``tasks_per_factory`` distinct eligible tasks, drawn by ``seed``.

    Styles are given in turn (:data:`STYLES_IN_TURN`); factory names are
    ``factory-a``, ``factory-b`` ...
    """
    drawn = random.Random(seed).sample(sorted(eligible), factories * tasks_per_factory)
    return tuple(
        FactorySpec(
            f"factory-{chr(ord('a') + i)}",
            STYLES_IN_TURN[i % len(STYLES_IN_TURN)],
            tuple(drawn[i * tasks_per_factory : (i + 1) * tasks_per_factory]),
        )
        for i in range(factories)
    )


def _main() -> None:
    eligible = eligible_tasks(progress=lambda s: print(s, flush=True))
    print(f"{len(eligible)} eligible: {', '.join(eligible)}")


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    _main()
