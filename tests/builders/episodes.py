"""Canonical episodes built directly with numpy, for the episode and store tests.

No simulator: every array is drawn from a seeded generator, so a test that needs
"some valid episode" gets one in microseconds and can mutate it field by field.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import numpy as np

from dure.client.episodes.schema import (
    ActionSpace,
    Episode,
    EpisodeContext,
    EpisodeOutcome,
    FeatureSpec,
    Frames,
    Provenance,
    Resampling,
    SensorConfig,
    Source,
    SuccessDefinition,
    frame_timestamps,
)

__all__ = ["make_episode", "make_episodes", "replace_frames"]

STATE_DIM = 39
ACTION_DIM = 4
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def _sensors(state_dim: int, action_dim: int, force: bool) -> SensorConfig:
    features = {
        "observation.state": FeatureSpec(
            names=tuple(f"q{i}" for i in range(state_dim)), units=("m",) * state_dim
        ),
        "action": FeatureSpec(
            names=tuple(f"a{i}" for i in range(action_dim)), units=("1",) * action_dim
        ),
    }
    if force:
        features["observation.force"] = FeatureSpec(names=("fx", "fy", "fz"), units=("N", "N", "N"))
    return SensorConfig(features=features, calibration={"arm": "cal-2025-01"}, mapping_version="1")


def make_episode(
    seed: int = 0,
    *,
    n_frames: int = 50,
    fps: int = 80,
    task: str = "pick-place",
    cell: str = "cell-1",
    robot: str = "sawyer-1",
    site: str = "factory-a",
    source: Source = Source.SCRIPTED,
    success: bool = True,
    tags: tuple[str, ...] = ("sim",),
    start: datetime | None = None,
    state_dim: int = STATE_DIM,
    action_dim: int = ACTION_DIM,
    force: bool = False,
    phases: bool = False,
) -> Episode:
    """Return a valid episode whose arrays are drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    n = n_frames
    next_success = np.zeros(n, dtype=np.bool_)
    first: int | None = None
    if success:
        first = int(rng.integers(n // 2, n))
        next_success[first:] = True
    next_done = np.zeros(n, dtype=np.bool_)
    next_done[-1] = True
    observation = {
        "observation.state": (rng.normal(size=(n, state_dim)) * 2 + 1).astype(np.float32)
    }
    if force:
        observation["observation.force"] = rng.normal(size=(n, 3)).astype(np.float32)
    phase = None
    phase_names: tuple[str, ...] = ()
    if phases:
        phase = np.minimum(np.arange(n) * 3 // n, 2).astype(np.int16)
        phase_names = ("reach", "grasp", "place")
    frames = Frames(
        timestamp=frame_timestamps(n, fps),
        observation=observation,
        action=rng.uniform(-1, 1, size=(n, action_dim)).astype(np.float32),
        intervention=rng.random(n) < 0.1,
        next_success=next_success,
        next_reward=next_success.astype(np.float32),
        next_done=next_done,
        phase=phase,
    )
    context = EpisodeContext(
        site=site,
        cell=cell,
        robot=robot,
        embodiment="sawyer",
        sensors=_sensors(state_dim, action_dim, force),
        task=task,
        instruction=f"do {task}",
        operator="0123456789abcdef",
        source=source,
        skill_tier="expert",
        start_time=start if start is not None else T0 + timedelta(minutes=seed),
        tags=tags,
    )
    return Episode(
        fps=fps,
        context=context,
        action_space=ActionSpace(
            kind="end-effector", mode="delta", frame="base", gripper="open-positive"
        ),
        outcome=EpisodeOutcome(
            success=success,
            success_definition=SuccessDefinition.ANY_STEP,
            first_success_step=first,
            failure_mode=None if success else "dropped",
        ),
        provenance=Provenance(
            source_uri=f"file:///logs/{site}/{seed}.mcap",
            source_sha256="ab" * 32,
            converter_version="dure-test/1",
            resampling=Resampling.ZOH,
            source_rates_hz={"joints": 500.0, "force": 1000.0},
        ),
        frames=frames,
        phase_names=phase_names,
    )


def make_episodes(count: int, **kwargs: object) -> list[Episode]:
    """Return ``count`` episodes with seeds ``0 .. count - 1``."""
    return [make_episode(seed, **kwargs) for seed in range(count)]  # type: ignore[arg-type]


def replace_frames(episode: Episode, **changes: object) -> Episode:
    """Return ``episode`` with some :class:`Frames` fields replaced."""
    return dataclasses.replace(episode, frames=dataclasses.replace(episode.frames, **changes))  # type: ignore[arg-type]
