"""Small LeRobot datasets (v2.1 and v3.0) for the metadata tests, and how to ingest them.

The datasets are Dure's simulator's; each test copies one and edits its metadata.
:func:`ingest_or_refuse` runs the real ingest into a real store and checks the
contract every hostile dataset must meet: episodes stored, or an
:class:`IngestError` with the store exactly as it was.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from tests.builders.store import tree_digest

from dure.client.episodes.profile import SiteProfile
from dure.client.episodes.schema import Episode
from dure.client.errors import IngestError
from dure.client.importers.ingest import ingest
from dure.client.sim.factory import simulate_episodes, site_profile
from dure.client.sim.styles import STYLES
from dure.client.sim.writers import write_native
from dure.client.store import EpisodeStore

__all__ = ["VERSIONS", "edit_info", "ingest_or_refuse", "profile", "write_datasets"]

VERSIONS = ("lerobot-v21", "lerobot-v3")


def write_datasets(root: Path) -> dict[str, Path]:
    """Write two short episodes as a v2.1 and as a v3.0 dataset under ``root``."""
    episodes = simulate_episodes(["reach-v3"], 2, seed=5, max_steps=8)
    out = {}
    for version in VERSIONS:
        write_native(root / version, episodes, STYLES[version])
        out[version] = root / version
    return out


def profile(version: str) -> SiteProfile:
    """The site profile that reads the simulator's dataset of ``version``."""
    return site_profile(STYLES[version])


def edit_info(root: Path, **changes: Any) -> None:
    """Set keys of ``root/meta/info.json`` (``None`` values are kept as JSON null)."""
    path = root / "meta" / "info.json"
    info = json.loads(path.read_text(encoding="utf-8"))
    info.update(changes)
    path.write_text(json.dumps(info), encoding="utf-8")


def copy(source: Path, target: Path) -> Path:
    """Copy a dataset folder (symlinks as symlinks)."""
    shutil.copytree(source, target, symlinks=True)
    return target


def ingest_or_refuse(root: Path, version: str, home: Path) -> list[Episode] | IngestError:
    """Ingest ``root`` into the store at ``home``: the stored episodes, or the refusal.

    Any exception other than :class:`IngestError` propagates (and fails the test); on
    refusal the store must be byte-for-byte what it was.
    """
    with EpisodeStore.open(home) as store:
        before = tree_digest(home)
        try:
            ingest(root, profile(version), store.add)
        except IngestError as exc:
            assert exc.message and exc.hint
            assert "\n" not in exc.message, exc.message[:300]
            assert len(exc.message) < 2000, exc.message[:300]
            assert store.select() == []
            after = tree_digest(home)
            if after != before:
                pytest.fail(f"a refused ingest changed the store: {exc.message}")
            return exc
        return [store.read(ref.episode_id) for ref in store.select()]
