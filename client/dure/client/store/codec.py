"""Episodes to Arrow and back: frame rows, episode rows, and the dataset schema.

Frame rows (``data/chunk-CCC/file-FFF.parquet``), one per frame, columns in order:

=====================  ============================  =====================================
column                 Arrow type                    meaning
=====================  ============================  =====================================
index                  int64                         global frame index in the dataset
episode_index          int64                         dataset-wide episode index
frame_index            int64                         ``i`` within the episode
timestamp              float64                       ``i / fps`` seconds (exact, as stored)
task_index             int64                         row of ``meta/tasks.parquet``
observation.*          fixed_size_list<float32, d>   one column per observation feature
action                 fixed_size_list<float32, a>   the command
next.success           bool
next.reward            float32
next.done              bool
dure.intervention      bool                          a human took over
dure.phase             int16, nullable               null when the episode has no phases
=====================  ============================  =====================================

Episode rows (``meta/episodes/...parquet``): LeRobot's ``episode_index``, ``tasks``,
``length``, ``data/chunk_index``, ``data/file_index``, ``dataset_from_index``,
``dataset_to_index``, ``meta/episodes/chunk_index``, ``meta/episodes/file_index``
and ``stats/<feature>/<min|max|mean|std|count|q01..q99>``; then Dure's extension
columns ``dure/episode_id``, ``dure/commitment`` (hex), ``dure/fps``,
``dure/context``, ``dure/action_space``, ``dure/outcome``, ``dure/provenance``
(JSON of the frozen models), ``dure/phase_names`` and the mergeable statistics
``dure/stats/<feature>/m2`` (float64) and ``dure/stats/<feature>/sketch``
(float32, the quantile sketch flattened row-major from ``(SKETCH_POINTS, d)``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from dure.client.episodes.schema import (
    ActionSpace,
    Episode,
    EpisodeContext,
    EpisodeOutcome,
    FeatureSpec,
    Frames,
    Provenance,
)
from dure.client.episodes.stats import QUANTILES, SKETCH_POINTS, FeatureStats
from dure.client.errors import StoreError
from dure.policies.encoding import Digest

__all__ = [
    "DatasetSchema",
    "EpisodeLocation",
    "decode_episode",
    "decode_stats",
    "encode_episode_row",
    "encode_frames",
    "episode_row_schema",
    "rows_to_table",
]

_QUANTILE_KEYS = tuple(f"q{round(q * 100):02d}" for q in QUANTILES)


@dataclass(frozen=True)
class DatasetSchema:
    """What every episode of one dataset shares: fps, features, action space."""

    fps: int
    features: Mapping[str, FeatureSpec]
    action_space: ActionSpace
    robot_type: str

    @classmethod
    def from_episode(cls, episode: Episode) -> DatasetSchema:
        """The schema a dataset gets from its first episode."""
        return cls(
            fps=episode.fps,
            features=dict(sorted(episode.context.sensors.features.items())),
            action_space=episode.action_space,
            robot_type=episode.context.embodiment,
        )

    @property
    def observation_keys(self) -> list[str]:
        """Observation feature names, sorted."""
        return [key for key in self.features if key != "action"]

    def check(self, episode: Episode) -> None:
        """Raise :class:`StoreError` if ``episode`` does not fit this dataset."""
        problems = []
        if episode.fps != self.fps:
            problems.append(f"fps {episode.fps} (store: {self.fps})")
        if dict(sorted(episode.context.sensors.features.items())) != dict(self.features):
            problems.append(
                f"features {_describe(episode.context.sensors.features)} "
                f"(store: {_describe(self.features)})"
            )
        if episode.action_space != self.action_space:
            problems.append(f"action space {episode.action_space} (store: {self.action_space})")
        if problems:
            raise StoreError(
                f"{episode.label()} does not fit the store: " + "; ".join(problems),
                hint="Map it to the store's features, units and fps in the site profile, "
                "or keep this embodiment in its own factory home (--home).",
            )

    def arrow_schema(self) -> pa.Schema:
        """Arrow schema of the frame rows."""
        fields = [
            pa.field("index", pa.int64(), nullable=False),
            pa.field("episode_index", pa.int64(), nullable=False),
            pa.field("frame_index", pa.int64(), nullable=False),
            pa.field("timestamp", pa.float64(), nullable=False),
            pa.field("task_index", pa.int64(), nullable=False),
        ]
        for key in [*self.observation_keys, "action"]:
            dim = len(self.features[key].names)
            fields.append(pa.field(key, pa.list_(pa.float32(), dim), nullable=False))
        fields += [
            pa.field("next.success", pa.bool_(), nullable=False),
            pa.field("next.reward", pa.float32(), nullable=False),
            pa.field("next.done", pa.bool_(), nullable=False),
            pa.field("dure.intervention", pa.bool_(), nullable=False),
            pa.field("dure.phase", pa.int16(), nullable=True),
        ]
        return pa.schema(fields)

    def info_features(self) -> dict[str, Any]:
        """The ``features`` object of ``meta/info.json``."""
        scalar = {"shape": [1], "names": None}
        out: dict[str, Any] = {
            name: {"dtype": dtype, **scalar}
            for name, dtype in (
                ("index", "int64"),
                ("episode_index", "int64"),
                ("frame_index", "int64"),
                ("timestamp", "float64"),
                ("task_index", "int64"),
            )
        }
        for key in [*self.observation_keys, "action"]:
            spec = self.features[key]
            out[key] = {
                "dtype": "float32",
                "shape": [len(spec.names)],
                "names": list(spec.names),
                "dure.units": list(spec.units),
            }
        for name, dtype in (
            ("next.success", "bool"),
            ("next.reward", "float32"),
            ("next.done", "bool"),
            ("dure.intervention", "bool"),
            ("dure.phase", "int16"),
        ):
            out[name] = {"dtype": dtype, **scalar}
        return out

    def info_extension(self) -> dict[str, Any]:
        """Dure's block of ``meta/info.json`` (what LeRobot's keys cannot say)."""
        return {"schema_version": 1, "action_space": self.action_space.model_dump(mode="json")}

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> DatasetSchema:
        """Rebuild the schema from a ``meta/info.json`` written by :meth:`info_features`."""
        try:
            features = {
                key: FeatureSpec(names=tuple(ft["names"]), units=tuple(ft["dure.units"]))
                for key, ft in info["features"].items()
                if key == "action" or key.startswith("observation.")
            }
            return cls(
                fps=int(info["fps"]),
                features=dict(sorted(features.items())),
                action_space=ActionSpace.model_validate(info["dure"]["action_space"]),
                robot_type=str(info["robot_type"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(
                f"meta/info.json is not a Dure dataset description: {exc!r}",
                hint="Do not edit meta/info.json by hand; restore it from a backup.",
            ) from exc


def _describe(features: Mapping[str, FeatureSpec]) -> str:
    return ", ".join(f"{key}[{len(spec.names)}]" for key, spec in sorted(features.items()))


@dataclass(frozen=True)
class EpisodeLocation:
    """Where one episode's rows are: dataset-wide indices and file indices."""

    episode_index: int
    task_index: int
    from_index: int
    data_chunk: int
    data_file: int
    meta_chunk: int
    meta_file: int


def _vector(values: npt.NDArray[np.float32]) -> pa.FixedSizeListArray:
    flat = pa.array(np.ascontiguousarray(values, dtype=np.float32).reshape(-1), pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])


def encode_frames(episode: Episode, where: EpisodeLocation, schema: DatasetSchema) -> pa.Table:
    """Return the frame rows of ``episode`` as a table with ``schema.arrow_schema()``."""
    frames, n = episode.frames, episode.n_frames
    ints = np.arange(n, dtype=np.int64)
    columns: list[pa.Array] = [
        pa.array(ints + where.from_index),
        pa.array(np.full(n, where.episode_index, dtype=np.int64)),
        pa.array(ints),
        pa.array(frames.timestamp, pa.float64()),
        pa.array(np.full(n, where.task_index, dtype=np.int64)),
    ]
    columns += [_vector(frames.observation[key]) for key in schema.observation_keys]
    columns += [
        _vector(frames.action),
        pa.array(frames.next_success, pa.bool_()),
        pa.array(frames.next_reward, pa.float32()),
        pa.array(frames.next_done, pa.bool_()),
        pa.array(frames.intervention, pa.bool_()),
        pa.array(frames.phase, pa.int16()) if frames.phase is not None else pa.nulls(n, pa.int16()),
    ]
    return pa.Table.from_arrays(columns, schema=schema.arrow_schema())


def encode_episode_row(
    episode: Episode,
    where: EpisodeLocation,
    stats: Mapping[str, FeatureStats],
    commitment: Digest,
) -> dict[str, Any]:
    """Return the ``meta/episodes`` row of ``episode`` as a column -> value mapping.

    List columns hold numpy arrays (see :func:`rows_to_table`); ``commitment``
    is ``episode.commitment()``, computed once by the caller.
    """
    row: dict[str, Any] = {
        "episode_index": where.episode_index,
        "tasks": [episode.context.task],
        "length": episode.n_frames,
        "data/chunk_index": where.data_chunk,
        "data/file_index": where.data_file,
        "dataset_from_index": where.from_index,
        "dataset_to_index": where.from_index + episode.n_frames,
        "meta/episodes/chunk_index": where.meta_chunk,
        "meta/episodes/file_index": where.meta_file,
    }
    for key, item in stats.items():
        row |= {
            f"stats/{key}/min": item.minimum,
            f"stats/{key}/max": item.maximum,
            f"stats/{key}/mean": item.mean,
            f"stats/{key}/std": item.std,
            f"stats/{key}/count": np.array([item.count], dtype=np.int64),
        }
        for q, name in zip(QUANTILES, _QUANTILE_KEYS, strict=True):
            row[f"stats/{key}/{name}"] = item.quantile(q)
    row |= {
        "dure/episode_id": f"{episode.context.site}-{commitment.hex()[:16]}",
        "dure/commitment": commitment.hex(),
        "dure/fps": episode.fps,
        "dure/context": episode.context.model_dump_json(),
        "dure/action_space": episode.action_space.model_dump_json(),
        "dure/outcome": episode.outcome.model_dump_json(),
        "dure/provenance": episode.provenance.model_dump_json(),
        "dure/phase_names": list(episode.phase_names),
    }
    for key, item in stats.items():
        row[f"dure/stats/{key}/m2"] = item.m2
        row[f"dure/stats/{key}/sketch"] = item.sketch.astype(np.float32).reshape(-1)
    return row


def rows_to_table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Build a table from rows whose numeric list values are numpy arrays (column by column)."""
    columns = []
    for field in schema:
        values = [row[field.name] for row in rows]
        kind = field.type
        if pa.types.is_list(kind) and not pa.types.is_string(kind.value_type):
            lengths = np.array([len(v) for v in values], dtype=np.int32)
            offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
            flat = np.concatenate(values).astype(kind.value_type.to_pandas_dtype(), copy=False)
            columns.append(pa.ListArray.from_arrays(offsets, pa.array(flat, kind.value_type)))
        else:
            columns.append(pa.array(values, kind))
    return pa.Table.from_arrays(columns, schema=schema)


def episode_row_schema(schema: DatasetSchema) -> pa.Schema:
    """Arrow schema of the ``meta/episodes`` rows of a dataset with ``schema``."""
    i64, f64, text = pa.int64(), pa.float64(), pa.string()
    fields = [
        pa.field("episode_index", i64),
        pa.field("tasks", pa.list_(text)),
        pa.field("length", i64),
        pa.field("data/chunk_index", i64),
        pa.field("data/file_index", i64),
        pa.field("dataset_from_index", i64),
        pa.field("dataset_to_index", i64),
        pa.field("meta/episodes/chunk_index", i64),
        pa.field("meta/episodes/file_index", i64),
    ]
    keys = sorted(schema.features)
    for key in keys:
        for stat in ("min", "max", "mean", "std", "count", *_QUANTILE_KEYS):
            kind = pa.list_(i64) if stat == "count" else pa.list_(f64)
            fields.append(pa.field(f"stats/{key}/{stat}", kind))
    fields += [
        pa.field(f"dure/{name}", i64 if name == "fps" else text)
        for name in (
            "episode_id",
            "commitment",
            "fps",
            "context",
            "action_space",
            "outcome",
            "provenance",
        )
    ]
    fields.append(pa.field("dure/phase_names", pa.list_(text)))
    for key in keys:
        fields.append(pa.field(f"dure/stats/{key}/m2", pa.list_(f64)))
        fields.append(pa.field(f"dure/stats/{key}/sketch", pa.list_(pa.float32())))
    return pa.schema(fields)


def decode_stats(row: Mapping[str, Any], keys: list[str]) -> dict[str, FeatureStats]:
    """Rebuild the mergeable statistics of one episode row."""
    out = {}
    for key in keys:
        mean = np.asarray(row[f"stats/{key}/mean"], dtype=np.float64)
        sketch = np.asarray(row[f"dure/stats/{key}/sketch"], dtype=np.float64)
        out[key] = FeatureStats(
            count=int(row[f"stats/{key}/count"][0]),
            mean=mean,
            m2=np.asarray(row[f"dure/stats/{key}/m2"], dtype=np.float64),
            minimum=np.asarray(row[f"stats/{key}/min"], dtype=np.float64),
            maximum=np.asarray(row[f"stats/{key}/max"], dtype=np.float64),
            sketch=sketch.reshape(SKETCH_POINTS, mean.shape[0]),
        )
    return out


def _matrix(column: pa.ChunkedArray | pa.Array, n: int) -> npt.NDArray[np.float32]:
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return np.asarray(array.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(
        n, -1
    )


def _flat(table: pa.Table, name: str, dtype: type[np.generic]) -> npt.NDArray[Any]:
    return np.asarray(table.column(name).to_numpy(), dtype=dtype)


def decode_episode(row: Mapping[str, Any], frames: pa.Table, schema: DatasetSchema) -> Episode:
    """Rebuild an :class:`Episode` from its episode row and its frame rows (in order)."""
    n = frames.num_rows
    phase_column = frames.column("dure.phase")
    phase = None
    if phase_column.null_count < n:
        phase = np.asarray(phase_column.to_numpy(zero_copy_only=False), dtype=np.int16)
    decoded = Frames(
        timestamp=_flat(frames, "timestamp", np.float64),
        observation={key: _matrix(frames.column(key), n) for key in schema.observation_keys},
        action=_matrix(frames.column("action"), n),
        intervention=_flat(frames, "dure.intervention", np.bool_),
        next_success=_flat(frames, "next.success", np.bool_),
        next_reward=_flat(frames, "next.reward", np.float32),
        next_done=_flat(frames, "next.done", np.bool_),
        phase=phase,
    )
    return Episode(
        fps=int(row["dure/fps"]),
        context=EpisodeContext.model_validate_json(row["dure/context"]),
        action_space=ActionSpace.model_validate_json(row["dure/action_space"]),
        outcome=EpisodeOutcome.model_validate_json(row["dure/outcome"]),
        provenance=Provenance.model_validate_json(row["dure/provenance"]),
        frames=decoded,
        phase_names=tuple(row["dure/phase_names"]),
    )
