"""A simulated teleoperation rig that saves LeRobot datasets (v2.1 or v3.0), via pyarrow.

Layouts, as LeRobot's documentation describes them (the ``lerobot`` package itself is
not used):

* v2.1: ``meta/info.json`` (``codebase_version: v2.1``), ``meta/episodes.jsonl``,
  ``meta/tasks.jsonl``, ``meta/episodes_stats.jsonl``,
  ``data/chunk-000/episode_000000.parquet`` (one file per episode);
* v3.0: ``meta/info.json`` (``v3.0``), ``meta/tasks.parquet``,
  ``meta/episodes/chunk-000/file-000.parquet``, ``meta/stats.json``,
  ``data/chunk-000/file-000.parquet`` (episodes packed in one file).

Frames at 80 Hz; the state vector in the rig's own element order (goal first), the
v3.0 rig in millimetres; the joints in the style's order.  ``start_time`` (ISO 8601) is
an extra per-episode metadata field.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from dure.client.sim.styles import LoggingStyle
from dure.client.sim.truth import (
    ACTION_NAMES,
    CONTROL_FPS,
    FEATURE_UNITS,
    FORCE_NAMES,
    JOINT_NAMES,
    STATE_NAMES,
    SimulatedEpisode,
)

__all__ = ["NATIVE_STATE_ORDER", "lerobot_profile_features", "write_lerobot"]

NATIVE_STATE_ORDER: tuple[str, ...] = STATE_NAMES[18:] + STATE_NAMES[:18]
"""The rig logs the goal first, then hand, gripper and objects."""

_STATE_UNITS = dict(zip(STATE_NAMES, FEATURE_UNITS["observation.state"], strict=True))


def _columns(
    ep: SimulatedEpisode, style: LoggingStyle, first_index: int, task_index: int
) -> dict[str, Any]:
    n = ep.n_frames
    length = 1000.0 if style.length_unit == "mm" else 1.0
    order = [STATE_NAMES.index(name) for name in NATIVE_STATE_ORDER]
    scale = np.array([length if _STATE_UNITS[name] == "m" else 1.0 for name in NATIVE_STATE_ORDER])
    joints = [JOINT_NAMES.index(name) for name in style.joint_order]
    return {
        "observation.state": ep.features["observation.state"][:, order] * scale,
        "observation.joint_positions": ep.features["observation.joints"][:, joints],
        "observation.wrench": ep.features["observation.force"],
        "action": ep.features["action"],
        "timestamp": np.arange(n, dtype=np.float32) / np.float32(CONTROL_FPS),
        "frame_index": np.arange(n, dtype=np.int64),
        "episode_index": np.full(n, ep.index, dtype=np.int64),
        "index": np.arange(first_index, first_index + n, dtype=np.int64),
        "task_index": np.full(n, task_index, dtype=np.int64),
        "next.reward": ep.reward.astype(np.float32),
        "next.success": ep.success,
        "next.done": np.arange(n) == n - 1,
    }


def _table(columns: dict[str, Any]) -> Any:
    import pyarrow as pa

    arrays = {}
    for name, values in columns.items():
        if values.ndim == 2:
            flat = pa.array(values.astype(np.float32).ravel(), type=pa.float32())
            arrays[name] = pa.FixedSizeListArray.from_arrays(flat, values.shape[1])
        else:
            arrays[name] = pa.array(values)
    return pa.table(arrays)


def _features(style: LoggingStyle) -> dict[str, Any]:
    def vector(names: Sequence[str]) -> dict[str, Any]:
        return {"dtype": "float32", "shape": [len(names)], "names": list(names)}

    scalar = {"shape": [1], "names": None}
    return {
        "observation.state": vector(NATIVE_STATE_ORDER),
        "observation.joint_positions": vector(style.joint_order),
        "observation.wrench": vector(FORCE_NAMES),
        "action": vector(ACTION_NAMES),
        "timestamp": {"dtype": "float32", **scalar},
        "frame_index": {"dtype": "int64", **scalar},
        "episode_index": {"dtype": "int64", **scalar},
        "index": {"dtype": "int64", **scalar},
        "task_index": {"dtype": "int64", **scalar},
        "next.reward": {"dtype": "float32", **scalar},
        "next.success": {"dtype": "bool", **scalar},
        "next.done": {"dtype": "bool", **scalar},
    }


def _stats(columns: dict[str, Any]) -> dict[str, Any]:
    stats = {}
    for name, values in columns.items():
        array = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
        stats[name] = {
            "min": array.min(0).tolist(),
            "max": array.max(0).tolist(),
            "mean": array.mean(0).tolist(),
            "std": array.std(0).tolist(),
            "count": [len(array)],
        }
    return stats


def _info(
    style: LoggingStyle, episodes: Sequence[SimulatedEpisode], n_tasks: int, v3: bool
) -> dict[str, Any]:
    total = sum(ep.n_frames for ep in episodes)
    info: dict[str, Any] = {
        "codebase_version": "v3.0" if v3 else "v2.1",
        "robot_type": "sawyer",
        "total_episodes": len(episodes),
        "total_frames": total,
        "total_tasks": n_tasks,
        "chunks_size": 1000,
        "fps": CONTROL_FPS,
        "splits": {"train": f"0:{len(episodes)}"},
        "features": _features(style),
    }
    if v3:
        info["data_path"] = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
        info["video_path"] = None
        info["data_files_size_in_mb"] = 100
        info["video_files_size_in_mb"] = 500
    else:
        info["data_path"] = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
        info["video_path"] = None
        info["total_chunks"] = 1
        info["total_videos"] = 0
    return info


def _start_time(ep: SimulatedEpisode) -> str:
    return datetime.fromtimestamp(ep.start_ns / 1e9, tz=UTC).isoformat()


def write_lerobot(root: Path, episodes: Sequence[SimulatedEpisode], style: LoggingStyle) -> None:
    """Write ``episodes`` as a LeRobot dataset (v2.1 or v3.0, per ``style``) at ``root``."""
    tasks = sorted({ep.task for ep in episodes})
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / "data" / "chunk-000").mkdir(parents=True, exist_ok=True)
    v3 = style.name == "lerobot-v3"
    info = _info(style, episodes, len(tasks), v3)
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    tables, index = [], 0
    for ep in episodes:
        columns = _columns(ep, style, index, tasks.index(ep.task))
        tables.append((ep, columns))
        index += ep.n_frames
    if v3:
        _write_v3(root, tables, tasks)
    else:
        _write_v21(root, tables, tasks)


def _write_v21(
    root: Path, tables: list[tuple[SimulatedEpisode, dict[str, Any]]], tasks: list[str]
) -> None:
    import pyarrow.parquet as pq

    meta = root / "meta"
    with (meta / "tasks.jsonl").open("w", encoding="utf-8") as out:
        for i, task in enumerate(tasks):
            out.write(json.dumps({"task_index": i, "task": task}) + "\n")
    with (
        (meta / "episodes.jsonl").open("w", encoding="utf-8") as eps,
        (meta / "episodes_stats.jsonl").open("w", encoding="utf-8") as stats,
    ):
        for ep, columns in tables:
            record = {"episode_index": ep.index, "tasks": [ep.task], "length": ep.n_frames}
            eps.write(json.dumps({**record, "start_time": _start_time(ep)}) + "\n")
            stats.write(json.dumps({"episode_index": ep.index, "stats": _stats(columns)}) + "\n")
            path = root / "data" / "chunk-000" / f"episode_{ep.index:06d}.parquet"
            pq.write_table(_table(columns), path)


def _write_v3(
    root: Path, tables: list[tuple[SimulatedEpisode, dict[str, Any]]], tasks: list[str]
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": tasks}),
        root / "meta" / "tasks.parquet",
    )
    data = pa.concat_tables([_table(columns) for _, columns in tables])
    pq.write_table(data, root / "data" / "chunk-000" / "file-000.parquet")
    rows: dict[str, list[Any]] = {k: [] for k in _V3_EPISODE_COLUMNS}
    start = 0
    for ep, _ in tables:
        values = [
            ep.index,
            [ep.task],
            ep.n_frames,
            0,
            0,
            start,
            start + ep.n_frames,
            0,
            0,
            _start_time(ep),
        ]
        for key, value in zip(_V3_EPISODE_COLUMNS, values, strict=True):
            rows[key].append(value)
        start += ep.n_frames
    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(rows), root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    all_columns = {k: np.concatenate([c[k] for _, c in tables]) for k in tables[0][1]}
    (root / "meta" / "stats.json").write_text(json.dumps(_stats(all_columns)), encoding="utf-8")


_V3_EPISODE_COLUMNS = (
    "episode_index",
    "tasks",
    "length",
    "data/chunk_index",
    "data/file_index",
    "dataset_from_index",
    "dataset_to_index",
    "meta/episodes/chunk_index",
    "meta/episodes/file_index",
    "start_time",
)


def lerobot_profile_features(style: LoggingStyle) -> dict[str, Any]:
    """Return the profile sections that map this dataset back to canonical features."""
    length = style.length_unit
    state_units = [length if _STATE_UNITS[name] == "m" else "1" for name in STATE_NAMES]
    return {
        "features": {
            "observation.state": [
                {"stream": "observation.state", "select": list(STATE_NAMES), "unit": state_units}
            ],
            "observation.joints": [
                {
                    "stream": "observation.joint_positions",
                    "select": list(JOINT_NAMES),
                    "unit": "rad",
                }
            ],
            "observation.force": [
                {
                    "stream": "observation.wrench",
                    "select": list(FORCE_NAMES),
                    "unit": ["N"] * 3 + ["N*m"] * 3,
                }
            ],
            "action": [{"stream": "action", "select": list(ACTION_NAMES)}],
        },
        "time": {"column": "timestamp", "unit": "s"},
        "segmentation": {"method": "per-source-episode"},
        "task": {"metadata": "task"},
        "outcome": {
            "success_definition": "any-step",
            "success": {"stream": "next.success"},
            "reward": {"stream": "next.reward"},
        },
    }
