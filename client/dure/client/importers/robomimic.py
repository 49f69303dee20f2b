"""robomimic HDF5 files (h5py): ``data/demo_N`` groups, one episode each.

A profile's ``stream`` is a dataset path under the demo group (``obs/robot0_eef_pos``,
``actions``, ``dones``), ``select`` picks columns by index (robomimic names no
elements).  robomimic stores no times: samples are ``1 / time.rate_hz`` apart, and an
episode starts at the demo's ``start_time_ns`` attribute when present, else at 0.
Metadata keys for a task or instruction: ``env_args.<key>`` (the JSON in
``data.attrs["env_args"]``, e.g. ``env_args.env_name``) or a demo attribute name.
SOURCE is one ``.hdf5`` file or a folder of them (sorted by name).

Only robomimic's published layout is required (``data/demo_N`` with the datasets the
profile names); ``start_time_ns`` is optional.  Everything read must lie in the file
whose SHA-256 the provenance records: external links, external raw storage and
virtual datasets are refused.  A dataset's shape is checked (one row per action,
at most :data:`MAX_DATASET_ELEMENTS` values) before it is read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dure.client.episodes.profile import SiteProfile, TextSource
from dure.client.episodes.resample import NS_PER_S
from dure.client.episodes.standardise import (
    MAX_ABS_TIME_NS,
    RawEpisode,
    Stream,
    profile_streams,
)
from dure.client.errors import IngestError
from dure.client.importers.lerobot_common import require_source_episodes
from dure.policies.errors import DureError

__all__ = ["MAX_DATASET_ELEMENTS", "read_robomimic"]

_DEMO = re.compile(r"^demo_(\d+)$")
MAX_DATASET_ELEMENTS = 1 << 27
"""Most values one dataset of a demo may hold (1 GiB as float64) before it is read."""
_OUTSIDE_HINT = (
    "Copy the data into the file (h5py: f.copy, or h5repack): Dure reads only bytes it "
    "can name in the provenance."
)


def _cut(text: str, size: int = 200) -> str:
    """``text`` as one line of at most ``size`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 3] + "..."


def _brief(exc: BaseException) -> str:
    return _cut(f"{type(exc).__name__}: {exc}")


def _files(source: Path) -> list[Path]:
    files = (
        [source]
        if source.is_file()
        else sorted(source.glob("*.hdf5")) + sorted(source.glob("*.h5"))
    )
    if not files:
        raise IngestError(
            f"{source}: no .hdf5 files", hint="Pass a robomimic .hdf5 file or a folder of them."
        )
    return files


def read_robomimic(source: Path, profile: SiteProfile, digest: str) -> Iterator[RawEpisode]:
    """Yield the demos of the robomimic file(s) at ``source``, one at a time.

    Raises
    ------
    IngestError
        If a file is not HDF5, lacks the ``data`` group, or a dataset is missing or bad.
    """
    import h5py

    require_source_episodes(profile, str(source))
    index = 0
    for path in _files(source):
        try:
            with h5py.File(path, "r") as handle:
                for raw in _demos(handle, path, profile, digest, index):
                    index += 1
                    yield raw
        except DureError:
            raise
        except Exception as exc:
            raise IngestError(
                f"{path}: cannot read as robomimic HDF5 ({_brief(exc)})",
                hint="Check that the file is a complete robomimic dataset (data/demo_N groups).",
            ) from exc


def _demos(
    handle: Any, path: Path, profile: SiteProfile, digest: str, first: int
) -> Iterator[RawEpisode]:
    data = _member(handle, "data", str(path))
    if data is None or not hasattr(data, "keys"):
        raise IngestError(f"{path}: no 'data' group", hint="This is not a robomimic dataset.")
    env_args = _env_args(data, path)
    demos = sorted((int(m.group(1)), name) for name in data if (m := _DEMO.match(name)))
    for offset, (_, name) in enumerate(demos):
        group = _member(data, name, f"{path}:data")
        if not hasattr(group, "keys"):
            raise IngestError(
                f"{path}:data/{name} is not a group", hint="Each data/demo_N must be a group."
            )
        yield _demo(
            group,
            f"{path}:data/{name}",
            first + offset,
            env_args=env_args,
            profile=profile,
            digest=digest,
        )


def _env_args(data: Any, path: Path) -> dict[str, Any]:
    raw = data.attrs.get("env_args")
    if raw is None:
        return {}
    try:
        value = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    except RecursionError as exc:
        raise IngestError(
            f"{path}: data.attrs['env_args'] is nested too deeply to read",
            hint="env_args is robomimic's environment metadata: a flat JSON object.",
        ) from exc
    except ValueError as exc:
        raise IngestError(
            f"{path}: data.attrs['env_args'] is not JSON ({_brief(exc)})", hint="Fix env_args."
        ) from exc
    return value if isinstance(value, dict) else {}


def _member(group: Any, key: str, where: str) -> Any:
    """``group[key]`` (a path of ``/``-separated names), refusing links out of the file."""
    import h5py

    node = group
    for part in key.split("/"):
        if not hasattr(node, "keys") or part not in node:
            return None
        link = node.get(part, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            raise IngestError(
                f"{where}/{_cut(key, 80)}: an external link to {_cut(link.filename, 80)!r}",
                hint=_OUTSIDE_HINT,
            )
        node = node[part]
    if isinstance(node, h5py.Dataset) and (node.is_virtual or node.external):
        raise IngestError(
            f"{where}/{_cut(key, 80)}: its data is stored outside the file "
            f"({'a virtual dataset' if node.is_virtual else 'external raw storage'})",
            hint=_OUTSIDE_HINT,
        )
    return node


def _dataset(group: Any, key: str, where: str, rows: int | None = None) -> np.ndarray:
    """Read dataset ``key`` of a demo as float64 rows, after checking its shape."""
    node = _member(group, key, where)
    if node is None or not hasattr(node, "shape"):
        names = sorted(group.keys())
        listed = [_cut(n, 60) for n in names[:12]] + (
            [f"{len(names) - 12} more"] * (len(names) > 12)
        )
        raise IngestError(
            f"{where}: dataset {_cut(key, 80)!r} is missing (the demo has {listed})",
            hint="Fix the stream names in the site profile to the file's dataset paths.",
        )
    shape = tuple(int(d) for d in node.shape)
    size = int(np.prod(shape, dtype=object)) if shape else 1
    if rows is not None and (shape[0] if shape else 1) != rows:
        raise IngestError(
            f"{where}: dataset {_cut(key, 80)!r} has {shape[0] if shape else 1} rows, "
            f"the actions {rows}",
            hint="Every dataset of a demo needs one row per sample.",
        )
    if size > MAX_DATASET_ELEMENTS:
        raise IngestError(
            f"{where}: dataset {_cut(key, 80)!r} of shape {shape} holds {size} values, "
            f"more than {MAX_DATASET_ELEMENTS}",
            hint="Split the demo into shorter ones, or map fewer columns.",
        )
    values = np.asarray(node[()], dtype=np.float64)
    return values.reshape(values.shape[0], -1) if values.ndim else values.reshape(1, 1)


def _demo(
    group: Any,
    where: str,
    index: int,
    *,
    env_args: dict[str, Any],
    profile: SiteProfile,
    digest: str,
) -> RawEpisode:
    rate = profile.time.rate_hz or 1.0
    start = _start_ns(group, where)
    n = int(_dataset(group, profile.features["action"][0].stream or "actions", where).shape[0])
    t_ns = start + np.rint(np.arange(n) * (NS_PER_S / rate)).astype(np.int64)

    def stream(key: str) -> Stream:
        return Stream(key, t_ns, _dataset(group, key, where, rows=n))

    streams = profile_streams(profile, stream)
    task = _text(profile.task, group, env_args, where, "task")
    instruction = (
        task
        if profile.instruction is None
        else _text(profile.instruction, group, env_args, where, "instruction")
    )
    return RawEpisode(
        source_uri=where,
        source_sha256=digest,
        index=index,
        start_ns=int(t_ns[0]) if n else start,
        end_ns=int(t_ns[-1]) if n else start,
        features=streams.features,
        task=task,
        instruction=instruction,
        success=streams.success,
        reward=streams.reward,
        intervention=streams.intervention,
    )


def _start_ns(group: Any, where: str) -> int:
    """The optional ``start_time_ns`` attribute: an integer within about 146 years of 1970."""
    value = group.attrs.get("start_time_ns", 0)
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise IngestError(
            f"{where}: attribute start_time_ns is {_cut(repr(value), 60)}, not an integer",
            hint="start_time_ns is optional: nanoseconds since 1970 as an integer, or remove it.",
        )
    if not -MAX_ABS_TIME_NS <= int(value) <= MAX_ABS_TIME_NS:
        raise IngestError(
            f"{where}: attribute start_time_ns {int(value)} is out of range",
            hint="start_time_ns is optional: nanoseconds since 1970 as an integer, or remove it.",
        )
    return int(value)


def _text(source: TextSource, group: Any, env_args: dict[str, Any], where: str, what: str) -> str:
    if source.fixed is not None:
        return source.fixed
    key = source.metadata or ""
    value: Any = None
    if key.startswith("env_args."):
        value = env_args
        for part in key.split(".")[1:]:
            value = value.get(part) if isinstance(value, dict) else None
    elif key in group.attrs:
        value = group.attrs[key]
        value = value.decode() if isinstance(value, bytes) else value
    if isinstance(value, str) and value:
        return value
    raise IngestError(
        f"{where}: {what}: metadata {key!r} is not in the demo or env_args",
        hint=f"Use {what}.metadata: env_args.env_name, or {what}.fixed, in the site profile.",
    )
