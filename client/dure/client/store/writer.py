"""Stage a batch of episodes as new LeRobot v3 files (the first half of an ingest).

:class:`BatchWriter` appends: it never touches an existing data or episodes file.
Frames go to new ``data/chunk-CCC/file-FFF.parquet`` files (one row group per
episode, a new file once about ``DATA_FILES_SIZE_IN_MB`` are written), episode
rows to one new ``meta/episodes`` file; ``info.json``, ``stats.json``,
``tasks.parquet`` and the statistics state are rendered anew.  Everything is
written under a :class:`~dure.client.store.transaction.Staging` directory; the
store commits it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq

from dure.client.episodes.query import EpisodeSummary
from dure.client.episodes.schema import Episode
from dure.client.episodes.stats import (
    FeatureStats,
    StatsAccumulator,
    episode_stats,
    merge_stats,
)
from dure.client.store.catalog import CatalogEntry
from dure.client.store.codec import (
    DatasetSchema,
    EpisodeLocation,
    encode_episode_row,
    encode_frames,
    episode_row_schema,
    rows_to_table,
)
from dure.client.store.layout import (
    DATA_FILES_SIZE_IN_MB,
    INFO_PATH,
    STATS_PATH,
    STATS_STATE_PATH,
    TASKS_PATH,
    FileIndex,
)
from dure.client.store.meta import (
    DatasetState,
    render_info,
    render_stats,
    render_stats_state,
    render_tasks,
)
from dure.client.store.transaction import Staging
from dure.policies.encoding import Digest, HexDigest, to_hex

__all__ = ["BatchWriter", "summarise"]

_META_FLUSH_ROWS = 64
# Dictionary-encode only the small integer columns: on float vectors it costs time
# and grows the files.
_DICTIONARY = ["episode_index", "task_index", "next.success", "next.done", "dure.intervention"]


def summarise(
    episode: Episode, episode_index: int, commitment: Digest, sensors_digest: HexDigest
) -> EpisodeSummary:
    """Return the catalog summary of a validated episode (its commitment given)."""
    ctx = episode.context
    return EpisodeSummary(
        episode_id=f"{ctx.site}-{commitment.hex()[:16]}",
        episode_index=episode_index,
        commitment=to_hex(commitment),
        site=ctx.site,
        cell=ctx.cell,
        robot=ctx.robot,
        embodiment=ctx.embodiment,
        task=ctx.task,
        source=ctx.source,
        operator=ctx.operator,
        skill_tier=ctx.skill_tier,
        start_time=ctx.start_time,
        tags=tuple(sorted(ctx.tags)),
        success=episode.outcome.success,
        success_definition=episode.outcome.success_definition,
        failure_mode=episode.outcome.failure_mode,
        n_frames=episode.n_frames,
        fps=episode.fps,
        sensors_digest=sensors_digest,
    )


@dataclass
class _OpenFile:
    index: FileIndex
    writer: pq.ParquetWriter
    nbytes: int = 0


class BatchWriter:
    """Write validated episodes into a staging directory, then render the metadata.

    Parameters
    ----------
    state
        The dataset as it is now (from :func:`dure.client.store.meta.load_state`).
    staging
        A created staging directory.
    file_size_mb
        Start a new data file once this many megabytes (uncompressed) are written.
    """

    def __init__(
        self, state: DatasetState, staging: Staging, *, file_size_mb: float = DATA_FILES_SIZE_IN_MB
    ) -> None:
        self._state = state
        self._staging = staging
        self._limit = int(file_size_mb * 1024 * 1024)
        self._schema = state.schema
        self._tasks = list(state.tasks)
        self._task_ids = {task: index for index, task in enumerate(self._tasks)}
        self._episodes = state.total_episodes
        self._frames = state.total_frames
        self._next_data = state.next_data
        self._data: _OpenFile | None = None
        self._meta: pq.ParquetWriter | None = None
        self._rows: list[dict[str, Any]] = []
        self._stats = StatsAccumulator()
        self._digests: dict[int, tuple[object, HexDigest]] = {}
        self.entries: list[CatalogEntry] = []

    def add(self, episode: Episode, commitment: Digest | None = None) -> EpisodeSummary:
        """Stage one validated episode (it must fit the dataset schema).

        ``commitment`` is ``episode.commitment()`` when the caller already has it.
        """
        if commitment is None:
            commitment = episode.commitment()
        if self._schema is None:
            self._schema = DatasetSchema.from_episode(episode)
        self._schema.check(episode)
        data = self._data_file(self._schema)
        where = EpisodeLocation(
            episode_index=self._episodes,
            task_index=self._task_index(episode.context.task),
            from_index=self._frames,
            data_chunk=data.index.chunk,
            data_file=data.index.file,
            meta_chunk=self._state.next_meta.chunk,
            meta_file=self._state.next_meta.file,
        )
        table = encode_frames(episode, where, self._schema)
        data.writer.write_table(table)
        data.nbytes += table.nbytes
        self._stats.add({**episode.frames.observation, "action": episode.frames.action})
        self._rows.append(encode_episode_row(episode, where, episode_stats(episode), commitment))
        if len(self._rows) >= _META_FLUSH_ROWS:
            self._flush_rows(self._schema)
        summary = summarise(episode, self._episodes, commitment, self.sensors_digest(episode))
        self.entries.append((summary, where))
        self._episodes += 1
        self._frames += episode.n_frames
        return summary

    def finish(self) -> None:
        """Close the data files and render every metadata file into staging."""
        if self._data is not None:
            self._data.writer.close()
            self._data = None
        if self._schema is None or not self.entries:
            return
        self._flush_rows(self._schema)
        if self._meta is not None:
            self._meta.close()
            self._meta = None
        stats = self._merged_stats()
        staging = self._staging
        staging.path(INFO_PATH).write_bytes(
            render_info(
                self._schema,
                total_episodes=self._episodes,
                total_frames=self._frames,
                total_tasks=len(self._tasks),
            )
        )
        staging.path(STATS_PATH).write_bytes(render_stats(stats))
        staging.path(STATS_STATE_PATH).write_bytes(render_stats_state(stats))
        pq.write_table(render_tasks(self._tasks), staging.path(TASKS_PATH))

    def abort(self) -> None:
        """Close any open file (the caller discards the staging directory).

        Closing flushes, which fails again on a full disk; the files are being
        thrown away, so such errors are ignored here (the original one is raised).
        """
        for writer in (self._data.writer if self._data else None, self._meta):
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.close()
        self._data, self._meta = None, None

    def _data_file(self, schema: DatasetSchema) -> _OpenFile:
        if self._data is not None and self._data.nbytes >= self._limit:
            self._data.writer.close()
            self._data = None
        if self._data is None:
            index, self._next_data = self._next_data, self._next_data.next()
            path = self._staging.path(index.data_path())
            writer = pq.ParquetWriter(path, schema.arrow_schema(), use_dictionary=_DICTIONARY)
            self._data = _OpenFile(index, writer)
        return self._data

    def _flush_rows(self, schema: DatasetSchema) -> None:
        if not self._rows:
            return
        row_schema = episode_row_schema(schema)
        if self._meta is None:
            path = self._staging.path(self._state.next_meta.episodes_path())
            self._meta = pq.ParquetWriter(path, row_schema, use_dictionary=False)
        self._meta.write_table(rows_to_table(self._rows, row_schema))
        self._rows = []

    def _task_index(self, task: str) -> int:
        if task not in self._task_ids:
            self._task_ids[task] = len(self._tasks)
            self._tasks.append(task)
        return self._task_ids[task]

    def _merged_stats(self) -> dict[str, FeatureStats]:
        batch = self._stats.result()
        if not self._state.stats:
            return batch
        return {key: merge_stats(self._state.stats[key], item) for key, item in batch.items()}

    def sensors_digest(self, episode: Episode) -> HexDigest:
        """The digest of ``episode``'s sensor configuration (cached per config object)."""
        sensors = episode.context.sensors  # episodes of one source share one config object
        cached = self._digests.get(id(sensors))
        if cached is None or cached[0] is not sensors:
            cached = (sensors, sensors.digest())
            self._digests[id(sensors)] = cached
        return cached[1]
