"""Where things live: the factory home and the LeRobot v3 dataset inside it.

A factory home holds::

    <home>/
      dataset/                      the episodes, in the LeRobot v3.0 layout
        meta/info.json              codebase_version "v3.0", fps, features, totals, paths
        meta/stats.json             per feature: min, max, mean, std, count, q01..q99
        meta/tasks.parquet          task_index, task
        meta/episodes/chunk-CCC/file-FFF.parquet   one row per episode (+ Dure fields)
        meta/dure/stats_state.json  mergeable dataset statistics (Dure extension)
        data/chunk-CCC/file-FFF.parquet            one row per frame
      catalog.sqlite                the catalog (SQLModel), when no URL is given
      staging/                      ingests being written (never read by tools)
      store.lock                    the writers' and readers' lock

# SPEC: LeRobotDataset v3.0 (lerobot ``datasets/utils.py``): ``chunks_size`` files
# per chunk directory, paths ``chunk-{chunk_index:03d}/file-{file_index:03d}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CHUNKS_SIZE",
    "CODEBASE_VERSION",
    "DATA_FILES_SIZE_IN_MB",
    "DATA_PATH",
    "EPISODES_PATH",
    "INFO_PATH",
    "STATS_PATH",
    "STATS_STATE_PATH",
    "TASKS_PATH",
    "FileIndex",
    "HomeLayout",
    "existing_file_indices",
]

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
DATA_FILES_SIZE_IN_MB = 100
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
STATS_STATE_PATH = "meta/dure/stats_state.json"

_CHUNK_FILE = re.compile(r"chunk-(\d{3,})/file-(\d{3,})\.parquet$")


@dataclass(frozen=True, order=True)
class FileIndex:
    """A ``(chunk_index, file_index)`` pair naming one Parquet file."""

    chunk: int
    file: int

    def next(self) -> FileIndex:
        """Return the index of the file after this one (a new chunk every CHUNKS_SIZE files)."""
        if self.file == CHUNKS_SIZE - 1:
            return FileIndex(self.chunk + 1, 0)
        return FileIndex(self.chunk, self.file + 1)

    def data_path(self) -> str:
        """Path of the data file, relative to the dataset root."""
        return DATA_PATH.format(chunk_index=self.chunk, file_index=self.file)

    def episodes_path(self) -> str:
        """Path of the episodes metadata file, relative to the dataset root."""
        return EPISODES_PATH.format(chunk_index=self.chunk, file_index=self.file)


@dataclass(frozen=True)
class HomeLayout:
    """The paths of one factory home."""

    home: Path

    @property
    def dataset(self) -> Path:
        """The LeRobot v3 dataset root."""
        return self.home / "dataset"

    @property
    def staging(self) -> Path:
        """Where ingests are written before they are committed."""
        return self.home / "staging"

    @property
    def lock(self) -> Path:
        """The lock file (shared for readers, exclusive for writers)."""
        return self.home / "store.lock"

    @property
    def catalog_url(self) -> str:
        """The default catalog: SQLite in the home."""
        return f"sqlite:///{(self.home / 'catalog.sqlite').resolve()}"


def existing_file_indices(root: Path, pattern_dir: str) -> list[FileIndex]:
    """Return the file indices under ``root/pattern_dir`` (``data`` or ``meta/episodes``)."""
    found = []
    for path in (root / pattern_dir).glob("chunk-*/file-*.parquet"):
        match = _CHUNK_FILE.search(path.as_posix())
        if match:
            found.append(FileIndex(int(match.group(1)), int(match.group(2))))
    return sorted(found)
