"""Dure's ROS 2 / MCAP importer on files written by the ``mcap`` package's own writers.

The fixtures (``tests/fixtures/thirdparty/mcap``, made by ``make_mcap_fixtures.py``)
are laid out as ``ros2 bag record -s mcap`` writes them, by ``mcap_ros2.writer.Writer``
and by ``mcap.writer.Writer``, not by rosbags (which the simulator uses).  The values
each canonical episode must hold were recorded beside them by a naive reference.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dure.client.episodes.profile import SiteProfile
from dure.client.episodes.schema import Episode, Resampling
from dure.client.importers.ingest import ingest, iter_episodes
from dure.client.store import EpisodeStore

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "thirdparty" / "mcap"
FILES = ("cell_ros2_writer.mcap", "cell_mcap_writer.mcap")
EXPECTED: dict[str, Any] = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))
JOINTS = EXPECTED["joint_names"]
WRENCH = [f"wrench.{k}.{a}" for k in ("force", "torque") for a in "xyz"]
TWIST = [f"twist.{k}.{a}" for k in ("linear", "angular") for a in "xyz"]


def profile(resampling: str = "zoh", clock: str = "header") -> SiteProfile:
    """The site profile a UR5e cell's integrator would write for this recording."""
    return SiteProfile.model_validate(
        {
            "format": "mcap",
            "fps": EXPECTED["fps"],
            "resampling": resampling,
            "time": {"clock": clock},
            "features": {
                "observation.state": [
                    {
                        "stream": "/gripper/state",
                        "fields": ["opening_mm"],
                        "names": ["gripper_opening"],
                        "unit": "mm",
                    },
                    {
                        "stream": "/gripper/state",
                        "fields": ["force_n"],
                        "names": ["gripper_force"],
                        "unit": "N",
                    },
                ],
                "observation.joints": [
                    {"stream": "/joint_states", "fields": ["position"], "select": JOINTS}
                ],
                "observation.velocity": [
                    {
                        "stream": "/joint_states",
                        "fields": ["velocity"],
                        "select": JOINTS,
                        "unit": "rad/s",
                    }
                ],
                "observation.force": [
                    {
                        "stream": "/force_torque_sensor/wrench",
                        "fields": WRENCH,
                        "names": ["fx", "fy", "fz", "tx", "ty", "tz"],
                        "unit": ["N"] * 3 + ["N*m"] * 3,
                    }
                ],
                "action": [
                    {
                        "stream": "/servo_node/delta_twist_cmds",
                        "fields": TWIST,
                        "names": ["vx", "vy", "vz", "wx", "wy", "wz"],
                        "unit": ["m/s"] * 3 + ["rad/s"] * 3,
                    }
                ],
            },
            "segmentation": {"method": "per-file"},
            "task": {"stream": "/task"},
            "context": {
                "site": "acme",
                "cell": "ur5e-3",
                "robot": "ur5e-3",
                "embodiment": "ur5e",
                "operator": "3f2a9c0d11e4b7a8",
                "source": "teleoperation",
            },
            "action_space": {
                "kind": "end-effector",
                "mode": "delta",
                "frame": "tool0",
                "gripper": "width-m",
            },
        }
    )


def the_episode(name: str, prof: SiteProfile) -> Episode:
    episodes = list(iter_episodes(FIXTURES / name, prof))
    assert len(episodes) == 1
    return episodes[0]


def assert_frames(episode: Episode, expected: dict[str, list[list[float]]]) -> None:
    rows = EXPECTED["frames"]
    for feature, want in expected.items():
        got = episode.frames.action if feature == "action" else episode.frames.observation[feature]
        np.testing.assert_allclose(
            got[rows], np.asarray(want, dtype=np.float32), rtol=1e-6, atol=1e-7, err_msg=feature
        )


@pytest.mark.parametrize("name", FILES)
def test_the_fixtures_are_what_a_ros2_recorder_writes(name: str) -> None:
    """Read back with mcap's own reader: ros2 profile, ros2msg schemas, CDR, late receive."""
    from mcap.reader import make_reader

    with (FIXTURES / name).open("rb") as stream:
        reader = make_reader(stream)
        assert reader.get_header().profile == "ros2"
        summary = reader.get_summary()
        assert summary is not None
        assert {s.encoding for s in summary.schemas.values()} == {"ros2msg"}
        assert {c.message_encoding for c in summary.channels.values()} == {"cdr"}
        deps = [s.data.decode() for s in summary.schemas.values() if s.name.endswith("JointState")]
        assert "MSG: std_msgs/" in deps[0] and "=" * 80 in deps[0]
        latencies = [
            m.log_time
            - int(np.frombuffer(m.data[4:8], "<i4")[0]) * 10**9
            - int(np.frombuffer(m.data[8:12], "<u4")[0])
            for _, c, m in reader.iter_messages(topics=["/joint_states"])
        ]
    assert min(latencies) > 0, "receive times must trail the header stamps"
    assert EXPECTED["published_joint_order"] != EXPECTED["joint_names"]


@pytest.mark.parametrize("name", FILES)
def test_zero_order_hold_on_the_header_clock_matches_the_reference(name: str) -> None:
    episode = the_episode(name, profile())
    assert episode.fps == EXPECTED["fps"]
    assert episode.n_frames == EXPECTED["n_frames"]
    assert episode.context.task == EXPECTED["task"]
    assert episode.context.start_time.timestamp() == pytest.approx(EXPECTED["start_ns"] / 1e9)
    assert episode.provenance.resampling is Resampling.ZOH
    assert episode.provenance.source_rates_hz == pytest.approx(
        {k: float(v) for k, v in EXPECTED["source_rates_hz"].items()}, rel=1e-3
    )
    digest = hashlib.sha256((FIXTURES / name).read_bytes()).hexdigest()
    assert episode.provenance.source_sha256 == digest
    assert episode.context.sensors.features["observation.joints"].names == tuple(JOINTS)
    assert episode.context.sensors.features["observation.state"].units == ("m", "N")
    assert_frames(episode, EXPECTED["zoh"])


@pytest.mark.parametrize("name", FILES)
def test_linear_resampling_matches_the_reference(name: str) -> None:
    zoh, linear = EXPECTED["zoh"]["observation.joints"], EXPECTED["linear"]["observation.joints"]
    assert not np.allclose(zoh, linear), "the reference must tell the two methods apart"
    episode = the_episode(name, profile(resampling="linear"))
    assert episode.provenance.resampling is Resampling.LINEAR
    assert_frames(episode, EXPECTED["linear"])


@pytest.mark.parametrize("name", FILES)
def test_the_receive_clock_uses_the_recorders_times(name: str) -> None:
    header, receive = EXPECTED["zoh"], EXPECTED["zoh_receive_clock"]
    assert not np.allclose(header["observation.joints"], receive["observation.joints"])
    assert_frames(the_episode(name, profile(clock="receive")), receive)


def test_both_writers_give_the_same_episode_and_it_survives_the_store(tmp_path: Path) -> None:
    """The store keeps what was read: the stored episode equals the one standardised."""
    first, second = (the_episode(name, profile()) for name in FILES)
    for column, values in first.frames.columns().items():
        np.testing.assert_array_equal(values, second.frames.columns()[column], err_msg=column)
    with EpisodeStore.open(tmp_path / "home") as store:
        receipt = ingest(FIXTURES / FILES[0], profile(), store.add)
        (summary,) = receipt.added
        stored = store.read(summary.episode_id)
    assert stored.provenance.source_sha256 == first.provenance.source_sha256
    assert_frames(stored, EXPECTED["zoh"])
