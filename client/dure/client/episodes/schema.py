"""The canonical episode: context, judgment, action, outcome and provenance.

One :class:`Episode` is one attempt at one task by one robot, on one fixed time
grid of ``fps`` frames per second (DESIGN.md, "The episode").  Metadata are frozen
pydantic models; the per-frame arrays live in :class:`Frames`, a frozen dataclass
of numpy arrays.  :meth:`Episode.validate` checks every rule listed below and
raises :class:`~dure.client.errors.EpisodeError` naming the field and the fix;
:meth:`Episode.commitment` is the SHA-256 content commitment over the frames
(defined in :mod:`dure.client.episodes.commitment`).

Rules checked by :meth:`Episode.validate`
-----------------------------------------
* ``fps`` is an integer in ``1 .. 100_000``; the episode has at least one frame.
* ``timestamp`` is float64 ``(n,)``, finite, strictly increasing and on the grid
  ``i / fps`` to within 1 µs (build it with :func:`frame_timestamps`).
* ``observation`` holds ``"observation.state"``; every key matches
  ``observation.<name>``; every array is float32 ``(n, d)`` with ``d >= 1``.
* ``action`` is float32 ``(n, a)``; ``next_reward`` float32 ``(n,)``; all floats finite.
* ``intervention``, ``next_success`` and ``next_done`` are bool ``(n,)``;
  ``next_done`` is true on the last frame and only there.
* ``phase`` is ``None`` (and ``phase_names`` empty) or int16 ``(n,)`` with every value
  in ``0 .. len(phase_names) - 1``.
* ``context.sensors.features`` has exactly one :class:`FeatureSpec` per observation
  key plus ``"action"``, with as many names (and units) as the array has columns.
* The outcome agrees with ``next_success``: ``first_success_step`` is the first
  frame where ``next_success`` is true (``None`` when there is none); with
  ``any-step`` ``success`` equals "some frame succeeded", with ``at-end`` it equals
  the last frame's ``next_success`` (``human-label`` is a person's verdict and is
  not tied to the frames); ``failure_mode`` is ``None`` when ``success`` is true.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from dure.client.episodes.commitment import frames_commitment
from dure.client.episodes.validation import validate_episode
from dure.client.errors import EpisodeError
from dure.policies.canonical import canonical_bytes
from dure.policies.encoding import Digest, HexDigest, sha256, to_hex
from dure.policies.errors import EncodingError

__all__ = [
    "FEATURE_NAME",
    "SI_UNITS",
    "ActionSpace",
    "Episode",
    "EpisodeContext",
    "EpisodeOutcome",
    "FeatureSpec",
    "Frames",
    "Provenance",
    "Resampling",
    "SensorConfig",
    "Source",
    "SuccessDefinition",
    "frame_timestamps",
    "pseudonymise_operator",
]

FEATURE_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
"""Canonical feature and column names: dotted lowercase words (``observation.state``)."""

SI_UNITS: frozenset[str] = frozenset(
    {
        "1",
        "m",
        "rad",
        "s",
        "kg",
        "N",
        "N*m",
        "m/s",
        "rad/s",
        "m/s^2",
        "rad/s^2",
        "N/m",
        "Pa",
        "A",
        "V",
        "W",
        "K",
        "Hz",
    }
)
"""Units a feature dimension may declare ("1": dimensionless or normalised)."""

_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_PSEUDONYM = re.compile(r"^[0-9a-f]{8,64}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Source(StrEnum):
    """How the episode's actions were produced."""

    TELEOPERATION = "teleoperation"
    SCRIPTED = "scripted"
    POLICY = "policy"
    HUMAN_IN_THE_LOOP = "human-in-the-loop"


class SuccessDefinition(StrEnum):
    """What the episode-level ``success`` means."""

    ANY_STEP = "any-step"
    AT_END = "at-end"
    HUMAN_LABEL = "human-label"


class Resampling(StrEnum):
    """How source streams were put onto the frame grid."""

    ZOH = "zoh"
    LINEAR = "linear"


class FeatureSpec(BaseModel):
    """Names and SI units of the columns of one vector feature, in column order."""

    model_config = _FROZEN

    names: tuple[str, ...] = Field(min_length=1)
    units: tuple[str, ...] = Field(min_length=1)

    @field_validator("names")
    @classmethod
    def _unique_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        if any(not name.strip() for name in names):
            raise ValueError("column names must be non-empty")
        if len(set(names)) != len(names):
            raise ValueError(f"column names must be unique, got {list(names)}")
        return names

    @field_validator("units")
    @classmethod
    def _si_units(cls, units: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        unknown = sorted({unit for unit in units if unit not in SI_UNITS})
        if unknown:
            raise ValueError(f"units {unknown} are not SI units; use one of {sorted(SI_UNITS)}")
        names = info.data.get("names")
        if names is not None and len(names) != len(units):
            raise ValueError(f"{len(names)} names but {len(units)} units")
        return units


class ActionSpace(BaseModel):
    """The space the action column lives in."""

    model_config = _FROZEN

    kind: Literal["joint", "end-effector"]
    mode: Literal["absolute", "delta"]
    frame: str = Field(min_length=1)
    gripper: Literal["none", "open-positive", "closed-positive", "width-m"]


class SensorConfig(BaseModel):
    """Sensor configuration: feature names and units, calibration, mapping version."""

    model_config = _FROZEN

    features: dict[str, FeatureSpec]
    calibration: dict[str, str] = Field(default_factory=dict)
    mapping_version: str = Field(min_length=1)

    @field_validator("features")
    @classmethod
    def _feature_names(cls, features: dict[str, FeatureSpec]) -> dict[str, FeatureSpec]:
        bad = sorted(name for name in features if not FEATURE_NAME.match(name))
        if bad:
            raise ValueError(f"feature names {bad} are not dotted lowercase (observation.state)")
        return features

    def digest(self) -> HexDigest:
        """Return the SHA-256 (hex) of the RFC 8785 canonical JSON of this configuration."""
        try:
            return to_hex(sha256(canonical_bytes(self.model_dump(mode="json"))))
        except EncodingError as exc:
            raise EpisodeError(
                f"context.sensors cannot be canonicalised: {exc.message}",
                hint="Use NFC-normalised text in sensor names, units and calibration.",
            ) from exc


class EpisodeContext(BaseModel):
    """Who, where, what and how: the episode's context."""

    model_config = _FROZEN

    site: str
    cell: str = Field(min_length=1)
    robot: str = Field(min_length=1)
    embodiment: str = Field(min_length=1)
    sensors: SensorConfig
    task: str = Field(min_length=1)
    instruction: str
    operator: str
    source: Source
    skill_tier: str | None = None
    start_time: datetime
    tags: tuple[str, ...] = ()

    @field_validator("site")
    @classmethod
    def _site_slug(cls, site: str) -> str:
        if not _SLUG.match(site):
            raise ValueError(f"site {site!r} must be 1-64 of [A-Za-z0-9._-], starting alphanumeric")
        return site

    @field_validator("operator")
    @classmethod
    def _operator_pseudonym(cls, operator: str) -> str:
        if not _PSEUDONYM.match(operator):
            raise ValueError(
                f"operator {operator[:20]!r} is not a pseudonym (8-64 lowercase hex); "
                "use pseudonymise_operator(name, site_key)"
            )
        return operator

    @field_validator("start_time")
    @classmethod
    def _aware_utc(cls, start_time: datetime) -> datetime:
        offset = start_time.utcoffset()
        if offset is None:
            raise ValueError("start_time must be timezone-aware (UTC)")
        return start_time.astimezone(UTC)

    @field_validator("tags")
    @classmethod
    def _clean_tags(cls, tags: tuple[str, ...]) -> tuple[str, ...]:
        if any(not tag or tag != tag.strip() for tag in tags):
            raise ValueError(f"tags must be non-empty without surrounding spaces, got {tags}")
        if len(set(tags)) != len(tags):
            raise ValueError(f"tags must be unique, got {tags}")
        return tags


class EpisodeOutcome(BaseModel):
    """Episode-level outcome and what ``success`` means."""

    model_config = _FROZEN

    success: bool
    success_definition: SuccessDefinition
    first_success_step: int | None = Field(default=None, ge=0)
    failure_mode: str | None = None


class Provenance(BaseModel):
    """Where the episode came from and how it was converted."""

    model_config = _FROZEN

    source_uri: str = Field(min_length=1)
    source_sha256: HexDigest
    converter_version: str = Field(min_length=1)
    resampling: Resampling
    source_rates_hz: dict[str, float] = Field(default_factory=dict)

    @field_validator("source_sha256")
    @classmethod
    def _hex_digest(cls, value: str) -> HexDigest:
        if not _HEX64.match(value):
            raise ValueError("source_sha256 must be 64 lowercase hex characters")
        return HexDigest(value)

    @field_validator("source_rates_hz")
    @classmethod
    def _positive_rates(cls, rates: dict[str, float]) -> dict[str, float]:
        bad = {name: rate for name, rate in rates.items() if not (0 < rate < float("inf"))}
        if bad:
            raise ValueError(f"source rates must be positive and finite, got {bad}")
        return rates


@dataclass(frozen=True)
class Frames:
    """Per-frame arrays of one episode, ``n`` frames on the grid ``i / fps``.

    Attributes
    ----------
    timestamp
        float64 ``(n,)`` seconds from the episode start, ``i / fps``.
    observation
        float32 ``(n, d)`` arrays keyed by ``observation.<name>``; at least
        ``observation.state``.
    action
        float32 ``(n, a)``: the command sent at frame ``i``.
    intervention
        bool ``(n,)``: a human took over at frame ``i``.
    next_success, next_reward, next_done
        bool, float32, bool ``(n,)``: outcome after the action of frame ``i``.
    phase
        int16 ``(n,)`` indices into :attr:`Episode.phase_names`, or ``None``.
    """

    timestamp: npt.NDArray[np.float64]
    observation: dict[str, npt.NDArray[np.float32]]
    action: npt.NDArray[np.float32]
    intervention: npt.NDArray[np.bool_]
    next_success: npt.NDArray[np.bool_]
    next_reward: npt.NDArray[np.float32]
    next_done: npt.NDArray[np.bool_]
    phase: npt.NDArray[np.int16] | None = None

    @property
    def n_frames(self) -> int:
        """Number of frames (length of ``timestamp``)."""
        return int(self.timestamp.shape[0])

    def columns(self) -> dict[str, npt.NDArray[np.generic]]:
        """Return every per-frame array keyed by its canonical column name.

        Names: ``timestamp``, each ``observation.*`` key, ``action``,
        ``dure.intervention``, ``dure.phase`` (only when ``phase`` is set),
        ``next.success``, ``next.reward``, ``next.done``.
        """
        cols: dict[str, npt.NDArray[np.generic]] = {"timestamp": self.timestamp}
        cols.update(self.observation)
        cols["action"] = self.action
        cols["dure.intervention"] = self.intervention
        if self.phase is not None:
            cols["dure.phase"] = self.phase
        cols["next.success"] = self.next_success
        cols["next.reward"] = self.next_reward
        cols["next.done"] = self.next_done
        return cols


@dataclass(frozen=True)
class Episode:
    """One attempt at one task by one robot, on one fixed time grid.

    Construct it, then call :meth:`validate` before storing or committing to it;
    the store refuses episodes that do not validate.
    """

    fps: int
    context: EpisodeContext
    action_space: ActionSpace
    outcome: EpisodeOutcome
    provenance: Provenance
    frames: Frames
    phase_names: tuple[str, ...] = ()

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return self.frames.n_frames

    @property
    def episode_id(self) -> str:
        """``"{site}-{first 16 hex digits of the commitment}"``."""
        return f"{self.context.site}-{self.commitment().hex()[:16]}"

    def label(self) -> str:
        """A short description for error messages (site, task, start time)."""
        ctx = self.context
        return f"episode(site={ctx.site}, task={ctx.task}, start={ctx.start_time.isoformat()})"

    def validate(self) -> None:
        """Check every rule of the module docstring.

        Raises
        ------
        EpisodeError
            Naming the episode, the field, the offending value and the fix.
        """
        validate_episode(self)

    def commitment(self) -> Digest:
        """Return the SHA-256 content commitment over the frames.

        See :func:`dure.client.episodes.commitment.frames_commitment` for the
        exact byte encoding.
        """
        return frames_commitment(self.frames)


def frame_timestamps(n_frames: int, fps: int) -> npt.NDArray[np.float64]:
    """Return the canonical grid ``i / fps`` for ``i = 0 .. n_frames - 1`` (float64)."""
    return np.arange(n_frames, dtype=np.float64) / float(fps)


def pseudonymise_operator(name: str, site_key: bytes) -> str:
    """Return the operator pseudonym: hex of HMAC-SHA256(site_key, name), 16 characters.

    The key stays at the site, so nobody else can link a pseudonym to a person.
    """
    return hmac.new(site_key, name.encode("utf-8"), hashlib.sha256).hexdigest()[:16]
