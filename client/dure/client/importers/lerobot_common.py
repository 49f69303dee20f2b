"""What the LeRobot v2.1 and v3.0 importers share: info.json, columns, one episode's rows.

In a LeRobot dataset a profile's ``stream`` is a column (``observation.state``,
``action``, ``next.success``), ``select`` picks elements by the names in
``meta/info.json`` (``features.<column>.names``: a list, or a mapping whose first
value is the list) or by index, and ``time.column`` (default ``timestamp``, float
seconds from the episode start) gives the sample times.  Metadata keys a ``task`` or
``instruction`` source may name: ``task`` (the episode's first task) and
``robot_type``.  An episode's start time is its ``start_time`` metadata field (ISO
8601) when present, else the Unix epoch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from dure.client.episodes.profile import SiteProfile, TextSource
from dure.client.episodes.resample import NS_PER_S
from dure.client.episodes.standardise import RawEpisode, Stream, profile_streams
from dure.client.errors import IngestError

__all__ = ["EpisodeMeta", "episode_from_table", "read_info", "require_source_episodes"]

_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def read_info(root: Path, version: str) -> dict[str, Any]:
    """Read ``meta/info.json`` and check its ``codebase_version`` starts with ``version``."""
    path = root / "meta" / "info.json"
    try:
        info: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise IngestError(
            f"{path}: cannot read the LeRobot dataset's info ({exc})",
            hint="Pass the dataset's root folder (the one holding meta/ and data/).",
        ) from exc
    found = info.get("codebase_version") if isinstance(info, dict) else None
    if not isinstance(found, str) or not found.startswith(version):
        raise IngestError(
            f"{path}: codebase_version is {found!r}, this importer reads {version}",
            hint="Set format to lerobot-v21 or lerobot-v3 in the site profile to match.",
        )
    if not isinstance(info.get("features"), dict):
        raise IngestError(f"{path}: 'features' is missing", hint="The dataset is incomplete.")
    return dict(info)


def require_source_episodes(profile: SiteProfile, where: str) -> None:
    """LeRobot datasets and robomimic files carry their own episodes: check the profile agrees."""
    if profile.segmentation.method not in ("per-source-episode", "per-file"):
        raise IngestError(
            f"{where}: segmentation {profile.segmentation.method} does not apply; "
            "this format stores its own episodes",
            hint="Set segmentation.method to per-source-episode in the site profile.",
        )


class EpisodeMeta:
    """One source episode's metadata: index, task, start time (ns) and free fields."""

    def __init__(self, index: int, fields: Mapping[str, Any], task: str) -> None:
        self.index = index
        self.fields = dict(fields)
        self.task = task

    def start_ns(self) -> int:
        """The ``start_time`` field (ISO 8601) in ns since the epoch, else 0."""
        value = self.fields.get("start_time")
        if isinstance(value, str):
            try:
                return int(datetime.fromisoformat(value).timestamp() * NS_PER_S)
            except ValueError:
                return 0
        return 0


def _names(info: Mapping[str, Any], column: str) -> tuple[str, ...] | None:
    spec = info["features"].get(column)
    names = spec.get("names") if isinstance(spec, dict) else None
    if isinstance(names, dict):
        names = next(iter(names.values()), None)
    if isinstance(names, list) and all(isinstance(n, str) for n in names):
        return tuple(names)
    return None


def _column(table: Any, column: str, where: str) -> np.ndarray:
    if column not in table.column_names:
        raise IngestError(
            f"{where}: column {column!r} is not in the data (it has {table.column_names})",
            hint="Fix the stream names in the site profile to the dataset's columns.",
        )
    chunked = table.column(column).combine_chunks()
    try:
        values = (
            chunked.flatten().to_numpy(zero_copy_only=False)
            if hasattr(chunked, "flatten")
            else None
        )
        if values is not None:
            return np.asarray(values, dtype=np.float64).reshape(len(chunked), -1)
        return np.asarray(chunked.to_numpy(zero_copy_only=False), dtype=np.float64).reshape(
            len(chunked), 1
        )
    except (ValueError, TypeError) as exc:
        raise IngestError(
            f"{where}: column {column!r} is not numeric or its rows differ in length ({exc})",
            hint="Point the profile at numeric columns of fixed width.",
        ) from exc


def episode_from_table(
    table: Any,
    info: Mapping[str, Any],
    meta: EpisodeMeta,
    *,
    profile: SiteProfile,
    uri: str,
    digest: str,
) -> RawEpisode:
    """Build one :class:`RawEpisode` from the rows of one LeRobot episode."""
    where = f"{uri}, episode {meta.index}"
    if table.num_rows == 0:
        raise IngestError(f"{where}: the episode has no frames", hint="Drop empty episodes.")
    factor = _UNITS[profile.time.unit] * NS_PER_S
    times = np.rint(_column(table, profile.time.column, where)[:, 0] * factor).astype(np.int64)
    start = meta.start_ns()
    t_ns = start + times - times[0]

    def stream(column: str) -> Stream:
        return Stream(column, t_ns, _column(table, column, where), _names(info, column))

    streams = profile_streams(profile, stream)
    task = _text(profile.task, meta, info, where, "task")
    instruction = (
        task
        if profile.instruction is None
        else _text(profile.instruction, meta, info, where, "instruction")
    )
    return RawEpisode(
        source_uri=uri,
        source_sha256=digest,
        index=meta.index,
        start_ns=int(t_ns[0]),
        end_ns=int(t_ns[-1]),
        features=streams.features,
        task=task,
        instruction=instruction,
        success=streams.success,
        reward=streams.reward,
        intervention=streams.intervention,
    )


def _text(
    source: TextSource, meta: EpisodeMeta, info: Mapping[str, Any], where: str, what: str
) -> str:
    if source.fixed is not None:
        return source.fixed
    key = source.metadata or ""
    if key == "task":
        return meta.task
    value = meta.fields.get(key, info.get(key))
    if isinstance(value, str) and value:
        return value
    raise IngestError(
        f"{where}: {what}: metadata {key!r} is not in the episode or info.json",
        hint=f"Use {what}.metadata: task, or {what}.fixed, in the site profile.",
    )
