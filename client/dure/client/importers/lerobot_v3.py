"""LeRobot v3.0 datasets: episodes packed into Parquet files, Parquet metadata.

Layout (LeRobot's documentation)::

    meta/info.json                              codebase_version "v3.0", fps, features
    meta/tasks.parquet                          task (column or pandas index), task_index
    meta/episodes/chunk-000/file-000.parquet    episode_index, tasks, length,
                                                data/chunk_index, data/file_index,
                                                dataset_from_index, dataset_to_index
    data/chunk-000/file-000.parquet             frames of many episodes

Each data file is read once, with pyarrow; an episode is the slice of rows from
``dataset_from_index`` to ``dataset_to_index`` (global ``index`` values).
"""

from __future__ import annotations

from collections.abc import Iterator
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
from dure.policies.errors import DureError

__all__ = ["read_lerobot_v3"]

_DEFAULT_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"


def _read(path: Path) -> Any:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise IngestError(
            f"{path}: cannot read ({exc})",
            hint="The LeRobot v3.0 dataset is incomplete or corrupt; restore the file.",
        ) from exc


def _episode_rows(root: Path) -> list[dict[str, Any]]:
    files = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    if not files:
        raise IngestError(
            f"{root}/meta/episodes: no episode metadata files",
            hint="Pass the root of a LeRobot v3.0 dataset (meta/episodes/chunk-*/file-*.parquet).",
        )
    rows: list[dict[str, Any]] = []
    for path in files:
        rows.extend(_read(path).to_pylist())
    return sorted(rows, key=lambda r: int(r.get("episode_index", -1)))


def _tasks(root: Path) -> dict[int, str]:
    table = _read(root / "meta" / "tasks.parquet")
    names = [c for c in ("task", "__index_level_0__") if c in table.column_names]
    if "task_index" not in table.column_names or not names:
        raise IngestError(
            f"{root}/meta/tasks.parquet: needs task_index and task columns",
            hint="Rewrite meta/tasks.parquet with LeRobot's tooling.",
        )
    return dict(
        zip(table.column("task_index").to_pylist(), table.column(names[0]).to_pylist(), strict=True)
    )


def read_lerobot_v3(root: Path, profile: SiteProfile, digest: str) -> Iterator[RawEpisode]:
    """Yield the episodes of the LeRobot v3.0 dataset at ``root``, one at a time.

    Raises
    ------
    IngestError
        If the layout, metadata or a data file is missing or corrupt.
    """
    require_source_episodes(profile, str(root))
    info = read_info(root, "v3")
    tasks = _tasks(root)
    template = str(info.get("data_path") or _DEFAULT_PATH)
    loaded: tuple[Path, Any, Any] | None = None
    for row in _episode_rows(root):
        try:
            path = root / template.format(
                chunk_index=int(row["data/chunk_index"]), file_index=int(row["data/file_index"])
            )
            lo, hi = int(row["dataset_from_index"]), int(row["dataset_to_index"])
            index = int(row["episode_index"])
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise IngestError(
                f"{root}/meta/episodes: an episode row lacks {exc}",
                hint="Rewrite the episode metadata with LeRobot's tooling.",
            ) from exc
        if loaded is None or loaded[0] != path:
            table = _read(path)
            loaded = (
                path,
                table,
                np.asarray(table.column("index").to_numpy(), dtype=np.int64)
                if "index" in table.column_names
                else None,
            )
        yield _episode(
            loaded,
            lo=lo,
            hi=hi,
            index=index,
            row=row,
            tasks=tasks,
            info=info,
            profile=profile,
            digest=digest,
        )


def _episode(
    loaded: tuple[Path, Any, Any],
    *,
    lo: int,
    hi: int,
    index: int,
    row: dict[str, Any],
    tasks: dict[int, str],
    info: dict[str, Any],
    profile: SiteProfile,
    digest: str,
) -> RawEpisode:
    path, table, global_index = loaded
    if global_index is None:
        raise IngestError(f"{path}: no 'index' column", hint="The data file is not LeRobot v3.0.")
    rows = np.flatnonzero((global_index >= lo) & (global_index < hi))
    part = table.take(rows)
    names = row.get("tasks")
    task = names[0] if isinstance(names, list) and names and isinstance(names[0], str) else ""
    if not task and "task_index" in part.column_names and part.num_rows:
        task = tasks.get(part.column("task_index")[0].as_py(), "")
    meta = EpisodeMeta(index, row, task)
    try:
        return episode_from_table(part, info, meta, profile=profile, uri=str(path), digest=digest)
    except DureError:
        raise
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise IngestError(
            f"{path}: cannot decode episode {index} ({exc})", hint="The file is corrupt."
        ) from exc
