"""Dure's LeRobot importer on a dataset written by LeRobot itself (0.4.4), not by Dure.

The fixture ``tests/fixtures/thirdparty/lerobot_v3/`` was written with LeRobot's own
``LeRobotDataset.create`` / ``add_frame`` / ``save_episode`` / ``finalize`` by
``tests/fixtures/thirdparty/make_lerobot_fixtures.py``; ``lerobot_v3.expected.json``
holds what ``LeRobotDataset`` itself read back, frame by frame.  The dataset has none
of the simulator's Dure-only fields (no ``start_time``, no ``next.*`` columns, tasks
as the pandas index of ``meta/tasks.parquet``).  It is ingested the way a user does,
with ``dure factory ingest``, and through the importer API.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from dure.cli.main import app
from dure.client.episodes.profile import SiteProfile
from dure.client.episodes.schema import Episode
from dure.client.errors import IngestError
from dure.client.importers.ingest import iter_episodes
from dure.client.importers.profile_io import dump_profile
from dure.client.importers.source_digest import source_digest
from dure.client.store import EpisodeStore

V3_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
FIXTURES = Path(__file__).parents[2] / "fixtures" / "thirdparty"
DATASET = FIXTURES / "lerobot_v3"
EXPECTED: dict[str, Any] = json.loads(
    (FIXTURES / "lerobot_v3.expected.json").read_text(encoding="utf-8")
)


def site_profile() -> SiteProfile:
    """What a site writes for this dataset: the joints, in radians, at LeRobot's fps."""
    joints = list(EXPECTED["joints"])
    return SiteProfile.model_validate(
        {
            "format": "lerobot-v3",
            "fps": EXPECTED["fps"],
            "features": {
                "observation.state": [
                    {"stream": "observation.state", "select": joints, "unit": "rad"}
                ],
                "action": [{"stream": "action", "select": joints, "unit": "rad"}],
            },
            "segmentation": {"method": "per-source-episode"},
            "task": {"metadata": "task"},
            "context": {
                "site": "thirdparty",
                "cell": "so100-cell",
                "robot": "so100-1",
                "embodiment": "so100_follower",
                "operator": "0123456789abcdef",
                "source": "teleoperation",
            },
            "action_space": {
                "kind": "joint",
                "mode": "absolute",
                "frame": "robot",
                "gripper": "closed-positive",
            },
        }
    )


def by_task(episodes: list[Episode]) -> dict[str, Episode]:
    return {e.context.task: e for e in episodes}


def check_against_lerobot(episodes: list[Episode]) -> None:
    """Episode count, frame counts, tasks, times and every value as LeRobot read them."""
    assert EXPECTED["written_by"] == "lerobot 0.4.4"
    assert len(episodes) == EXPECTED["total_episodes"] == 2
    got = by_task(episodes)
    assert sum(e.n_frames for e in episodes) == EXPECTED["total_frames"] == 21
    for want in EXPECTED["episodes"]:
        episode = got[want["task"]]
        state = np.asarray(want["state"], dtype=np.float32)
        assert episode.n_frames == len(want["timestamp"]) == len(state)
        np.testing.assert_allclose(
            episode.frames.timestamp, np.asarray(want["timestamp"]), atol=1e-6
        )
        np.testing.assert_array_equal(episode.frames.observation["observation.state"], state)
        np.testing.assert_array_equal(
            episode.frames.action, np.asarray(want["action"], dtype=np.float32)
        )
        assert episode.provenance.source_sha256 == source_digest(DATASET)


def test_the_fixture_is_lerobots_own_and_small() -> None:
    info = json.loads((DATASET / "meta" / "info.json").read_text(encoding="utf-8"))
    assert info["codebase_version"] == EXPECTED["codebase_version"] == "v3.0"
    assert "start_time" not in json.dumps(info)
    size = sum(p.stat().st_size for p in DATASET.rglob("*") if p.is_file())
    assert size < 200_000


def test_the_importer_reads_lerobots_dataset_as_lerobot_does() -> None:
    check_against_lerobot(list(iter_episodes(DATASET, site_profile())))


def test_dure_factory_ingest_stores_lerobots_dataset(tmp_path: Path) -> None:
    profile = tmp_path / "site-profile.yaml"
    profile.write_text(dump_profile(site_profile()), encoding="utf-8")
    home = tmp_path / "home"
    result = CliRunner().invoke(
        app,
        ["factory", "ingest", str(DATASET), "--profile", str(profile), "--home", str(home)],
        env={"COLUMNS": "400"},
    )
    assert result.exit_code == 0, result.output
    assert "stored 2 episodes" in result.output
    with EpisodeStore.open(home, create=False) as store:
        stored = [store.read(s.episode_id) for s in store.select()]
    check_against_lerobot(stored)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            {"data_path": "../lerobot_v3/" + V3_PATH},
            "not a relative path",
        ),
        ({"data_path": "data/chunk-{chunk_index!r}/file-{file_index:03d}.parquet"}, "conversion"),
        ({"codebase_version": "v2.1"}, "codebase_version"),
    ],
)
def test_lerobots_dataset_with_hostile_info_is_refused(
    edit: dict[str, str], message: str, tmp_path: Path
) -> None:
    """The same genuine dataset, its info.json edited: refused, naming what is wrong."""
    root = tmp_path / "lerobot_v3"
    shutil.copytree(DATASET, root)
    info_path = root / "meta" / "info.json"
    info = json.loads(info_path.read_text(encoding="utf-8"))
    info_path.write_text(json.dumps(info | edit), encoding="utf-8")
    with pytest.raises(IngestError, match=message):
        list(iter_episodes(root, site_profile()))
