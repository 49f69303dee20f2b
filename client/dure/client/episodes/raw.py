"""The decoded episode importers hand over, and the checks on its times.

An importer decodes a source into :class:`Stream` objects and cuts them into
:class:`RawEpisode` objects (source units, element order and rates).  Before
:mod:`dure.client.episodes.standardise` allocates anything for an episode,
:func:`check_span` checks every stream's times (integer nanoseconds, never going
backwards: samples stamped at the same time are allowed) and bounds the episode: at
most ``validation.max_episode_s`` seconds and :data:`MAX_EPISODE_FRAMES` frames, its
ends within :data:`MAX_ABS_TIME_NS` of the epoch.  So one wrong timestamp cannot make
the frame grid huge.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dure.client.episodes.profile import SiteProfile
from dure.client.episodes.resample import NS_PER_S, FloatArray, IntArray
from dure.client.errors import IngestError

__all__ = [
    "MAX_ABS_TIME_NS",
    "MAX_EPISODE_FRAMES",
    "RawEpisode",
    "Stream",
    "check_span",
    "fail",
]


@dataclass(frozen=True)
class Stream:
    """One decoded source stream: times (ns), values (source units) and element names."""

    name: str
    t_ns: IntArray
    values: FloatArray
    element_names: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RawEpisode:
    """One segmented episode as decoded by an importer, before standardisation.

    ``features`` holds one :class:`Stream` per profile feature source, in profile
    order; ``success``, ``reward`` and ``intervention`` are scalar streams or ``None``.
    """

    source_uri: str
    source_sha256: str
    index: int
    start_ns: int
    end_ns: int
    features: dict[str, list[Stream]]
    task: str
    instruction: str
    success: Stream | None = None
    reward: Stream | None = None
    intervention: Stream | None = None
    label: bool | None = None
    extra_rates_hz: dict[str, float] = field(default_factory=dict)

    def where(self) -> str:
        """``"<file>, episode <i>"`` for error messages."""
        return f"{self.source_uri}, episode {self.index}"


def fail(raw: RawEpisode, field_name: str, problem: str, hint: str) -> IngestError:
    """The :class:`IngestError` naming ``raw``'s file and episode, the field and the fix."""
    return IngestError(f"{raw.where()}: {field_name}: {problem}", hint=hint)


MAX_EPISODE_FRAMES = 20_000_000
"""Most frames one episode may have, whatever the profile says (bounds memory)."""

MAX_ABS_TIME_NS = 2**62
"""Times further than this from the epoch (about 146 years) are refused (no int64 overflow)."""


def _all_streams(raw: RawEpisode) -> list[Stream]:
    streams = [stream for group in raw.features.values() for stream in group]
    return streams + [s for s in (raw.success, raw.reward, raw.intervention) if s is not None]


def _check_times(raw: RawEpisode, stream: Stream) -> None:
    t = np.asarray(stream.t_ns)
    if t.ndim != 1 or t.dtype.kind not in "iu":
        raise fail(
            raw,
            stream.name,
            f"times must be one integer nanosecond stamp per sample, got {t.dtype} {t.shape}",
            "This is an importer bug; report it with the source file.",
        )
    backwards = np.flatnonzero(np.diff(t) < 0)
    if backwards.size:
        bad = int(backwards[0]) + 1
        raise fail(
            raw,
            stream.name,
            f"time goes backwards at sample {bad} ({int(t[bad - 1])} -> {int(t[bad])} ns)",
            "Use the receive clock (time.clock: receive) or fix the logger's clock.",
        )


def check_span(raw: RawEpisode, profile: SiteProfile) -> None:
    """Refuse an episode longer than the profile allows, before any grid is allocated."""
    for stream in _all_streams(raw):
        _check_times(raw, stream)
    for stamp in (raw.start_ns, raw.end_ns):
        if not -MAX_ABS_TIME_NS <= int(stamp) <= MAX_ABS_TIME_NS:
            raise fail(
                raw,
                "time",
                f"time {int(stamp)} ns is out of range (more than 146 years from 1970)",
                "Check time.unit in the site profile (s, ms, us, ns) and the source's clock.",
            )
    span_s = (int(raw.end_ns) - int(raw.start_ns)) / NS_PER_S
    limit_s = profile.validation.max_episode_s
    if span_s < 0:
        raise fail(
            raw, "time", f"ends {-span_s:.6g} s before it starts", "Fix the source's timestamps."
        )
    frames = span_s * profile.fps
    if span_s > limit_s or frames > MAX_EPISODE_FRAMES:
        raise fail(
            raw,
            "time",
            f"spans {span_s:.6g} s ({frames:.6g} frames at {profile.fps} fps); the limit is "
            f"validation.max_episode_s = {limit_s:g} s and {MAX_EPISODE_FRAMES} frames",
            "Look for a wrong timestamp in the source; split long recordings into episodes "
            "(segmentation: time-gap or marker), or raise validation.max_episode_s in the "
            "site profile.",
        )
