"""Fuzzing the importers: corrupted sources give IngestError, never a crash or a partial store.

Each format's source is written once by its own library, then hypothesis corrupts one
of its files (truncation, byte flips, overwritten blocks) and the ingest must either
produce valid episodes or raise :class:`IngestError`: any other exception fails.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.builders.store import tree_digest

from dure.client.episodes.profile import SiteProfile
from dure.client.episodes.schema import Episode
from dure.client.errors import IngestError
from dure.client.importers.ingest import ingest
from dure.client.sim.factory import DATA_DIRS, site_profile
from dure.client.sim.styles import STYLES
from dure.client.sim.truth import SimulatedEpisode
from dure.client.sim.writers import write_native
from dure.client.store import EpisodeStore

TARGETS = {  # the file each style's fuzzing corrupts
    "rosbag": "*.db3",
    "mcap": "*.mcap",
    "lerobot-v21": "data/chunk-000/episode_000001.parquet",
    "lerobot-v3": "data/chunk-000/file-000.parquet",
    "robomimic": "push-v3.hdf5",
    "csv": "zyklus_0001.csv",
}


@pytest.fixture(scope="module")
def sources(
    shift: list[SimulatedEpisode], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Path, SiteProfile]]:
    root = tmp_path_factory.mktemp("sources")
    out = {}
    for style in STYLES:
        data = root / style / DATA_DIRS[style]
        write_native(data, shift, STYLES[style])
        out[style] = (data, site_profile(STYLES[style]))
    return out


def collect(episodes: Iterable[Episode]) -> list[Episode]:
    return list(episodes)


mutations = st.lists(
    st.tuples(
        st.sampled_from(["flip", "block", "truncate"]),
        st.floats(0, 1),
        st.binary(min_size=1, max_size=64),
    ),
    min_size=1,
    max_size=3,
)


def corrupt(path: Path, plan: list[tuple[str, float, bytes]]) -> None:
    data = bytearray(path.read_bytes())
    for kind, where, junk in plan:
        at = int(where * max(len(data) - 1, 0))
        if kind == "truncate":
            del data[at:]
        elif kind == "flip" and data:
            data[at] ^= junk[0] or 0xFF
        else:
            data[at : at + len(junk)] = junk
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("style", sorted(STYLES))
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plan=mutations)
def test_corrupted_sources_give_our_error_or_valid_episodes(
    style: str, plan: list[tuple[str, float, bytes]], sources: dict[str, tuple[Path, SiteProfile]]
) -> None:
    data, profile = sources[style]
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "src"
        shutil.copytree(data, copy)
        target = next(copy.glob(TARGETS[style]))
        corrupt(target, plan)
        try:
            episodes = ingest(copy, profile, collect)
        except IngestError as exc:
            assert exc.message and exc.hint
            return
        for episode in episodes:
            episode.validate()


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=400), style=st.sampled_from(sorted(STYLES)))
def test_arbitrary_bytes_as_a_source_give_our_error(
    body: bytes, style: str, sources: dict[str, tuple[Path, SiteProfile]]
) -> None:
    _, profile = sources[style]
    suffix = {"rosbag": ".db3", "mcap": ".mcap", "robomimic": ".hdf5", "csv": ".csv"}.get(style, "")
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / f"source{suffix}"
        if suffix:
            path.write_bytes(body)
        else:
            (path / "meta").mkdir(parents=True)
            (path / "meta" / "info.json").write_bytes(body)
        with pytest.raises(IngestError):
            ingest(path, profile, collect)


def test_a_bad_episode_late_in_the_source_leaves_the_store_untouched(
    shift: list[SimulatedEpisode], tmp_path: Path
) -> None:
    """Two good episodes then one with a NaN: nothing is stored, byte for byte."""
    style = STYLES["lerobot-v21"]
    broken = list(shift)
    force = broken[-1].features["observation.force"].copy()
    force[5, 2] = np.nan
    broken[-1] = SimulatedEpisode(
        **{**broken[-1].__dict__, "features": {**broken[-1].features, "observation.force": force}}
    )
    data = tmp_path / "dataset"
    write_native(data, broken, style)
    with EpisodeStore.open(tmp_path / "home") as store:
        before = tree_digest(tmp_path / "home")
        with pytest.raises(IngestError) as info:
            ingest(data, site_profile(style), store.add)
        assert "episode 2" in info.value.message and "observation.wrench" in info.value.message
        assert "NaN" in info.value.message
        assert store.select() == []
    assert tree_digest(tmp_path / "home") == before
