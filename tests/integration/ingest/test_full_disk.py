"""A full disk at a factory during ingest: a clear error, the store unchanged.

The factory home lives on a small tmpfs mounted by the test (it needs root or
``CAP_SYS_ADMIN``, as in the CI container; elsewhere the test is skipped, and
under ``CI=true`` that skip is a failure: see ``tests/conftest.py``): the
kernel itself answers ``ENOSPC`` when the disk fills, exactly as on a real
factory disk, with no stand-in in the write path.  The home holds a first
ingest; the rest of the disk is filled until about a quarter of what the
second ingest needs is left, so the disk fills in the middle of it (the test
checks it did, from the progress bar).  ``dure factory
ingest`` runs as a real process.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.ci_required("root and the mount command (CI runs as root), to mount a tmpfs"),
]

DURE = [sys.executable, "-c", "from dure.cli.main import run; run()"]


def _dure(*args: str | Path | int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [*DURE, *map(str, args)], capture_output=True, text=True, timeout=600, env=env, check=False
    )


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs mounted at ``tmp_path / "disk"``, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mount)]
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CAP_SYS_ADMIN)")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def _simulate(out: Path, episodes: int, seed: int) -> tuple[Path, Path]:
    done = _dure(
        "factory", "simulate", "--style", "csv", "--tasks", "push-v3",
        "--episodes", episodes, "--max-steps", "120", "--seed", seed, "--out", out,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out / "csv", out / "site-profile.yaml"


def _snapshot(home: Path) -> dict[str, bytes]:
    """Every file of the home, by relative path (the lock file is empty and kept)."""
    return {
        path.relative_to(home).as_posix(): path.read_bytes()
        for path in sorted(home.rglob("*"))
        if path.is_file()
    }


def _tree_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _fill(disk: Path, leave: int) -> None:
    """Write a filler file until only about ``leave`` bytes are free on ``disk``."""
    stats = os.statvfs(disk)
    free = stats.f_bavail * stats.f_frsize
    assert free > leave, f"the test disk has only {free} bytes free"
    with open(disk / "filler", "wb") as handle:
        handle.write(b"\0" * (free - leave))


def test_a_full_disk_rolls_the_ingest_back_with_a_clear_error(
    tmp_path: Path, small_disk: Path
) -> None:
    first = _simulate(tmp_path / "first", episodes=2, seed=1)
    second = _simulate(tmp_path / "second", episodes=16, seed=2)
    scratch = tmp_path / "scratch-home"  # how much the second ingest writes, on a roomy disk
    done = _dure("factory", "ingest", second[0], "--profile", second[1], "--home", scratch)
    assert done.returncode == 0, done.stderr
    needed = _tree_bytes(scratch / "dataset")

    home = small_disk / "home"
    done = _dure("factory", "ingest", first[0], "--profile", first[1], "--home", home)
    assert done.returncode == 0, done.stderr
    before = _snapshot(home)
    assert "catalog.sqlite" in before and "dataset/meta/info.json" in before
    _fill(small_disk, leave=needed // 4)

    done = _dure("factory", "ingest", second[0], "--profile", second[1], "--home", home)

    assert done.returncode == 7, done.stdout + done.stderr
    staged = re.findall(r"(\d+)/\?", done.stdout)  # the progress bar: episodes read so far
    assert staged and 0 < int(staged[-1]) < 16, done.stdout  # the disk filled mid-ingest
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 2, done.stderr  # one error line, one hint line
    assert lines[0].startswith("error: the disk holding the factory home")
    assert str(home) in lines[0] and "is full" in lines[0] and "nothing was stored" in lines[0]
    assert lines[1].startswith("hint: Free space on the disk") and "move the home" in lines[1]
    assert _snapshot(home) == before  # catalog, meta and data byte for byte; no partial file
    assert list((home / "staging").iterdir()) == []

    (small_disk / "filler").unlink()  # once space is freed, the same ingest goes through
    done = _dure("factory", "ingest", second[0], "--profile", second[1], "--home", home)
    assert done.returncode == 0, done.stderr
    assert "stored 16 episodes" in done.stdout
