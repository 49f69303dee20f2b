"""The checks behind :meth:`dure.client.episodes.schema.Episode.validate`.

Each check raises :class:`~dure.client.errors.EpisodeError` whose message names
the episode (site, task, start time), the field (``frames.action``,
``outcome.success``...) and the offending value, and whose hint says how to fix
it.  The rules themselves are listed in the docstring of
:mod:`dure.client.episodes.schema`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dure.client.errors import EpisodeError

if TYPE_CHECKING:
    from dure.client.episodes.schema import Episode

__all__ = ["GRID_TOLERANCE_S", "MAX_FPS", "validate_episode"]

MAX_FPS = 100_000
GRID_TOLERANCE_S = 1e-6

_ARRAY = np.ndarray  # alias for isinstance checks


def validate_episode(episode: Episode) -> None:
    """Run every check on ``episode``; raise :class:`EpisodeError` on the first failure."""
    _check_fps(episode)
    n = _check_timestamps(episode)
    _check_observations(episode, n)
    _check_array(episode, "frames.action", episode.frames.action, dtype=np.float32, ndim=2, n=n)
    _check_flags(episode, n)
    _check_phase(episode, n)
    _check_features(episode)
    _check_outcome(episode)


def _fail(episode: Episode, field: str, problem: str, hint: str) -> EpisodeError:
    return EpisodeError(f"{episode.label()}: {field} {problem}", hint=hint)


def _check_fps(episode: Episode) -> None:
    fps = episode.fps
    if isinstance(fps, bool) or not isinstance(fps, int) or not 1 <= fps <= MAX_FPS:
        raise _fail(
            episode,
            "fps",
            f"is {fps!r}, expected an integer in 1..{MAX_FPS}",
            "Set the site profile's target fps to a positive integer.",
        )


def _check_timestamps(episode: Episode) -> int:
    ts = episode.frames.timestamp
    _check_array(episode, "frames.timestamp", ts, dtype=np.float64, ndim=1, n=None)
    n = int(ts.shape[0])
    if n == 0:
        raise _fail(episode, "frames", "is empty", "Drop empty segments before building episodes.")
    if n > 1 and not bool(np.all(np.diff(ts) > 0)):
        raise _fail(
            episode,
            "frames.timestamp",
            "is not strictly increasing",
            "Sort samples by time and drop duplicate stamps before resampling.",
        )
    grid = np.arange(n, dtype=np.float64) / float(episode.fps)
    worst = int(np.argmax(np.abs(ts - grid)))
    if abs(float(ts[worst]) - float(grid[worst])) > GRID_TOLERANCE_S:
        raise _fail(
            episode,
            f"frames.timestamp[{worst}]",
            f"is {float(ts[worst])!r}, off the grid i/fps = {float(grid[worst])!r}",
            "Build timestamps with frame_timestamps(n, fps) after resampling.",
        )
    return n


def _check_array(
    episode: Episode,
    field: str,
    array: object,
    *,
    dtype: type[np.generic],
    ndim: int,
    n: int | None,
) -> None:
    if not isinstance(array, _ARRAY):
        raise _fail(episode, field, f"is a {type(array).__name__}", "Pass a numpy array.")
    if array.dtype != np.dtype(dtype):
        raise _fail(
            episode,
            field,
            f"has dtype {array.dtype}, expected {np.dtype(dtype)}",
            f"Cast it with .astype(np.{np.dtype(dtype).name}).",
        )
    if array.ndim != ndim or (n is not None and array.shape[0] != n) or 0 in array.shape:
        expected = "(n,)" if ndim == 1 else "(n, d) with d >= 1"
        raise _fail(
            episode,
            field,
            f"has shape {array.shape}, expected {expected} with n = {n}",
            "Give every per-frame array one row per frame.",
        )
    if array.dtype.kind == "f" and not bool(np.isfinite(array).all()):
        bad = np.argwhere(~np.isfinite(array))[0].tolist()
        raise _fail(
            episode,
            f"{field}{bad}",
            "is NaN or infinite",
            "Fill sensor dropouts in the source (or drop the segment) before standardising.",
        )


def _check_observations(episode: Episode, n: int) -> None:
    observation = episode.frames.observation
    if "observation.state" not in observation:
        raise _fail(
            episode,
            "frames.observation",
            f"has keys {sorted(observation)}, missing 'observation.state'",
            "Map the robot's proprioceptive state to observation.state in the site profile.",
        )
    for key, array in observation.items():
        if not key.startswith("observation.") or key == "observation.":
            raise _fail(
                episode,
                f"frames.observation[{key!r}]",
                "is not named observation.<name>",
                "Rename the feature, e.g. observation.force.",
            )
        _check_array(episode, f"frames.observation[{key!r}]", array, dtype=np.float32, ndim=2, n=n)


def _check_flags(episode: Episode, n: int) -> None:
    frames = episode.frames
    _check_array(episode, "frames.intervention", frames.intervention, dtype=np.bool_, ndim=1, n=n)
    _check_array(episode, "frames.next_success", frames.next_success, dtype=np.bool_, ndim=1, n=n)
    _check_array(episode, "frames.next_reward", frames.next_reward, dtype=np.float32, ndim=1, n=n)
    _check_array(episode, "frames.next_done", frames.next_done, dtype=np.bool_, ndim=1, n=n)
    done = frames.next_done
    if not bool(done[-1]) or bool(done[:-1].any()):
        where = np.flatnonzero(done).tolist()[:5]
        raise _fail(
            episode,
            "frames.next_done",
            f"is true at frames {where}, expected only at the last frame {n - 1}",
            "Segment episodes so that each ends where it is done, and set next_done there.",
        )


def _check_phase(episode: Episode, n: int) -> None:
    phase, names = episode.frames.phase, episode.phase_names
    if phase is None:
        if names:
            raise _fail(
                episode,
                "phase_names",
                f"is {list(names)} but frames.phase is None",
                "Give frames.phase (int16 indices) or leave phase_names empty.",
            )
        return
    _check_array(episode, "frames.phase", phase, dtype=np.int16, ndim=1, n=n)
    if len(set(names)) != len(names) or not all(names):
        raise _fail(
            episode,
            "phase_names",
            f"is {list(names)}, expected unique non-empty names",
            "Name each phase once, e.g. ('reach', 'grasp', 'place').",
        )
    if int(phase.min()) < 0 or int(phase.max()) >= len(names):
        raise _fail(
            episode,
            "frames.phase",
            f"holds values {int(phase.min())}..{int(phase.max())}, "
            f"expected 0..{len(names) - 1} (one per phase name)",
            "Index phases into phase_names.",
        )


def _check_features(episode: Episode) -> None:
    specs = episode.context.sensors.features
    arrays = {**episode.frames.observation, "action": episode.frames.action}
    if set(specs) != set(arrays):
        raise _fail(
            episode,
            "context.sensors.features",
            f"declares {sorted(specs)} but the frames hold {sorted(arrays)}",
            "Declare one FeatureSpec (names and units) per observation key and for 'action'.",
        )
    for key, array in arrays.items():
        if len(specs[key].names) != array.shape[1]:
            raise _fail(
                episode,
                f"context.sensors.features[{key!r}]",
                f"names {len(specs[key].names)} columns but the array has {array.shape[1]}",
                "List one name and one SI unit per column, in column order.",
            )


def _check_outcome(episode: Episode) -> None:
    outcome, flags = episode.outcome, episode.frames.next_success
    hits = np.flatnonzero(flags)
    first = int(hits[0]) if hits.size else None
    if outcome.first_success_step != first:
        raise _fail(
            episode,
            "outcome.first_success_step",
            f"is {outcome.first_success_step}, but next_success first holds at {first}",
            "Derive first_success_step from next_success.",
        )
    expected = {"any-step": hits.size > 0, "at-end": bool(flags[-1])}.get(
        outcome.success_definition.value
    )
    if expected is not None and outcome.success != expected:
        raise _fail(
            episode,
            "outcome.success",
            f"is {outcome.success}, but with success_definition "
            f"{outcome.success_definition.value!r} next_success says {expected}",
            "Derive success from next_success, or declare success_definition 'human-label'.",
        )
    if outcome.success and outcome.failure_mode is not None:
        raise _fail(
            episode,
            "outcome.failure_mode",
            f"is {outcome.failure_mode!r} on a successful episode",
            "Leave failure_mode None when success is true.",
        )
