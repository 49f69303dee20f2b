"""The dataset's metadata files: read them into a :class:`DatasetState`, render new ones.

``meta/info.json`` follows LeRobot v3.0 (``codebase_version``, ``robot_type``,
``total_episodes``, ``total_frames``, ``total_tasks``, ``chunks_size``,
``data_files_size_in_mb``, ``video_files_size_in_mb``, ``fps``, ``splits``,
``data_path``, ``video_path``, ``features``) plus a ``dure`` block (schema
version, action space).  ``meta/tasks.parquet`` has columns ``task_index`` and
``task`` (pandas metadata marks ``task`` as the index, as LeRobot writes it).
``meta/stats.json`` maps each feature to LeRobot's statistics;
``meta/dure/stats_state.json`` keeps the exact mergeable state behind them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dure.client.episodes.stats import SKETCH_POINTS, FeatureStats
from dure.client.errors import StoreError
from dure.client.store.codec import DatasetSchema
from dure.client.store.layout import (
    CHUNKS_SIZE,
    CODEBASE_VERSION,
    DATA_FILES_SIZE_IN_MB,
    DATA_PATH,
    INFO_PATH,
    STATS_STATE_PATH,
    TASKS_PATH,
    FileIndex,
    existing_file_indices,
)

__all__ = [
    "DatasetState",
    "load_state",
    "render_info",
    "render_stats",
    "render_stats_state",
    "render_tasks",
]


@dataclass
class DatasetState:
    """What a writer needs to know about a dataset before appending to it."""

    schema: DatasetSchema | None = None
    tasks: list[str] = field(default_factory=list)
    stats: dict[str, FeatureStats] = field(default_factory=dict)
    total_episodes: int = 0
    total_frames: int = 0
    next_data: FileIndex = field(default_factory=lambda: FileIndex(0, 0))
    next_meta: FileIndex = field(default_factory=lambda: FileIndex(0, 0))


def load_state(dataset: Path) -> DatasetState:
    """Read the metadata of ``dataset`` (an empty state when there is none yet)."""
    info_path = dataset / INFO_PATH
    if not info_path.exists():
        return DatasetState()
    info = _read_json(info_path)
    data_files = existing_file_indices(dataset, "data")
    meta_files = existing_file_indices(dataset, "meta/episodes")
    return DatasetState(
        schema=DatasetSchema.from_info(info),
        tasks=_read_tasks(dataset / TASKS_PATH),
        stats=_read_stats_state(dataset / STATS_STATE_PATH),
        total_episodes=int(info["total_episodes"]),
        total_frames=int(info["total_frames"]),
        next_data=data_files[-1].next() if data_files else FileIndex(0, 0),
        next_meta=meta_files[-1].next() if meta_files else FileIndex(0, 0),
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise StoreError(
            f"{path} is unreadable: {exc}",
            hint="Restore the factory home from a backup; Dure never leaves it half-written.",
        ) from exc


def _read_tasks(path: Path) -> list[str]:
    try:
        table = pq.read_table(path, columns=["task_index", "task"])
    except (OSError, pa.ArrowException) as exc:
        raise StoreError(f"{path} is unreadable: {exc}") from exc
    pairs = sorted(
        zip(table.column("task_index").to_pylist(), table.column("task").to_pylist(), strict=True)
    )
    if [index for index, _ in pairs] != list(range(len(pairs))):
        raise StoreError(f"{path}: task_index is not 0..{len(pairs) - 1}")
    return [str(task) for _, task in pairs]


def _read_stats_state(path: Path) -> dict[str, FeatureStats]:
    if not path.exists():
        return {}
    document = _read_json(path)
    try:
        return {
            key: FeatureStats(
                count=int(item["count"]),
                mean=np.asarray(item["mean"], dtype=np.float64),
                m2=np.asarray(item["m2"], dtype=np.float64),
                minimum=np.asarray(item["min"], dtype=np.float64),
                maximum=np.asarray(item["max"], dtype=np.float64),
                sketch=np.asarray(item["sketch"], dtype=np.float64).reshape(SKETCH_POINTS, -1),
            )
            for key, item in document["features"].items()
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"{path} is not a Dure statistics state: {exc!r}") from exc


def render_info(
    schema: DatasetSchema, *, total_episodes: int, total_frames: int, total_tasks: int
) -> bytes:
    """Render ``meta/info.json``."""
    info = {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": schema.robot_type,
        "total_episodes": total_episodes,
        "total_frames": total_frames,
        "total_tasks": total_tasks,
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": DATA_FILES_SIZE_IN_MB,
        "video_files_size_in_mb": 0,
        "fps": schema.fps,
        "splits": {"train": f"0:{total_episodes}"},
        "data_path": DATA_PATH,
        "video_path": None,
        "features": schema.info_features(),
        "dure": schema.info_extension(),
    }
    return json.dumps(info, indent=4).encode() + b"\n"


def render_stats(stats: Mapping[str, FeatureStats]) -> bytes:
    """Render ``meta/stats.json`` (LeRobot statistics per feature)."""
    document = {key: item.summary() for key, item in sorted(stats.items())}
    return json.dumps(document, indent=4).encode() + b"\n"


def render_stats_state(stats: Mapping[str, FeatureStats]) -> bytes:
    """Render ``meta/dure/stats_state.json`` (exact floats, mergeable)."""
    document = {
        "version": 1,
        "features": {
            key: {
                "count": item.count,
                "mean": item.mean.tolist(),
                "m2": item.m2.tolist(),
                "min": item.minimum.tolist(),
                "max": item.maximum.tolist(),
                "sketch": item.sketch.tolist(),
            }
            for key, item in sorted(stats.items())
        },
    }
    return json.dumps(document).encode() + b"\n"


_TASKS_PANDAS = {
    "index_columns": ["task"],
    "column_indexes": [],
    "columns": [
        {
            "name": "task_index",
            "field_name": "task_index",
            "pandas_type": "int64",
            "numpy_type": "int64",
            "metadata": None,
        },
        {
            "name": "task",
            "field_name": "task",
            "pandas_type": "unicode",
            "numpy_type": "object",
            "metadata": None,
        },
    ],
    "creator": {"library": "pyarrow", "version": pa.__version__},
    "pandas_version": "2.2.3",
}


def render_tasks(tasks: list[str]) -> pa.Table:
    """Return the ``meta/tasks.parquet`` table for ``tasks`` (list position = task_index)."""
    schema = pa.schema(
        [pa.field("task_index", pa.int64()), pa.field("task", pa.string())],
        metadata={b"pandas": json.dumps(_TASKS_PANDAS).encode()},
    )
    return pa.Table.from_arrays(
        [pa.array(range(len(tasks)), pa.int64()), pa.array(tasks, pa.string())], schema=schema
    )
