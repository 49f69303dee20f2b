"""Helpers for the store tests: a hash of a whole factory home, episode equality."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from dure.client.episodes.schema import Episode

__all__ = ["assert_same_episode", "tree_digest"]


def tree_digest(root: Path) -> str:
    """SHA-256 over every directory name, file name and file's bytes under ``root``."""
    hasher = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_dir():
            hasher.update(f"D {relative}\n".encode())
        else:
            hasher.update(f"F {relative} {path.stat().st_size}\n".encode())
            hasher.update(path.read_bytes())
    return hasher.hexdigest()


def assert_same_episode(got: Episode, want: Episode) -> None:
    """Every field equal: metadata models, and each array with its dtype."""
    assert got.fps == want.fps
    assert got.context == want.context
    assert got.action_space == want.action_space
    assert got.outcome == want.outcome
    assert got.provenance == want.provenance
    assert got.phase_names == want.phase_names
    got_cols, want_cols = got.frames.columns(), want.frames.columns()
    assert sorted(got_cols) == sorted(want_cols)
    for name, array in want_cols.items():
        assert got_cols[name].dtype == array.dtype, name
        np.testing.assert_array_equal(got_cols[name], array, err_msg=name)
    assert got.commitment() == want.commitment()
