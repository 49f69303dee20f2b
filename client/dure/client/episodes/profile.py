"""The site profile: how one site's logs map onto canonical episodes.

A site profile is a small YAML document (read by
:mod:`dure.client.importers.profile_io`; this module is pure pydantic).  It says
which source format the logs are in, which topics, columns or datasets feed which
canonical feature (``observation.state``, ``observation.force``, ``action``...),
in which source units and element order, the target ``fps`` and resampling method,
how to cut episodes, where the task and the outcome come from, and the context
every episode of the site carries.

Example (ROS 2 bag)::

    version: dure/site-profile/v1
    format: rosbag
    fps: 80
    resampling: zoh
    features:
      observation.joints:
        - stream: /joint_states          # topic
          fields: [position]             # message attribute paths, concatenated
          select: [j3, j1, j2]           # source element names, in canonical order
          unit: deg                      # converted to rad
      action:
        - {stream: /cmd, fields: [data], names: [dx, dy, dz, grip], unit: "1"}
    segmentation: {method: marker, stream: /episode/marker, start: start, end: end}
    task: {stream: /task}
    outcome: {success_definition: any-step, success: {stream: /eval/success}}
    context: {site: acme, cell: c1, robot: r1, embodiment: sawyer,
              operator: 3f2a9c0d11e4b7a8, source: scripted}
    action_space: {kind: end-effector, mode: delta, frame: world, gripper: closed-positive}

What ``stream`` and ``fields`` mean per format: ROS 2 bag / MCAP, topic and message
attribute paths (``wrench.force.x``, ``position``); CSV, (unused) and column names;
LeRobot, the column (``observation.state``) and element names or indices in
``select``; robomimic, the dataset path under the demo (``obs/eef_pos``, ``actions``).
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dure.client.episodes.schema import (
    FEATURE_NAME,
    ActionSpace,
    FeatureSpec,
    Resampling,
    Source,
    SuccessDefinition,
)

__all__ = [
    "PROFILE_VERSION",
    "UNIT_TABLE",
    "ContextDefaults",
    "CsvOptions",
    "FeatureSource",
    "OutcomeSpec",
    "Segmentation",
    "SignalSource",
    "SiteProfile",
    "SourceFormat",
    "TextSource",
    "TimeSpec",
    "ValidationSpec",
    "si_unit",
]

PROFILE_VERSION: Final = "dure/site-profile/v1"

_DEG = math.pi / 180.0
UNIT_TABLE: dict[str, tuple[str, float]] = {
    "1": ("1", 1.0),
    "%": ("1", 0.01),
    "m": ("m", 1.0),
    "cm": ("m", 1e-2),
    "mm": ("m", 1e-3),
    "um": ("m", 1e-6),
    "in": ("m", 0.0254),
    "rad": ("rad", 1.0),
    "mrad": ("rad", 1e-3),
    "deg": ("rad", _DEG),
    "m/s": ("m/s", 1.0),
    "mm/s": ("m/s", 1e-3),
    "rad/s": ("rad/s", 1.0),
    "deg/s": ("rad/s", _DEG),
    "rpm": ("rad/s", 2.0 * math.pi / 60.0),
    "N": ("N", 1.0),
    "kN": ("N", 1e3),
    "N*m": ("N*m", 1.0),
    "N*mm": ("N*m", 1e-3),
    "s": ("s", 1.0),
    "ms": ("s", 1e-3),
    "kg": ("kg", 1.0),
    "g": ("kg", 1e-3),
    "Pa": ("Pa", 1.0),
    "kPa": ("Pa", 1e3),
    "bar": ("Pa", 1e5),
    "A": ("A", 1.0),
    "V": ("V", 1.0),
    "W": ("W", 1.0),
    "K": ("K", 1.0),
}
"""Source unit -> (SI unit, factor): ``si_value = source_value * factor``."""

_FROZEN = ConfigDict(frozen=True, extra="forbid")


def si_unit(unit: str) -> tuple[str, float]:
    """Return ``(SI unit, factor)`` for a source unit; raise ``ValueError`` if unknown."""
    try:
        return UNIT_TABLE[unit]
    except KeyError:
        raise ValueError(f"unknown unit {unit!r}; use one of {sorted(UNIT_TABLE)}") from None


class SourceFormat(StrEnum):
    """The log formats Dure imports."""

    ROSBAG = "rosbag"
    MCAP = "mcap"
    LEROBOT_V21 = "lerobot-v21"
    LEROBOT_V3 = "lerobot-v3"
    ROBOMIMIC = "robomimic"
    CSV = "csv"


class FeatureSource(BaseModel):
    """One source stream contributing consecutive columns to a canonical feature."""

    model_config = _FROZEN

    stream: str | None = None
    fields: tuple[str, ...] = ()
    select: tuple[str | int, ...] = ()
    names: tuple[str, ...] = ()
    unit: str | tuple[str, ...] = "1"

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        width = len(self.canonical_names())
        if width == 0:
            raise ValueError("give 'names' (canonical column names) or 'select' or 'fields'")
        units = (self.unit,) if isinstance(self.unit, str) else self.unit
        for unit in units:
            si_unit(unit)
        if not isinstance(self.unit, str) and len(self.unit) != width:
            raise ValueError(f"'unit' lists {len(self.unit)} units for {width} columns")
        if self.names and self.select and len(self.names) != len(self.select):
            raise ValueError(f"'names' has {len(self.names)} entries, 'select' {len(self.select)}")
        return self

    def canonical_names(self) -> tuple[str, ...]:
        """Canonical column names: ``names``, else ``select``, else ``fields``."""
        if self.names:
            return self.names
        if self.select:
            return tuple(str(item) for item in self.select)
        return tuple(field.rsplit(".", 1)[-1] if "." in field else field for field in self.fields)

    def conversion(self) -> tuple[tuple[str, ...], tuple[float, ...]]:
        """Return the SI unit and the factor of every column."""
        width = len(self.canonical_names())
        units = (self.unit,) * width if isinstance(self.unit, str) else self.unit
        pairs = [si_unit(unit) for unit in units]
        return tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)


class TimeSpec(BaseModel):
    """Where sample times come from.

    ROS 2 / MCAP: ``clock`` (``header`` stamp when the message has one, else the bag's
    receive time).  CSV / LeRobot: the ``column`` and its ``unit``.  robomimic (no
    times): ``rate_hz``, the rate its samples were recorded at.
    """

    model_config = _FROZEN

    clock: Literal["header", "receive"] = "header"
    column: str = "timestamp"
    unit: Literal["s", "ms", "us", "ns"] = "s"
    rate_hz: float | None = Field(default=None, gt=0, allow_inf_nan=False)


class Segmentation(BaseModel):
    """How a source is cut into episodes.

    ``per-file``: one episode per file; ``per-source-episode``: the source's own
    episodes (LeRobot ``episode_index``, robomimic ``demo_N``); ``marker``: a
    stream or column whose text starts with ``start`` / ``end``; ``time-gap``: a new
    episode after a silence longer than ``gap_s`` seconds.
    """

    model_config = _FROZEN

    method: Literal["per-file", "per-source-episode", "marker", "time-gap"]
    stream: str | None = None
    field: str = "data"
    start: str = "start"
    end: str = "end"
    gap_s: float = Field(default=0.5, gt=0, allow_inf_nan=False)


class CsvOptions(BaseModel):
    """How CSV / PLC exports are written: separator, decimal mark, file pattern."""

    model_config = _FROZEN

    delimiter: str = Field(default=",", min_length=1, max_length=1)
    decimal: Literal[".", ","] = "."
    pattern: str = Field(default="*.csv", min_length=1)
    encoding: str = "utf-8"


class TextSource(BaseModel):
    """Where a text (task, instruction) comes from: exactly one of the three."""

    model_config = _FROZEN

    fixed: str | None = None
    stream: str | None = None
    field: str = "data"
    metadata: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [k for k in ("fixed", "stream", "metadata") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of fixed, stream, metadata (got {given or 'none'})")
        return self


class SignalSource(BaseModel):
    """A per-frame scalar signal (success flag, reward): a stream and a field or column."""

    model_config = _FROZEN

    stream: str | None = None
    field: str = "data"


class OutcomeSpec(BaseModel):
    """Where the per-frame outcome comes from and what episode success means."""

    model_config = _FROZEN

    success_definition: SuccessDefinition = SuccessDefinition.ANY_STEP
    success: SignalSource | None = None
    reward: SignalSource | None = None
    label: bool | None = None

    @model_validator(mode="after")
    def _definable(self) -> Self:
        if self.success_definition is SuccessDefinition.HUMAN_LABEL and self.label is None:
            raise ValueError("success_definition human-label needs 'label: true|false'")
        return self


class ContextDefaults(BaseModel):
    """Context every episode of this source carries."""

    model_config = _FROZEN

    site: str = Field(min_length=1)
    cell: str = Field(min_length=1)
    robot: str = Field(min_length=1)
    embodiment: str = Field(min_length=1)
    operator: str = Field(pattern=r"^[0-9a-f]{8,64}$")
    source: Source
    skill_tier: str | None = None
    tags: tuple[str, ...] = ()
    calibration: dict[str, str] = Field(default_factory=dict)
    mapping_version: str = Field(default="1", min_length=1)


class ValidationSpec(BaseModel):
    """Checks on the standardised streams, in SI units."""

    model_config = _FROZEN

    max_gap_s: float = Field(default=0.5, gt=0, allow_inf_nan=False)
    min_frames: int = Field(default=2, ge=1)
    max_episode_s: float = Field(default=3600.0, gt=0, le=7 * 86_400, allow_inf_nan=False)
    """Longest episode accepted, in seconds (checked before the frame grid is allocated).

    A longer span is refused: it is almost always a wrong timestamp or a missing cut.
    Split long recordings into episodes (``segmentation``), or raise this limit.
    """
    ranges: dict[str, tuple[float, float]] = Field(default_factory=dict)

    @field_validator("ranges")
    @classmethod
    def _ordered(cls, ranges: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        bad = [name for name, (lo, hi) in ranges.items() if not lo <= hi]
        if bad:
            raise ValueError(f"ranges {bad} need low <= high")
        return ranges


_NEEDS_FIELDS = (SourceFormat.ROSBAG, SourceFormat.MCAP, SourceFormat.CSV)


class SiteProfile(BaseModel):
    """A site's mapping from its native logs to canonical episodes (see module docstring)."""

    model_config = _FROZEN

    version: Literal["dure/site-profile/v1"] = PROFILE_VERSION
    format: SourceFormat
    fps: int = Field(ge=1, le=10_000)
    resampling: Resampling = Resampling.ZOH
    time: TimeSpec = TimeSpec()
    features: dict[str, tuple[FeatureSource, ...]]
    segmentation: Segmentation
    task: TextSource
    instruction: TextSource | None = None
    outcome: OutcomeSpec = OutcomeSpec()
    intervention: SignalSource | None = None
    context: ContextDefaults
    action_space: ActionSpace
    validation: ValidationSpec = ValidationSpec()
    csv: CsvOptions = CsvOptions()

    @field_validator("features")
    @classmethod
    def _canonical_features(
        cls, features: dict[str, tuple[FeatureSource, ...]]
    ) -> dict[str, tuple[FeatureSource, ...]]:
        for required in ("observation.state", "action"):
            if required not in features:
                raise ValueError(f"'{required}' is required")
        for name, sources in features.items():
            if not FEATURE_NAME.match(name) or not (
                name == "action" or name.startswith("observation.")
            ):
                raise ValueError(f"feature {name!r} must be 'action' or 'observation.<name>'")
            if not sources:
                raise ValueError(f"feature {name!r} needs at least one source")
            columns = [c for source in sources for c in source.canonical_names()]
            if len(set(columns)) != len(columns):
                raise ValueError(f"feature {name!r} repeats a column name: {columns}")
        return features

    @model_validator(mode="after")
    def _format_needs(self) -> Self:
        needs_stream = self.format is not SourceFormat.CSV
        for name, sources in self.features.items():
            for i, source in enumerate(sources):
                if needs_stream and not source.stream:
                    raise ValueError(f"features.{name}[{i}].stream is required for {self.format}")
                if self.format in _NEEDS_FIELDS and not source.fields:
                    raise ValueError(f"features.{name}[{i}].fields is required")
        if self.format is SourceFormat.ROBOMIMIC and self.time.rate_hz is None:
            raise ValueError("time.rate_hz is required for robomimic (it stores no times)")
        self._check_segmentation()
        return self

    def _check_segmentation(self) -> None:
        seg, fmt = self.segmentation, self.format
        own = (SourceFormat.LEROBOT_V21, SourceFormat.LEROBOT_V3, SourceFormat.ROBOMIMIC)
        if fmt in own and seg.method not in ("per-source-episode", "per-file"):
            raise ValueError(f"segmentation.method must be per-source-episode for {fmt}")
        if fmt not in own and seg.method == "per-source-episode":
            raise ValueError(f"segmentation.method per-source-episode does not apply to {fmt}")
        if seg.method == "marker" and not seg.stream:
            raise ValueError("segmentation.stream (the marker topic or column) is required")

    def feature_specs(self) -> dict[str, FeatureSpec]:
        """Return the canonical names and SI units of every feature, in column order."""
        specs = {}
        for name, sources in self.features.items():
            names = [c for source in sources for c in source.canonical_names()]
            units = [u for source in sources for u in source.conversion()[0]]
            specs[name] = FeatureSpec(names=tuple(names), units=tuple(units))
        return specs
