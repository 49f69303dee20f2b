"""Dure's robomimic importer on a file in robomimic's published layout, nothing Dure-only.

The fixture (``tests/fixtures/thirdparty/robomimic``, made by
``make_robomimic_fixtures.py`` and loaded by robomimic 0.3.0's own ``SequenceDataset``
through ``check_robomimic_fixture.py``) follows the released Lift ``low_dim`` files:
no times, no start-time attribute, demos not in text order, ``next_obs`` and ``mask``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.builders.store import tree_digest

from dure.client.episodes.profile import SiteProfile
from dure.client.errors import IngestError
from dure.client.importers.ingest import ingest, iter_episodes
from dure.client.store import EpisodeStore

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "thirdparty" / "robomimic"
SOURCE = FIXTURES / "lift_low_dim.hdf5"
EXPECTED: dict[str, Any] = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))
OBJECT = ["cube_x", "cube_y", "cube_z", "cube_qx", "cube_qy", "cube_qz", "cube_qw"]


def profile(**changes: Any) -> SiteProfile:
    """The site profile for robomimic's Lift low_dim data (robosuite, 20 Hz control)."""
    document: dict[str, Any] = {
        "format": "robomimic",
        "fps": 20,
        "time": {"rate_hz": 20},
        "features": {
            "observation.state": [
                {"stream": "obs/robot0_eef_pos", "names": ["eef_x", "eef_y", "eef_z"], "unit": "m"},
                {
                    "stream": "obs/robot0_eef_quat",
                    "names": ["eef_qx", "eef_qy", "eef_qz", "eef_qw"],
                },
                {
                    "stream": "obs/robot0_gripper_qpos",
                    "names": ["finger_l", "finger_r"],
                    "unit": "m",
                },
            ],
            "observation.object": [
                {
                    "stream": "obs/object",
                    "names": [*OBJECT, "to_cube_x", "to_cube_y", "to_cube_z"],
                    "unit": ["m"] * 3 + ["1"] * 4 + ["m"] * 3,
                }
            ],
            "observation.joints": [
                {
                    "stream": "obs/robot0_joint_pos",
                    "select": [6, 5, 4, 3, 2, 1, 0],
                    "names": [f"joint{i}" for i in range(7, 0, -1)],
                    "unit": "rad",
                }
            ],
            "action": [
                {"stream": "actions", "names": ["dx", "dy", "dz", "drx", "dry", "drz", "grip"]}
            ],
        },
        "segmentation": {"method": "per-source-episode"},
        "task": {"metadata": "env_args.env_name"},
        "outcome": {
            "success_definition": "any-step",
            "success": {"stream": "rewards"},
            "reward": {"stream": "rewards"},
        },
        "context": {
            "site": "robomimic",
            "cell": "lift-ph",
            "robot": "panda",
            "embodiment": "franka-panda",
            "operator": "0a1b2c3d4e5f6a7b",
            "source": "teleoperation",
        },
        "action_space": {
            "kind": "end-effector",
            "mode": "delta",
            "frame": "base",
            "gripper": "closed-positive",
        },
    }
    document.update(changes)
    return SiteProfile.model_validate(document)


def test_the_fixture_has_only_robomimics_own_fields() -> None:
    import h5py

    with h5py.File(SOURCE, "r") as handle:
        assert sorted(handle) == ["data", "mask"]
        assert sorted(handle["data"].attrs) == ["env_args", "total"]
        for name in handle["data"]:
            demo = handle["data"][name]
            assert sorted(demo.attrs) == ["model_file", "num_samples"]
            assert sorted(demo) == ["actions", "dones", "next_obs", "obs", "rewards", "states"]
        assert list(handle["data"]) == ["demo_10", "demo_2", "demo_7"]  # text order


def test_every_demo_is_read_in_robomimics_order_with_its_values() -> None:
    episodes = list(iter_episodes(SOURCE, profile()))
    want = EXPECTED["episodes"]
    assert [e.provenance.source_uri.rsplit("/", 1)[-1] for e in episodes] == [
        w["demo"] for w in want
    ]
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()
    for episode, expected in zip(episodes, want, strict=True):
        rows = expected["rows"]
        assert episode.n_frames == expected["n_frames"]
        assert episode.context.task == EXPECTED["task"]
        assert episode.provenance.source_sha256 == digest
        assert episode.outcome.success is expected["success"]
        assert episode.outcome.first_success_step == expected["first_success_step"]
        for feature in ("observation.state", "observation.object", "observation.joints"):
            np.testing.assert_allclose(
                episode.frames.observation[feature][rows], expected[feature], rtol=1e-6
            )
        np.testing.assert_allclose(episode.frames.action[rows], expected["action"], rtol=1e-6)
        np.testing.assert_allclose(episode.frames.next_reward[rows], expected["reward"])
        # robomimic stores no times: samples are 1 / rate_hz apart from t = 0.
        assert episode.context.start_time.timestamp() == 0.0


def test_the_demos_survive_the_store(tmp_path: Path) -> None:
    with EpisodeStore.open(tmp_path / "home") as store:
        receipt = ingest(SOURCE, profile(), store.add)
        assert len(receipt.added) == len(EXPECTED["episodes"])
        first = store.read(receipt.added[0].episode_id)
    want = EXPECTED["episodes"][0]
    np.testing.assert_allclose(first.frames.action[want["rows"]], want["action"], rtol=1e-6)


def test_a_missing_dataset_is_named_and_nothing_is_stored(tmp_path: Path) -> None:
    """A profile naming a key the file lacks: a clear error, the store as it was."""
    bad = profile(
        features={
            **profile().model_dump(mode="json")["features"],
            "observation.force": [{"stream": "obs/robot0_eef_wrench", "names": ["fx"]}],
        }
    )
    copy = tmp_path / "lift.hdf5"
    shutil.copy(SOURCE, copy)
    with EpisodeStore.open(tmp_path / "home") as store:
        before = tree_digest(tmp_path / "home")
        with pytest.raises(IngestError) as info:
            ingest(copy, bad, store.add)
        assert store.select() == []
    assert "obs/robot0_eef_wrench" in info.value.message
    assert "data/demo_2" in info.value.message
    assert tree_digest(tmp_path / "home") == before
