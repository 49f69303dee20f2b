"""Atomic ingests: stage complete files, commit in the catalog, then move them in.

Protocol of one ingest (the writer holds the exclusive lock throughout)::

    1. stage   every new or replaced dataset file is written, complete and fsynced,
               under  staging/<commit_id>/tree/<path relative to the dataset>
    2. seal    staging/<commit_id>/MANIFEST.json lists those paths (written to a
               temporary name, fsynced, renamed: it exists whole or not at all)
    3. commit  the catalog records the ingest in ONE transaction   <- commit point
    4. apply   each staged file is moved into the dataset with os.replace
    5. clean   staging/<commit_id> is removed

A failure before step 3 is rolled back by deleting the staging directory: the
dataset and the catalog are byte-for-byte as they were.  A crash after step 3
is rolled forward by :func:`recover`, which the store runs under the exclusive
lock whenever it opens: a sealed staging directory whose commit the catalog
holds has its remaining files moved in; any other staging directory is deleted.
Readers take the shared lock, so they never see a half-applied ingest.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from dure.client.errors import StoreError

__all__ = ["Staging", "disk_full", "locked", "recover", "write_atomic"]

_MANIFEST = "MANIFEST.json"
_FULL = (errno.ENOSPC, errno.EDQUOT)
# Arrow reports ENOSPC in its message (errno unset); SQLite as SQLITE_FULL.
_FULL_TEXT = ("no space left on device", "database or disk is full", "disk quota exceeded")


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) says the disk is full."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _FULL:
            return True
        if any(text in str(current).lower() for text in _FULL_TEXT):
            return True
        current = current.__cause__ or current.__context__
    return False


@contextlib.contextmanager
def locked(lock_path: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold the store lock (shared for readers, exclusive for writers)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a fsynced temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Staging:
    """The staging directory of one ingest (see the module docstring)."""

    def __init__(self, staging_root: Path, commit_id: str | None = None) -> None:
        self.commit_id = commit_id or uuid.uuid4().hex
        self.root = staging_root / self.commit_id
        self.tree = self.root / "tree"

    def create(self) -> Staging:
        """Create the empty staging directory."""
        self.tree.mkdir(parents=True, exist_ok=False)
        return self

    def path(self, relative: str) -> Path:
        """Where to stage the dataset file ``relative`` (parents created)."""
        target = self.tree / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def seal(self) -> list[str]:
        """Fsync every staged file and write the manifest; return the staged paths."""
        staged = sorted(
            p.relative_to(self.tree).as_posix() for p in self.tree.rglob("*") if p.is_file()
        )
        for relative in staged:
            _fsync_file(self.tree / relative)
        manifest = json.dumps({"commit_id": self.commit_id, "files": staged}).encode()
        write_atomic(self.root / _MANIFEST, manifest)
        return staged

    def apply(self, dataset: Path) -> None:
        """Move every staged file still present into ``dataset`` (idempotent)."""
        for relative in self._manifest_files():
            source = self.tree / relative
            if source.exists():
                target = dataset / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, target)
        self.discard()

    def discard(self) -> None:
        """Delete the staging directory and everything in it."""
        shutil.rmtree(self.root, ignore_errors=True)

    def is_sealed(self) -> bool:
        """Whether the manifest was written (the ingest reached step 2)."""
        return (self.root / _MANIFEST).exists()

    def _manifest_files(self) -> list[str]:
        try:
            manifest = json.loads((self.root / _MANIFEST).read_bytes())
            return [str(item) for item in manifest["files"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(
                f"staging manifest {self.root / _MANIFEST} is unreadable: {exc}",
                hint="Do not edit the staging directory; restore the factory home from a backup.",
            ) from exc


def recover(staging_root: Path, dataset: Path, is_committed: Callable[[str], bool]) -> int:
    """Roll every leftover staging directory forward or back; return how many were found."""
    if not staging_root.is_dir():
        return 0
    leftovers = sorted(p for p in staging_root.iterdir() if p.is_dir())
    for directory in leftovers:
        staging = Staging(staging_root, directory.name)
        if staging.is_sealed() and is_committed(staging.commit_id):
            staging.apply(dataset)
        else:
            staging.discard()
    return len(leftovers)
