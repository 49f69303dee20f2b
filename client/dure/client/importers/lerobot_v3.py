"""LeRobot v3.0 datasets: episodes packed into Parquet files, Parquet metadata.

Layout (LeRobot's documentation)::

    meta/info.json                              codebase_version "v3.0", fps, features
    meta/tasks.parquet                          task (column or pandas index), task_index
    meta/episodes/chunk-000/file-000.parquet    episode_index, tasks, length,
                                                data/chunk_index, data/file_index,
                                                dataset_from_index, dataset_to_index
    data/chunk-000/file-000.parquet             frames of many episodes

``data_path`` may use ``chunk_index`` and ``file_index``; ``video_path`` also
``video_key`` (checked, videos are not read).  Each data file is read once, with
pyarrow, through :func:`~dure.client.importers.lerobot_paths.inside`; an episode is
the slice of rows from ``dataset_from_index`` to ``dataset_to_index`` (global
``index`` values).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dure.client.episodes.profile import SiteProfile
from dure.client.episodes.standardise import RawEpisode
from dure.client.errors import IngestError
from dure.client.importers.lerobot_common import (
    EpisodeMeta,
    episode_from_table,
    read_info,
    require_source_episodes,
)
from dure.client.importers.lerobot_paths import PathTemplate, clip, index_value, inside
from dure.policies.errors import DureError

__all__ = ["read_lerobot_v3"]

_DEFAULT_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
_DEFAULT_VIDEO = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
_DATA_FIELDS = frozenset({"chunk_index", "file_index"})
_VIDEO_FIELDS = _DATA_FIELDS | {"video_key"}


def _read(path: Path, resolved: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(resolved)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise IngestError(
            f"{path}: cannot read ({clip(str(exc))})",
            hint="The LeRobot v3.0 dataset is incomplete or corrupt; restore the file.",
        ) from exc


def _read_inside(root: Path, relative: str) -> Any:
    return _read(root / relative, inside(root, relative, str(root)))


@dataclass(frozen=True)
class _Row:
    """One episode's row of ``meta/episodes``, its indices checked."""

    index: int
    chunk: int
    file: int
    lo: int
    hi: int
    fields: dict[str, Any]

    @classmethod
    def parse(cls, row: dict[str, Any], where: str) -> _Row:
        def value(key: str) -> int:
            return index_value(row.get(key), key, where)

        parsed = cls(
            value("episode_index"),
            value("data/chunk_index"),
            value("data/file_index"),
            value("dataset_from_index"),
            value("dataset_to_index"),
            row,
        )
        if parsed.lo > parsed.hi:
            raise IngestError(
                f"{where}: episode {parsed.index} has dataset_from_index {parsed.lo} "
                f"after dataset_to_index {parsed.hi}",
                hint="Rewrite the episode metadata with LeRobot's tooling.",
            )
        return parsed


def _episode_rows(root: Path) -> list[_Row]:
    folder = root / "meta" / "episodes"
    files = sorted(folder.glob("chunk-*/file-*.parquet"))
    if not files:
        raise IngestError(
            f"{folder}: no episode metadata files",
            hint="Pass the root of a LeRobot v3.0 dataset (meta/episodes/chunk-*/file-*.parquet).",
        )
    rows: list[_Row] = []
    for path in files:
        relative = path.relative_to(root).as_posix()
        rows.extend(_Row.parse(row, str(path)) for row in _read_inside(root, relative).to_pylist())
    return sorted(rows, key=lambda r: r.index)


def _tasks(root: Path) -> dict[int, str]:
    table = _read_inside(root, "meta/tasks.parquet")
    names = [c for c in ("task", "__index_level_0__") if c in table.column_names]
    if "task_index" not in table.column_names or not names:
        raise IngestError(
            f"{root}/meta/tasks.parquet: needs task_index and task columns",
            hint="Rewrite meta/tasks.parquet with LeRobot's tooling.",
        )
    pairs = zip(
        table.column("task_index").to_pylist(), table.column(names[0]).to_pylist(), strict=True
    )
    return {k: v for k, v in pairs if isinstance(k, int) and isinstance(v, str)}


def _templates(root: Path, info: dict[str, Any]) -> PathTemplate:
    where = f"{root}/meta/info.json"
    PathTemplate.parse(
        info.get("video_path"),
        key="video_path",
        fields=_VIDEO_FIELDS,
        default=_DEFAULT_VIDEO,
        where=where,
    )
    return PathTemplate.parse(
        info.get("data_path"),
        key="data_path",
        fields=_DATA_FIELDS,
        default=_DEFAULT_PATH,
        where=where,
    )


def read_lerobot_v3(root: Path, profile: SiteProfile, digest: str) -> Iterator[RawEpisode]:
    """Yield the episodes of the LeRobot v3.0 dataset at ``root``, one at a time.

    Raises
    ------
    IngestError
        If the layout, metadata or a data file is missing, corrupt, or outside ``root``.
    """
    require_source_episodes(profile, str(root))
    info = read_info(root, "v3")
    template = _templates(root, info)
    tasks = _tasks(root)
    loaded: tuple[Path, Any, np.ndarray] | None = None
    for row in _episode_rows(root):
        relative = template.render(chunk_index=row.chunk, file_index=row.file)
        if loaded is None or loaded[0] != root / relative:
            loaded = _load(root, relative)
        yield _episode(loaded, row=row, tasks=tasks, info=info, profile=profile, digest=digest)


def _load(root: Path, relative: str) -> tuple[Path, Any, np.ndarray]:
    import pyarrow as pa

    path = root / relative
    table = _read(path, inside(root, relative, f"{root}/meta/info.json: data_path"))
    if "index" not in table.column_names:
        raise IngestError(f"{path}: no 'index' column", hint="The data file is not LeRobot v3.0.")
    try:
        index = np.asarray(table.column("index").to_numpy(), dtype=np.int64)
    except (ValueError, TypeError, pa.ArrowException) as exc:
        raise IngestError(
            f"{path}: the 'index' column is not integers ({clip(str(exc))})",
            hint="The data file is not LeRobot v3.0.",
        ) from exc
    return path, table, index


def _episode(
    loaded: tuple[Path, Any, np.ndarray],
    *,
    row: _Row,
    tasks: dict[int, str],
    info: dict[str, Any],
    profile: SiteProfile,
    digest: str,
) -> RawEpisode:
    import pyarrow as pa

    path, table, global_index = loaded
    part = table.take(np.flatnonzero((global_index >= row.lo) & (global_index < row.hi)))
    names = row.fields.get("tasks")
    task = names[0] if isinstance(names, list) and names and isinstance(names[0], str) else ""
    if not task and "task_index" in part.column_names and part.num_rows:
        first = part.column("task_index")[0].as_py()
        task = tasks.get(first, "") if isinstance(first, int) else ""
    meta = EpisodeMeta(row.index, row.fields, task)
    try:
        return episode_from_table(part, info, meta, profile=profile, uri=str(path), digest=digest)
    except DureError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, pa.ArrowException) as exc:
        raise IngestError(
            f"{path}: cannot decode episode {row.index} ({clip(str(exc))})",
            hint="The file is corrupt.",
        ) from exc
