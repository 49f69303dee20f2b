"""LeRobot v2.1 datasets: one Parquet file per episode, JSON-lines metadata.

Layout (LeRobot's documentation)::

    meta/info.json              codebase_version "v2.1", fps, features, data_path
    meta/episodes.jsonl         {"episode_index", "tasks", "length", ...} per line
    meta/tasks.jsonl            {"task_index", "task"} per line
    meta/episodes_stats.jsonl   per-episode statistics (not needed here)
    data/chunk-000/episode_000000.parquet

``data_path`` may use ``episode_chunk`` (``episode_index // chunks_size``) and
``episode_index``; ``video_path`` also ``video_key`` (checked, videos are not read).
Read with pyarrow, one episode at a time, every file through
:func:`~dure.client.importers.lerobot_paths.inside`.
"""

from __future__ import annotations

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
    read_json_text,
    require_source_episodes,
)
from dure.client.importers.lerobot_paths import PathTemplate, clip, index_value, inside
from dure.policies.errors import DureError

__all__ = ["read_lerobot_v21"]

_DEFAULT_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
_DEFAULT_VIDEO = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
_DATA_FIELDS = frozenset({"episode_chunk", "episode_index"})
_VIDEO_FIELDS = _DATA_FIELDS | {"video_key"}


def _jsonl(root: Path, name: str) -> list[dict[str, Any]]:
    path = root / "meta" / name
    try:
        lines = inside(root, f"meta/{name}", str(root)).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise IngestError(
            f"{path}: cannot read ({clip(str(exc))})",
            hint="The LeRobot v2.1 metadata is missing or corrupt.",
        ) from exc
    records = [
        read_json_text(path, line, f"line {n}") for n, line in enumerate(lines, 1) if line.strip()
    ]
    if not all(isinstance(r, dict) for r in records):
        raise IngestError(f"{path}: every line must be a JSON object", hint="Fix the metadata.")
    return records


def _tasks(root: Path) -> dict[int, str]:
    records = _jsonl(root, "tasks.jsonl")
    return {
        int(r["task_index"]): r["task"]
        for r in records
        if isinstance(r.get("task_index"), int) and isinstance(r.get("task"), str)
    }


class _Layout:
    """Where an episode's data file lies: ``data_path`` and ``chunks_size`` checked."""

    def __init__(self, root: Path, info: dict[str, Any]) -> None:
        where = f"{root}/meta/info.json"
        self.root = root
        self.data = PathTemplate.parse(
            info.get("data_path"),
            key="data_path",
            fields=_DATA_FIELDS,
            default=_DEFAULT_PATH,
            where=where,
        )
        PathTemplate.parse(
            info.get("video_path"),
            key="video_path",
            fields=_VIDEO_FIELDS,
            default=_DEFAULT_VIDEO,
            where=where,
        )
        self.chunks_size = index_value(info.get("chunks_size", 1000), "chunks_size", where)
        if self.chunks_size == 0:
            raise IngestError(f"{where}: chunks_size is 0", hint="LeRobot writes 1000.")

    def episode_path(self, index: int) -> tuple[Path, Path]:
        """The episode's data file: as named under the root, and resolved (checked inside)."""
        relative = self.data.render(episode_chunk=index // self.chunks_size, episode_index=index)
        where = f"{self.root}/meta/info.json: data_path"
        return self.root / relative, inside(self.root, relative, where)


def read_lerobot_v21(root: Path, profile: SiteProfile, digest: str) -> Iterator[RawEpisode]:
    """Yield the episodes of the LeRobot v2.1 dataset at ``root``, one at a time.

    Raises
    ------
    IngestError
        If the layout, metadata or a data file is missing, corrupt, or outside ``root``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    require_source_episodes(profile, str(root))
    info = read_info(root, "v2.1")
    layout = _Layout(root, info)
    tasks = _tasks(root)
    for record in _jsonl(root, "episodes.jsonl"):
        where = f"{root}/meta/episodes.jsonl"
        index = index_value(record.get("episode_index"), "episode_index", where)
        path, resolved = layout.episode_path(index)
        try:
            table = pq.read_table(resolved)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise IngestError(
                f"{path}: cannot read episode {index} ({clip(str(exc))})",
                hint="The data file is missing or corrupt; restore it from the recording.",
            ) from exc
        meta = EpisodeMeta(index, record, _task(record, table, tasks))
        yield _episode(table, info, meta, profile=profile, path=path, digest=digest)


def _task(record: dict[str, Any], table: Any, tasks: dict[int, str]) -> str:
    names = record.get("tasks")
    if isinstance(names, list) and names and isinstance(names[0], str):
        return names[0]
    if "task_index" in table.column_names and table.num_rows:
        first = table.column("task_index")[0].as_py()
        if isinstance(first, int):
            return tasks.get(first, "")
    return ""


def _episode(
    table: Any,
    info: dict[str, Any],
    meta: EpisodeMeta,
    *,
    profile: SiteProfile,
    path: Path,
    digest: str,
) -> RawEpisode:
    import pyarrow as pa

    try:
        return episode_from_table(table, info, meta, profile=profile, uri=str(path), digest=digest)
    except DureError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, pa.ArrowException) as exc:
        raise IngestError(
            f"{path}: cannot decode ({clip(str(exc))})", hint="The data file is corrupt."
        ) from exc
