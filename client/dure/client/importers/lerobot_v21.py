"""LeRobot v2.1 datasets: one Parquet file per episode, JSON-lines metadata.

Layout (LeRobot's documentation)::

    meta/info.json              codebase_version "v2.1", fps, features, data_path
    meta/episodes.jsonl         {"episode_index", "tasks", "length", ...} per line
    meta/tasks.jsonl            {"task_index", "task"} per line
    meta/episodes_stats.jsonl   per-episode statistics (not needed here)
    data/chunk-000/episode_000000.parquet

Read with pyarrow, one episode at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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

__all__ = ["read_lerobot_v21"]

_DEFAULT_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"


def _jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines if line.strip()]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise IngestError(
            f"{path}: cannot read ({exc})", hint="The LeRobot v2.1 metadata is missing or corrupt."
        ) from exc
    if not all(isinstance(r, dict) for r in records):
        raise IngestError(f"{path}: every line must be a JSON object", hint="Fix the metadata.")
    return records


def _episode_path(root: Path, info: dict[str, Any], index: int) -> Path:
    template = info.get("data_path") or _DEFAULT_PATH
    chunk = index // int(info.get("chunks_size") or 1000)
    try:
        return root / str(template).format(episode_chunk=chunk, episode_index=index)
    except (KeyError, IndexError, ValueError) as exc:
        raise IngestError(
            f"{root}/meta/info.json: data_path {template!r} is not a v2.1 template ({exc})",
            hint="Use data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet.",
        ) from exc


def read_lerobot_v21(root: Path, profile: SiteProfile, digest: str) -> Iterator[RawEpisode]:
    """Yield the episodes of the LeRobot v2.1 dataset at ``root``, one at a time.

    Raises
    ------
    IngestError
        If the layout, metadata or a data file is missing or corrupt.
    """
    import pyarrow.parquet as pq

    require_source_episodes(profile, str(root))
    info = read_info(root, "v2.1")
    tasks = {r.get("task_index"): r.get("task") for r in _jsonl(root / "meta" / "tasks.jsonl")}
    for record in _jsonl(root / "meta" / "episodes.jsonl"):
        index = record.get("episode_index")
        if not isinstance(index, int):
            raise IngestError(f"{root}/meta/episodes.jsonl: episode_index missing", hint="Fix it.")
        path = _episode_path(root, info, index)
        try:
            table = pq.read_table(path)
        except (OSError, ValueError) as exc:
            raise IngestError(
                f"{path}: cannot read episode {index} ({exc})",
                hint="The data file is missing or corrupt; restore it from the recording.",
            ) from exc
        yield _episode(table, info, record, tasks=tasks, profile=profile, path=path, digest=digest)


def _episode(
    table: Any,
    info: dict[str, Any],
    record: dict[str, Any],
    *,
    tasks: dict[Any, Any],
    profile: SiteProfile,
    path: Path,
    digest: str,
) -> RawEpisode:
    names = record.get("tasks")
    task = names[0] if isinstance(names, list) and names and isinstance(names[0], str) else None
    if task is None and "task_index" in table.column_names and table.num_rows:
        task = tasks.get(table.column("task_index")[0].as_py())
    meta = EpisodeMeta(int(record["episode_index"]), record, str(task or ""))
    try:
        return episode_from_table(table, info, meta, profile=profile, uri=str(path), digest=digest)
    except DureError:
        raise
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise IngestError(
            f"{path}: cannot decode ({exc})", hint="The data file is corrupt."
        ) from exc
