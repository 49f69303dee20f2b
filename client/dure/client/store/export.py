"""Export a selection of episodes as a new, self-contained LeRobot v3 folder.

The export holds only the selected episodes, reindexed from 0 (episode and
frame indices, and task indices over the selection's own tasks), with its own
``info.json``, ``tasks.parquet`` and statistics; every Dure field travels with
its episode.  The folder is written beside ``out`` under a temporary name and
renamed into place at the end, so ``out`` either holds a complete dataset or
does not exist.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

from dure.client.episodes.schema import Episode
from dure.client.errors import StoreError
from dure.client.store.meta import DatasetState
from dure.client.store.transaction import Staging
from dure.client.store.writer import BatchWriter

__all__ = ["export_episodes"]


def export_episodes(episodes: Iterable[Episode], out: Path) -> Path:
    """Write ``episodes`` to the new folder ``out``; return ``out``.

    Raises
    ------
    StoreError
        If ``out`` exists and is not an empty folder, if the selection is empty,
        or if writing fails (nothing is left behind).
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise StoreError(
            f"export target {out} already exists and is not empty",
            hint="Choose a new folder for --out, or remove the old export.",
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Staging(out.parent, f".{out.name}.partial-{uuid.uuid4().hex}").create()
    writer = BatchWriter(DatasetState(), staging)
    try:
        for episode in episodes:
            writer.add(episode)
        writer.finish()
        if not writer.entries:
            raise StoreError("nothing to export: the selection is empty", hint="Widen the filters.")
        if out.exists():
            out.rmdir()
        os.replace(staging.tree, out)
    except BaseException as exc:
        writer.abort()
        staging.discard()
        if isinstance(exc, OSError):
            raise StoreError(f"export to {out} failed: {exc}") from exc
        raise
    shutil.rmtree(staging.root, ignore_errors=True)
    return out
