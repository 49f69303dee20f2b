"""robomimic HDF5 files (h5py): ``data/demo_N`` groups, one episode each.

A profile's ``stream`` is a dataset path under the demo group (``obs/robot0_eef_pos``,
``actions``, ``dones``), ``select`` picks columns by index (robomimic names no
elements).  robomimic stores no times: samples are ``1 / time.rate_hz`` apart, and an
episode starts at the demo's ``start_time_ns`` attribute when present, else at 0.
Metadata keys for a task or instruction: ``env_args.<key>`` (the JSON in
``data.attrs["env_args"]``, e.g. ``env_args.env_name``) or a demo attribute name.
SOURCE is one ``.hdf5`` file or a folder of them (sorted by name).
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
from dure.client.episodes.standardise import RawEpisode, Stream, profile_streams
from dure.client.errors import IngestError
from dure.client.importers.lerobot_common import require_source_episodes
from dure.policies.errors import DureError

__all__ = ["read_robomimic"]

_DEMO = re.compile(r"^demo_(\d+)$")


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
                f"{path}: cannot read as robomimic HDF5 ({type(exc).__name__}: {exc})",
                hint="Check that the file is a complete robomimic dataset (data/demo_N groups).",
            ) from exc


def _demos(
    handle: Any, path: Path, profile: SiteProfile, digest: str, first: int
) -> Iterator[RawEpisode]:
    data = handle.get("data")
    if data is None or not hasattr(data, "keys"):
        raise IngestError(f"{path}: no 'data' group", hint="This is not a robomimic dataset.")
    env_args = _env_args(data, path)
    demos = sorted((int(m.group(1)), name) for name in data if (m := _DEMO.match(name)))
    for offset, (_, name) in enumerate(demos):
        yield _demo(
            data[name],
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
    except ValueError as exc:
        raise IngestError(
            f"{path}: data.attrs['env_args'] is not JSON ({exc})", hint="Fix env_args."
        ) from exc
    return value if isinstance(value, dict) else {}


def _dataset(group: Any, key: str, where: str) -> np.ndarray:
    if key not in group:
        raise IngestError(
            f"{where}: dataset {key!r} is missing (the demo has {sorted(group.keys())})",
            hint="Fix the stream names in the site profile to the file's dataset paths.",
        )
    values = np.asarray(group[key][()], dtype=np.float64)
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
    start = int(group.attrs.get("start_time_ns", 0))
    n = int(_dataset(group, profile.features["action"][0].stream or "actions", where).shape[0])
    t_ns = start + np.rint(np.arange(n) * (NS_PER_S / rate)).astype(np.int64)

    def stream(key: str) -> Stream:
        values = _dataset(group, key, where)
        if values.shape[0] != n:
            raise IngestError(
                f"{where}: dataset {key!r} has {values.shape[0]} rows, the actions {n}",
                hint="Every dataset of a demo needs one row per sample.",
            )
        return Stream(key, t_ns, values)

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
