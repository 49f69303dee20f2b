"""Standardisation: decoded source streams of one episode -> one canonical :class:`Episode`.

Pure numpy (no files).  Importers decode a source and cut it into
:class:`RawEpisode` objects (streams still in source units, source element order and
source rates); :func:`standardise` then, for each feature source of the
:class:`~dure.client.episodes.profile.SiteProfile`:

0. before anything is allocated, checks every stream's times (non-decreasing:
   samples stamped at the same time are allowed and the last of them wins) and bounds
   the episode: at most ``validation.max_episode_s`` seconds and
   :data:`MAX_EPISODE_FRAMES` frames, so one wrong timestamp cannot make the frame
   grid huge,
1. checks the stream (non-empty, 2-D, no NaN/inf, no gap longer
   than ``validation.max_gap_s``, covering the episode),
2. selects and reorders its elements (by name or index, ``select``),
3. converts units to SI (``value * factor`` per column, :data:`UNIT_TABLE`),
4. resamples onto the grid ``start + i / fps`` (zero-order hold or linear, as declared
   in the profile; the provenance records the method the resampler reports it ran;
   success and reward always hold),
5. checks ranges (``validation.ranges``) and float32 overflow,

and builds the episode with its context, outcome and provenance, then validates it.
Every failure is an :class:`~dure.client.errors.IngestError` naming the source file,
the episode, the field and the fix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from dure.client.episodes.profile import FeatureSource, SiteProfile
from dure.client.episodes.raw import (
    MAX_ABS_TIME_NS,
    MAX_EPISODE_FRAMES,
    RawEpisode,
    Stream,
    check_span,
    fail,
)
from dure.client.episodes.resample import (
    NS_PER_S,
    FloatArray,
    IntArray,
    frame_grid,
    n_frames_between,
    resample,
    zoh,
)
from dure.client.episodes.schema import (
    Episode,
    EpisodeContext,
    EpisodeOutcome,
    Frames,
    Provenance,
    Resampling,
    SensorConfig,
    SuccessDefinition,
    frame_timestamps,
)
from dure.client.errors import EpisodeError

__all__ = [
    "MAX_ABS_TIME_NS",
    "MAX_EPISODE_FRAMES",
    "ProfileStreams",
    "RawEpisode",
    "Stream",
    "profile_streams",
    "select_columns",
    "standardise",
]


def select_columns(stream: Stream, source: FeatureSource, raw: RawEpisode) -> FloatArray:
    """Pick and reorder the stream's elements as ``source.select`` says (all if empty)."""
    if not source.select:
        return stream.values
    indices = []
    for item in source.select:
        if isinstance(item, int):
            if not -stream.values.shape[1] <= item < stream.values.shape[1]:
                raise fail(
                    raw,
                    stream.name,
                    f"select index {item} but the stream has {stream.values.shape[1]} elements",
                    "Fix 'select' in the site profile.",
                )
            indices.append(item)
            continue
        names = stream.element_names or ()
        if item not in names:
            raise fail(
                raw,
                stream.name,
                f"select name {item!r} is not among the source's names {list(names)}",
                "Fix 'select' in the site profile to the names the source uses.",
            )
        indices.append(names.index(item))
    return stream.values[:, indices]


def _check_stream(raw: RawEpisode, stream: Stream, max_gap_ns: int) -> None:
    t, values = stream.t_ns, stream.values
    if t.ndim != 1 or values.ndim != 2 or values.shape[0] != t.shape[0]:
        raise fail(
            raw,
            stream.name,
            f"{t.shape[0]} times but values of shape {values.shape}",
            "Every sample needs one time and the same number of elements.",
        )
    if t.shape[0] == 0:
        raise fail(raw, stream.name, "has no samples in this episode", _SEGMENT_HINT)
    # Its times were checked by check_span before anything was allocated.
    if not np.all(np.isfinite(values)):
        bad = int(np.argwhere(~np.isfinite(values))[0][0])
        raise fail(
            raw,
            stream.name,
            f"NaN or infinite value at sample {bad} (t={int(t[bad])} ns)",
            "Drop or repair the corrupted samples in the source.",
        )
    _check_gaps(raw, stream, max_gap_ns)


_SEGMENT_HINT = "Check the topic/column names and the segmentation in the site profile."


def _check_gaps(raw: RawEpisode, stream: Stream, max_gap_ns: int) -> None:
    t = stream.t_ns
    edges = np.concatenate(([raw.start_ns], t, [raw.end_ns]))
    holes = np.diff(np.clip(edges, raw.start_ns, raw.end_ns))
    if holes.size and int(holes.max()) > max_gap_ns:
        at = int(np.argmax(holes))
        begin = (int(edges[at]) - raw.start_ns) / NS_PER_S
        raise fail(
            raw,
            stream.name,
            f"no sample for {holes[at] / NS_PER_S:.3f} s from t={begin:.3f} s "
            f"(validation.max_gap_s is {max_gap_ns / NS_PER_S} s)",
            "Check the source for dropped data, or raise validation.max_gap_s in the profile.",
        )


def _feature(
    raw: RawEpisode, profile: SiteProfile, name: str, grid: IntArray
) -> tuple[FloatArray, set[str]]:
    parts = []
    methods: set[str] = set()
    max_gap = int(profile.validation.max_gap_s * NS_PER_S)
    sources = profile.features[name]
    streams = raw.features.get(name, [])
    if len(streams) != len(sources):
        raise fail(raw, name, f"{len(streams)} streams for {len(sources)} sources", _SEGMENT_HINT)
    for source, stream in zip(sources, streams, strict=True):
        _check_stream(raw, stream, max_gap)
        values = select_columns(stream, source, raw)
        _, factors = source.conversion()
        if values.shape[1] != len(factors):
            raise fail(
                raw,
                stream.name,
                f"has {values.shape[1]} elements, the profile maps {len(factors)}",
                "Fix 'select', 'fields' or 'names' in the site profile to match the source.",
            )
        si = values * np.asarray(factors, dtype=np.float64)
        result = resample(profile.resampling.value, stream.t_ns, si, grid, profile.fps)
        parts.append(result.values)
        methods.add(result.method)
    return (np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]), methods


def _to_float32(raw: RawEpisode, name: str, values: FloatArray, profile: SiteProfile) -> np.ndarray:
    lo_hi = profile.validation.ranges.get(name)
    if lo_hi is not None:
        outside = (values < lo_hi[0]) | (values > lo_hi[1])
        if outside.any():
            row, col = (int(v) for v in np.argwhere(outside)[0])
            raise fail(
                raw,
                f"{name}[{col}]",
                f"value {values[row, col]:.6g} at frame {row} is outside {list(lo_hi)}",
                "Check the unit in the site profile (mm vs m, deg vs rad) or the range.",
            )
    with np.errstate(over="ignore"):
        single = values.astype(np.float32)
    if not np.all(np.isfinite(single)):
        raise fail(raw, name, "value too large for float32", "Check the unit in the profile.")
    return single


def _signal(raw: RawEpisode, stream: Stream | None, grid: IntArray, fps: int) -> FloatArray | None:
    if stream is None:
        return None
    max_gap = int(np.iinfo(np.int64).max // 2)
    _check_stream(raw, stream, max_gap)
    if stream.values.shape[1] != 1:
        raise fail(raw, stream.name, "must be one scalar per sample", "Point it at one field.")
    return zoh(stream.t_ns, stream.values, grid, fps)[:, 0]


def _outcome(profile: SiteProfile, raw: RawEpisode, success: np.ndarray) -> EpisodeOutcome:
    definition = profile.outcome.success_definition
    first = int(np.argmax(success)) if success.any() else None
    if definition is SuccessDefinition.HUMAN_LABEL:
        label = raw.label if raw.label is not None else profile.outcome.label
        ok = bool(label)
    elif definition is SuccessDefinition.AT_END:
        ok = bool(success[-1])
    else:
        ok = first is not None
    return EpisodeOutcome(
        success=ok,
        success_definition=definition,
        first_success_step=first,
        failure_mode=None if ok else "no-success",
    )


def _rates(raw: RawEpisode) -> dict[str, float]:
    rates = dict(raw.extra_rates_hz)
    for streams in raw.features.values():
        for stream in streams:
            span = int(stream.t_ns[-1] - stream.t_ns[0]) if stream.t_ns.size > 1 else 0
            if span > 0:
                rates[stream.name] = round((stream.t_ns.size - 1) * NS_PER_S / span, 3)
    return rates


def standardise(raw: RawEpisode, profile: SiteProfile, converter_version: str) -> Episode:
    """Turn one decoded episode into a validated canonical :class:`Episode`.

    Raises
    ------
    IngestError
        Naming the source file, the episode index, the field and the fix; among
        others when a stream's time goes backwards or the episode is longer than
        ``validation.max_episode_s`` (both checked before anything is allocated).
    """
    check_span(raw, profile)
    n = n_frames_between(raw.start_ns, raw.end_ns, profile.fps)
    if n < profile.validation.min_frames:
        raise fail(
            raw,
            "frames",
            f"only {n} frames at {profile.fps} fps (validation.min_frames is "
            f"{profile.validation.min_frames})",
            "Check the segmentation in the site profile; very short segments are usually noise.",
        )
    grid = frame_grid(raw.start_ns, n, profile.fps)
    arrays: dict[str, np.ndarray] = {}
    methods: set[str] = set()
    for name in profile.features:
        values, used = _feature(raw, profile, name, grid)
        arrays[name] = _to_float32(raw, name, values, profile)
        methods |= used
    frames = _frames(raw, grid, arrays, profile.fps)
    episode = _episode(raw, profile, frames, converter_version, _method(raw, methods))
    try:
        episode.validate()
    except EpisodeError as exc:
        raise fail(raw, "episode", exc.message, exc.hint) from exc
    return episode


def _method(raw: RawEpisode, methods: set[str]) -> Resampling:
    """The one resampling method that ran on the features (recorded in the provenance)."""
    if len(methods) != 1:
        raise fail(raw, "resampling", f"ran {sorted(methods)}, expected one method", _SEGMENT_HINT)
    return Resampling(methods.pop())


def _frames(raw: RawEpisode, grid: IntArray, arrays: dict[str, np.ndarray], fps: int) -> Frames:
    n = grid.shape[0]
    success = _signal(raw, raw.success, grid, fps)
    reward = _signal(raw, raw.reward, grid, fps)
    intervention = _signal(raw, raw.intervention, grid, fps)
    done = np.zeros(n, dtype=np.bool_)
    done[-1] = True
    return Frames(
        timestamp=frame_timestamps(n, fps),
        observation={k: v for k, v in arrays.items() if k != "action"},
        action=arrays["action"],
        intervention=np.zeros(n, np.bool_) if intervention is None else intervention > 0.5,
        next_success=np.zeros(n, np.bool_) if success is None else success > 0.5,
        next_reward=np.zeros(n, np.float32) if reward is None else reward.astype(np.float32),
        next_done=done,
    )


def _episode(
    raw: RawEpisode, profile: SiteProfile, frames: Frames, version: str, method: Resampling
) -> Episode:
    ctx = profile.context
    try:
        sensors = SensorConfig(
            features=profile.feature_specs(),
            calibration=ctx.calibration,
            mapping_version=ctx.mapping_version,
        )
        context = EpisodeContext(
            site=ctx.site,
            cell=ctx.cell,
            robot=ctx.robot,
            embodiment=ctx.embodiment,
            sensors=sensors,
            task=raw.task,
            instruction=raw.instruction,
            operator=ctx.operator,
            source=ctx.source,
            skill_tier=ctx.skill_tier,
            start_time=datetime.fromtimestamp(raw.start_ns / NS_PER_S, tz=UTC),
            tags=ctx.tags,
        )
        provenance = Provenance(
            source_uri=raw.source_uri,
            source_sha256=raw.source_sha256,
            converter_version=version,
            resampling=method,
            source_rates_hz=_rates(raw),
        )
        outcome = _outcome(profile, raw, frames.next_success)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise fail(raw, "context", "; ".join(str(exc).splitlines()[:3]), _CONTEXT_HINT) from exc
    return Episode(
        fps=profile.fps,
        context=context,
        action_space=profile.action_space,
        outcome=outcome,
        provenance=provenance,
        frames=frames,
    )


_CONTEXT_HINT = "Check the task source and the context section of the site profile."


@dataclass(frozen=True)
class ProfileStreams:
    """The streams a profile maps: every feature's sources, and the optional signals."""

    features: dict[str, list[Stream]]
    success: Stream | None
    reward: Stream | None
    intervention: Stream | None


def profile_streams(profile: SiteProfile, read: Callable[[str], Stream]) -> ProfileStreams:
    """Read, with ``read(stream name)``, every stream ``profile`` maps, in profile order."""
    features = {
        name: [read(source.stream or "") for source in sources]
        for name, sources in profile.features.items()
    }
    signals = [profile.outcome.success, profile.outcome.reward, profile.intervention]
    success, reward, intervention = (read(s.stream) if s and s.stream else None for s in signals)
    return ProfileStreams(features, success, reward, intervention)
