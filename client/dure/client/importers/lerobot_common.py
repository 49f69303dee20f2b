"""What the LeRobot v2.1 and v3.0 importers share: info.json, paths, columns, one episode.

In a LeRobot dataset a profile's ``stream`` is a column (``observation.state``,
``action``, ``next.success``), ``select`` picks elements by the names in
``meta/info.json`` (``features.<column>.names``: a list, or a mapping whose first
value is the list) or by index, and ``time.column`` (default ``timestamp``, float
seconds from the episode start) gives the sample times.  Metadata keys a ``task`` or
``instruction`` source may name: ``task`` (the episode's first task) and
``robot_type``.  An episode's start time is its ``start_time`` metadata field (ISO
8601) when present, else the Unix epoch.

A dataset is untrusted input: every file is opened through
:func:`~dure.client.importers.lerobot_paths.inside`, and JSON that nests too deeply
or holds out-of-range values is refused with :class:`IngestError`.
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
from dure.client.importers.lerobot_paths import clip, inside

__all__ = [
    "EpisodeMeta",
    "episode_from_table",
    "read_info",
    "read_json_text",
    "require_source_episodes",
]

_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
_MAX_START_NS = 2**62
"""An episode's start: about 1824 to 2116."""
_MAX_TIME_NS = 2**60
"""A frame's time from the episode start: about 36 years; with the start, fits 64 bits."""


def read_json_text(path: Path, text: str, what: str) -> Any:
    """Parse JSON from an untrusted file, turning every failure into :class:`IngestError`.

    Raises
    ------
    IngestError
        If the text is not JSON, nests too deeply or holds an integer too long.
    """
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise IngestError(
            f"{path}: {what} nests too deeply to read",
            hint="The file is not LeRobot metadata; restore it from the recording.",
        ) from exc
    except ValueError as exc:
        raise IngestError(
            f"{path}: cannot read {what} ({clip(str(exc))})",
            hint="The LeRobot metadata is corrupt; restore it from the recording.",
        ) from exc


def read_info(root: Path, version: str) -> dict[str, Any]:
    """Read ``meta/info.json`` and check its ``codebase_version`` starts with ``version``.

    Raises
    ------
    IngestError
        If the file is missing, outside the dataset, not JSON or not this version.
    """
    path = root / "meta" / "info.json"
    try:
        text = inside(root, "meta/info.json", str(root)).read_text(encoding="utf-8")
    except IngestError as exc:
        raise IngestError(
            f"{path}: cannot read the LeRobot dataset's info ({exc.message})",
            hint="Pass the dataset's root folder (the one holding meta/ and data/).",
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise IngestError(
            f"{path}: cannot read the LeRobot dataset's info ({clip(str(exc))})",
            hint="Pass the dataset's root folder (the one holding meta/ and data/).",
        ) from exc
    info = read_json_text(path, text, "the dataset's info")
    found = info.get("codebase_version") if isinstance(info, dict) else None
    if not isinstance(found, str) or not found.startswith(version):
        raise IngestError(
            f"{path}: codebase_version is {clip(found)}, this importer reads {version}",
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

    def start_ns(self, where: str) -> int:
        """The ``start_time`` field (ISO 8601) in ns since the epoch, else 0.

        Raises
        ------
        IngestError
            If the time lies outside what nanoseconds in 64 bits can hold.
        """
        value = self.fields.get("start_time")
        if not isinstance(value, str):
            return 0
        try:
            start = int(datetime.fromisoformat(value).timestamp() * NS_PER_S)
        except ValueError:
            return 0
        except OverflowError:
            start = _MAX_START_NS
        if abs(start) >= _MAX_START_NS:
            raise IngestError(
                f"{where}: start_time {clip(value)} is out of range",
                hint="Fix the episode's start_time (ISO 8601, between 1824 and 2116).",
            )
        return start


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
            f"{where}: column {clip(column)} is not in the data "
            f"(it has {clip(table.column_names, 400)})",
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
            f"{where}: column {clip(column)} is not numeric or its rows differ in length "
            f"({clip(str(exc))})",
            hint="Point the profile at numeric columns of fixed width.",
        ) from exc


def _times(table: Any, profile: SiteProfile, where: str) -> np.ndarray:
    seconds = _column(table, profile.time.column, where)[:, 0]
    scaled = seconds * (_UNITS[profile.time.unit] * NS_PER_S)
    if not np.all(np.isfinite(scaled)) or np.any(np.abs(scaled) >= _MAX_TIME_NS):
        raise IngestError(
            f"{where}: column {clip(profile.time.column)} holds a time that is not finite "
            "or out of range",
            hint="Fix the timestamps (seconds from the episode start) in the data.",
        )
    return np.rint(scaled).astype(np.int64)


def episode_from_table(
    table: Any,
    info: Mapping[str, Any],
    meta: EpisodeMeta,
    *,
    profile: SiteProfile,
    uri: str,
    digest: str,
) -> RawEpisode:
    """Build one :class:`RawEpisode` from the rows of one LeRobot episode.

    Raises
    ------
    IngestError
        If the episode is empty, a column is missing or not numeric, or a time is
        out of range.
    """
    where = f"{uri}, episode {meta.index}"
    if table.num_rows == 0:
        raise IngestError(f"{where}: the episode has no frames", hint="Drop empty episodes.")
    times = _times(table, profile, where)
    t_ns = meta.start_ns(where) + (times - times[0])

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
        f"{where}: {what}: metadata {clip(key)} is not in the episode or info.json",
        hint=f"Use {what}.metadata: task, or {what}.fixed, in the site profile.",
    )
