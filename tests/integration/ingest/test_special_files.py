"""A FIFO or a socket inside any folder source is refused, never opened (no hang).

Each logging style's folder is written by the simulator, then one of its data files
(a bag's storage file, a parquet file, the HDF5 file, a CSV export) is replaced by a
FIFO nobody writes to, or by a listening Unix socket.  Opening a FIFO blocks for ever,
so the real ingest runs in a child process with a deadline: a hang fails the test
instead of hanging it.  The refusal must name the file and its type, and the store
must be left as it was.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
from pathlib import Path

import pytest
from tests.builders.store import tree_digest

from dure.client.errors import IngestError
from dure.client.importers.ingest import ingest
from dure.client.sim.factory import simulate_episodes, site_profile
from dure.client.sim.styles import STYLES
from dure.client.sim.writers import write_native
from dure.client.store import EpisodeStore

DEADLINE_S = 60
METADATA = (".yaml", ".json", ".jsonl")


def _ingest(root: str, style: str, home: str, answers: multiprocessing.Queue[str]) -> None:
    try:
        with EpisodeStore.open(Path(home)) as store:
            ingest(Path(root), site_profile(STYLES[style]), store.add)
        answers.put("imported")
    except IngestError as exc:
        answers.put(f"refused: {exc.message}")
    except Exception as exc:  # the test reports anything else
        answers.put(f"{type(exc).__name__}: {exc}")


def _data_file(root: Path) -> Path:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix not in METADATA)[0]


@pytest.mark.parametrize("style", sorted(STYLES))
@pytest.mark.parametrize("kind", ["FIFO", "socket"])
def test_a_special_file_in_a_source_folder_is_refused_without_blocking(
    tmp_path: Path, style: str, kind: str
) -> None:
    root, home = tmp_path / "source", tmp_path / "home"
    write_native(root, simulate_episodes(["reach-v3"], 1, seed=5, max_steps=8), STYLES[style])
    assert root.is_dir(), f"{style} is expected to write a folder"
    target = _data_file(root)
    target.unlink()
    listener = socket.socket(socket.AF_UNIX)
    if kind == "FIFO":
        os.mkfifo(target)
    else:
        listener.bind(str(target))
        listener.listen()
    with EpisodeStore.open(home):
        pass
    before = tree_digest(home)
    context = multiprocessing.get_context("fork")
    answers: multiprocessing.Queue[str] = context.Queue()
    child = context.Process(target=_ingest, args=(str(root), style, str(home), answers))
    child.start()
    child.join(DEADLINE_S)
    try:
        if child.is_alive():
            child.kill()
            pytest.fail(f"ingest of a {style} folder hung on a {kind}: {target.name}")
        answer = answers.get(timeout=5)
    finally:
        listener.close()
    assert answer.startswith("refused: "), answer
    assert target.name in answer and kind in answer, answer
    assert tree_digest(home) == before
