"""CSV / PLC exports, read with ``pyarrow.csv``.

SOURCE is one CSV file or a folder of them (``csv.pattern``, sorted by name).  Only
regular files are read: a FIFO, socket, device or folder matching the pattern is
refused before it is opened (and opened without blocking), so ingest never hangs.  The
profile's ``csv`` section gives the separator and decimal mark; a feature source's
``fields`` are column names, ``time.column`` / ``time.unit`` the time column (absolute
or relative; Unix time gives the episode's start time).  Segmentation: ``per-file``, by
``time-gap`` within a file, or by ``marker`` (a text column, ``segmentation.stream``,
whose value starts with the start / end text).  A ``task`` ``stream`` is a text column
(its first non-empty value in the episode).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from dure.client.episodes.profile import SiteProfile, TextSource
from dure.client.episodes.resample import NS_PER_S
from dure.client.episodes.standardise import MAX_ABS_TIME_NS, RawEpisode, Stream
from dure.client.errors import IngestError
from dure.policies.errors import DureError

__all__ = ["read_csv"]

_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def _files(source: Path, pattern: str) -> list[Path]:
    files = [source] if not source.is_dir() else sorted(source.glob(pattern))
    if not files:
        raise IngestError(
            f"{source}: no files match {pattern!r}",
            hint="Pass a CSV file, or a folder and the right csv.pattern in the site profile.",
        )
    for path in files:
        _check_regular(path)
    return files


def _kind(mode: int) -> str:
    kinds = [
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ]
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _not_regular(path: Path, mode: int) -> IngestError:
    return IngestError(
        f"{path}: is {_kind(mode)}, not a regular file",
        hint="Only regular CSV files are read; remove it from the source folder "
        "or narrow csv.pattern in the site profile.",
    )


def _check_regular(path: Path) -> None:
    """Refuse anything but a regular file, without opening it (a FIFO would block)."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise IngestError(
            f"{path}: cannot read ({exc.strerror or exc})",
            hint="Pass existing, readable CSV files.",
        ) from exc
    if not stat.S_ISREG(mode):
        raise _not_regular(path, mode)


def _open_regular(path: Path) -> BinaryIO:
    """Open ``path`` for reading without ever blocking, and only if it is a regular file.

    ``O_NONBLOCK`` makes opening a FIFO return at once (a FIFO swapped in after the
    :func:`_check_regular` check included); the type is checked again on the open file.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(path, mode)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _table(path: Path, profile: SiteProfile) -> Any:
    import pyarrow.csv as pacsv

    opts = profile.csv
    try:
        with _open_regular(path) as handle:
            return pacsv.read_csv(
                handle,
                read_options=pacsv.ReadOptions(encoding=opts.encoding),
                parse_options=pacsv.ParseOptions(delimiter=opts.delimiter),
                convert_options=pacsv.ConvertOptions(decimal_point=opts.decimal),
            )
    except (OSError, ValueError, LookupError) as exc:
        raise IngestError(
            f"{path}: cannot parse as CSV ({_first_line(exc)})",
            hint="Check csv.delimiter, csv.decimal and csv.encoding in the site profile.",
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def read_csv(source: Path, profile: SiteProfile, digest: str) -> Iterator[RawEpisode]:
    """Yield the episodes of the CSV export(s) at ``source``.

    Raises
    ------
    IngestError
        If a file cannot be parsed, lacks a column, or holds non-numeric values.
    """
    index = 0
    for path in _files(source, profile.csv.pattern):
        table = _table(path, profile)
        try:
            for rows in _segments(table, profile, str(path)):
                yield _episode(
                    table, rows, index=index, profile=profile, where=str(path), digest=digest
                )
                index += 1
        except DureError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
            raise IngestError(
                f"{path}: cannot decode ({exc})", hint="The export is corrupt."
            ) from exc


def _numeric(table: Any, column: str, where: str) -> np.ndarray:
    if column not in table.column_names:
        raise IngestError(
            f"{where}: column {column!r} is missing (the file has {table.column_names})",
            hint="Fix the column names in the site profile to the export's header.",
        )
    try:
        array = table.column(column).to_numpy()
        return np.asarray(array, dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise IngestError(
            f"{where}: column {column!r} is not numeric ({exc})",
            hint="Check csv.decimal (',' or '.') in the site profile, or the column name.",
        ) from exc


def _times(table: Any, profile: SiteProfile, where: str) -> np.ndarray:
    """The time column in integer ns, checked before anything is sized from it.

    Times must be finite, within :data:`MAX_ABS_TIME_NS` of the epoch and
    non-decreasing (rows stamped at the same time are kept; the last one wins when
    resampled); the episode's span is bounded later, by ``standardise``.
    """
    column = profile.time.column
    raw = _numeric(table, column, where)
    if not np.all(np.isfinite(raw)):
        row = int(np.flatnonzero(~np.isfinite(raw))[0])
        raise IngestError(
            f"{where}: column {column!r} has an empty or NaN time at data row {row + 1}",
            hint="Repair the export.",
        )
    with np.errstate(over="ignore"):
        scaled = raw * (_UNITS[profile.time.unit] * NS_PER_S)
    outside = np.flatnonzero(np.abs(scaled) > MAX_ABS_TIME_NS)
    if outside.size:
        row = int(outside[0])
        raise IngestError(
            f"{where}: column {column!r} holds {raw[row]:.6g} {profile.time.unit} at data row "
            f"{row + 1}, more than 146 years from 1970",
            hint="Check time.unit in the site profile (s, ms, us, ns) and repair the export.",
        )
    t_ns = np.rint(scaled).astype(np.int64)
    backwards = np.flatnonzero(np.diff(t_ns) < 0)
    if backwards.size:
        row = int(backwards[0]) + 1
        raise IngestError(
            f"{where}: column {column!r} goes backwards at data row {row + 1} "
            f"({raw[row - 1]:.6g} -> {raw[row]:.6g} {profile.time.unit})",
            hint="Sort the export by time or repair the out-of-order row; "
            "rows stamped at the same time are allowed.",
        )
    return t_ns


def _segments(table: Any, profile: SiteProfile, where: str) -> Iterator[np.ndarray]:
    n = table.num_rows
    if n == 0:
        raise IngestError(f"{where}: the export has no rows", hint="Remove empty exports.")
    seg = profile.segmentation
    if seg.method == "time-gap":
        t = _times(table, profile, where)
        cuts = np.flatnonzero(np.diff(t) > seg.gap_s * NS_PER_S) + 1
        yield from np.split(np.arange(n), cuts)
    elif seg.method == "marker":
        yield from _marker_segments(table, profile, where)
    else:
        yield np.arange(n)


def _marker_segments(table: Any, profile: SiteProfile, where: str) -> Iterator[np.ndarray]:
    seg = profile.segmentation
    column = seg.stream or ""
    if column not in table.column_names:
        raise IngestError(
            f"{where}: marker column {column!r} is missing", hint="Fix segmentation.stream."
        )
    texts = [str(v) if v is not None else "" for v in table.column(column).to_pylist()]
    start = None
    for i, text in enumerate(texts):
        if text.startswith(seg.start):
            start = i
        elif text.startswith(seg.end) and start is not None:
            yield np.arange(start, i + 1)
            start = None


def _episode(
    table: Any, rows: np.ndarray, *, index: int, profile: SiteProfile, where: str, digest: str
) -> RawEpisode:
    part = table.take(rows)
    t_ns = _times(part, profile, where)
    label = f"{where}, episode {index}"

    def stream(columns: tuple[str, ...], name: str) -> Stream:
        values = np.stack([_numeric(part, c, label) for c in columns], axis=1)
        return Stream(name, t_ns, values)

    features = {
        name: [stream(s.fields, f"{name}[{i}]") for i, s in enumerate(sources)]
        for name, sources in profile.features.items()
    }
    signals = [profile.outcome.success, profile.outcome.reward, profile.intervention]
    success, reward, intervention = (
        stream((s.stream,), s.stream) if s and s.stream else None for s in signals
    )
    task = _text(profile.task, part, label, "task")
    instruction = (
        task
        if profile.instruction is None
        else _text(profile.instruction, part, label, "instruction")
    )
    return RawEpisode(
        source_uri=where,
        source_sha256=digest,
        index=index,
        start_ns=int(t_ns.min()) if t_ns.size else 0,
        end_ns=int(t_ns.max()) if t_ns.size else 0,
        features=features,
        task=task,
        instruction=instruction,
        success=success,
        reward=reward,
        intervention=intervention,
    )


def _text(source: TextSource, part: Any, label: str, what: str) -> str:
    if source.fixed is not None:
        return source.fixed
    column = source.stream or ""
    if column not in part.column_names:
        raise IngestError(
            f"{label}: {what}: column {column!r} is missing",
            hint=f"Set {what}.stream to a text column of the export, or {what}.fixed.",
        )
    for value in part.column(column).to_pylist():
        if value is not None and str(value).strip():
            return str(value).strip()
    raise IngestError(
        f"{label}: {what}: column {column!r} is empty", hint=f"Set {what}.fixed instead."
    )
