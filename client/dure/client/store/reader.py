"""Read episodes back from a LeRobot v3 dataset written by Dure.

:class:`DatasetReader` needs only the dataset folder (no catalog), so it reads
the store's dataset and any export alike.  Files are read once per call and
sliced per episode; every I/O, Arrow or decoding failure becomes a
:class:`~dure.client.errors.StoreError` naming the file.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import ValidationError

from dure.client.episodes.schema import Episode
from dure.client.episodes.stats import FeatureStats
from dure.client.errors import StoreError
from dure.client.store.codec import DatasetSchema, decode_episode, decode_stats
from dure.client.store.layout import DATA_PATH, INFO_PATH, FileIndex, existing_file_indices
from dure.client.store.meta import load_state

__all__ = ["DatasetReader"]


class DatasetReader:
    """Reads episodes, episode rows and statistics from one dataset folder."""

    def __init__(self, dataset: Path) -> None:
        if not (dataset / INFO_PATH).exists():
            raise StoreError(
                f"{dataset} holds no {INFO_PATH}: not a LeRobot v3 dataset written by Dure",
                hint="Point at the folder that contains meta/ and data/.",
            )
        self.root = dataset
        state = load_state(dataset)
        if state.schema is None:  # pragma: no cover - load_state reads it from info.json
            raise StoreError(f"{dataset / INFO_PATH} describes no features")
        self.schema: DatasetSchema = state.schema
        self.tasks = state.tasks
        self.dataset_stats = state.stats

    def episode_rows(
        self,
        episode_indices: Iterable[int] | None = None,
        columns: Sequence[str] | None = None,
        *,
        meta_files: Iterable[FileIndex] | None = None,
    ) -> dict[int, dict[str, Any]]:
        """Return episode rows keyed by ``episode_index`` (all rows when ``None``).

        ``meta_files`` restricts the search to those ``meta/episodes`` files (the
        catalog knows which file holds each episode).
        """
        wanted = None if episode_indices is None else sorted(set(episode_indices))
        out: dict[int, dict[str, Any]] = {}
        files = existing_file_indices(self.root, "meta/episodes")
        if meta_files is not None:
            files = sorted(set(meta_files) & set(files))
        for index in files:
            path = self.root / index.episodes_path()
            table = self._read(path, columns=_with_index(columns))
            if wanted is not None:
                mask = pc.is_in(table.column("episode_index"), pa.array(wanted, pa.int64()))
                table = table.filter(mask)
            for row in table.to_pylist():
                out[int(row["episode_index"])] = row
        return out

    def episode_stats(
        self, episode_indices: Iterable[int], *, meta_files: Iterable[FileIndex] | None = None
    ) -> list[dict[str, FeatureStats]]:
        """Return the mergeable statistics stored for each episode."""
        keys = sorted(self.schema.features)
        columns = [
            f"{prefix}/{key}/{stat}"
            for key in keys
            for prefix, stat in (
                ("stats", "mean"),
                ("stats", "min"),
                ("stats", "max"),
                ("stats", "count"),
                ("dure/stats", "m2"),
                ("dure/stats", "sketch"),
            )
        ]
        rows = self.episode_rows(episode_indices, columns, meta_files=meta_files)
        return [decode_stats(row, keys) for _, row in sorted(rows.items())]

    def iter_episodes(
        self,
        episode_indices: Iterable[int] | None = None,
        *,
        meta_files: Iterable[FileIndex] | None = None,
    ) -> Iterator[Episode]:
        """Yield the episodes (all when ``None``), grouped by data file, in index order."""
        rows = self.episode_rows(episode_indices, meta_files=meta_files)
        by_file: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
        for _, row in sorted(rows.items()):
            by_file[(row["data/chunk_index"], row["data/file_index"])].append(row)
        for (chunk, file), file_rows in sorted(by_file.items()):
            path = self.root / DATA_PATH.format(chunk_index=chunk, file_index=file)
            indices = [int(row["episode_index"]) for row in file_rows]
            table = self._read(path, filters=[("episode_index", "in", indices)])
            starts = table.column("index").to_numpy()
            for row in file_rows:
                lo = int(np.searchsorted(starts, row["dataset_from_index"]))
                frames = table.slice(lo, row["dataset_to_index"] - row["dataset_from_index"])
                yield self._decode(row, frames, path)

    def read_episode(self, episode_index: int, *, meta_file: FileIndex | None = None) -> Episode:
        """Read one episode by its dataset-wide index."""
        files = None if meta_file is None else [meta_file]
        for episode in self.iter_episodes([episode_index], meta_files=files):
            return episode
        raise StoreError(
            f"{self.root}: no episode with episode_index {episode_index}",
            hint="The catalog and the dataset disagree; rebuild the catalog or restore a backup.",
        )

    def _decode(self, row: dict[str, Any], frames: pa.Table, path: Path) -> Episode:
        if frames.num_rows != row["length"] or (
            frames.num_rows and frames.column("episode_index")[0].as_py() != row["episode_index"]
        ):
            raise StoreError(f"{path}: rows of episode {row['episode_index']} are missing")
        try:
            return decode_episode(row, frames, self.schema)
        except (ValidationError, KeyError, ValueError, pa.ArrowException) as exc:
            raise StoreError(
                f"{path}: episode {row['episode_index']} cannot be decoded: {exc}",
                hint="The file was altered outside Dure; restore it from a backup.",
            ) from exc

    @staticmethod
    def _read(
        path: Path, columns: Sequence[str] | None = None, filters: list[Any] | None = None
    ) -> pa.Table:
        try:
            return pq.read_table(
                path, columns=list(columns) if columns is not None else None, filters=filters
            )
        except (OSError, pa.ArrowException) as exc:
            raise StoreError(
                f"{path} is unreadable: {exc}",
                hint="Restore the factory home from a backup; Dure never leaves it half-written.",
            ) from exc


def _with_index(columns: Sequence[str] | None) -> list[str] | None:
    if columns is None:
        return None
    return ["episode_index", *[c for c in columns if c != "episode_index"]]
