"""Round trip: the same simulated episodes, logged in every native style, ingest the same.

Each style is written by its format's own library (rosbags' writer, pyarrow, h5py,
Python's csv) and ingested with the site profile written next to it; the canonical
episodes must match the simulation's ground truth within the resampling tolerance
(tests/integration/ingest/envelope.py), with the same tasks, outcomes and start times.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from tests.integration.ingest.envelope import assert_within_envelope, lag_for

from dure.client.episodes.schema import Episode
from dure.client.importers.ingest import ingest, iter_episodes
from dure.client.importers.profile_io import load_profile
from dure.client.sim.factory import DATA_DIRS, site_profile
from dure.client.sim.styles import STYLES
from dure.client.sim.truth import FEATURE_NAMES, FEATURE_UNITS, SimulatedEpisode
from dure.client.sim.writers import write_native
from dure.client.store import EpisodeStore


def write_style(style: str, shift: list[SimulatedEpisode], out: Path) -> tuple[Path, Path]:
    from dure.client.importers.profile_io import dump_profile

    data = out / DATA_DIRS[style]
    write_native(data, shift, STYLES[style])
    profile_path = out / "site-profile.yaml"
    profile_path.write_text(dump_profile(site_profile(STYLES[style])), encoding="utf-8")
    return data, profile_path


def rates(style: str) -> dict[str, float]:
    """Source rate feeding each canonical feature (the slowest, for the envelope)."""
    r = STYLES[style].rates_hz
    if style in ("rosbag", "mcap"):
        return {
            "observation.state": min(r["pose"], r["gripper"]),
            "observation.joints": r["joints"],
            "observation.force": r["force"],
            "action": 80,
        }
    if style == "csv":
        return dict.fromkeys(FEATURE_NAMES, r["all"])
    return dict.fromkeys(FEATURE_NAMES, 80)


def check(style: str, got: Episode, want: SimulatedEpisode) -> None:
    linear = STYLES[style].resampling.value == "linear"
    assert got.context.task == want.task
    start = datetime.fromtimestamp(want.start_ns / 1e9, tz=UTC)
    assert abs((got.context.start_time - start).total_seconds()) < 1e-3  # CSV stamps in ms
    slowest = min(rates(style).values())
    assert want.n_frames - lag_for(slowest) <= got.n_frames <= want.n_frames
    for name, rate in rates(style).items():
        spec = got.context.sensors.features[name]
        assert spec.names == FEATURE_NAMES[name] and spec.units == FEATURE_UNITS[name]
        array = got.frames.action if name == "action" else got.frames.observation[name]
        assert_within_envelope(
            array, want.features[name], lag_for(rate, linear=linear), label=f"{style} {name}"
        )
    signal_lag = lag_for(rates(style)["action"])  # success and reward always hold (ZOH)
    for got_signal, want_signal, label in [
        (got.frames.next_success, want.success, "next.success"),
        (got.frames.next_reward, want.reward, "next.reward"),
    ]:
        column = np.asarray(got_signal, dtype=np.float32)[:, None]
        truth = np.asarray(want_signal, dtype=np.float64)[:, None]
        assert_within_envelope(column, truth, signal_lag, label=f"{style} {label}")
    assert got.outcome.success == bool(got.frames.next_success.any())
    assert got.provenance.resampling == STYLES[style].resampling


@pytest.mark.parametrize("style", sorted(STYLES))
def test_every_native_style_ingests_to_the_simulated_truth(
    style: str, shift: list[SimulatedEpisode], tmp_path: Path
) -> None:
    data, profile_path = write_style(style, shift, tmp_path)
    episodes = list(iter_episodes(data, load_profile(profile_path)))
    assert len(episodes) == len(shift)
    for got in episodes:
        start_ns = got.context.start_time.timestamp() * 1e9
        want = min(shift, key=lambda ep: abs(ep.start_ns - start_ns))
        check(style, got, want)
    assert {ep.context.task for ep in episodes} == {ep.task for ep in shift}


def test_the_styles_agree_with_each_other_exactly_at_80_hz(
    shift: list[SimulatedEpisode], tmp_path: Path
) -> None:
    """LeRobot v2.1, v3.0 and robomimic log at the control rate: identical frames."""
    commitments = []
    for style in ("lerobot-v21", "lerobot-v3", "robomimic"):
        data, profile_path = write_style(style, shift, tmp_path / style)
        eps = sorted(
            iter_episodes(data, load_profile(profile_path)), key=lambda e: e.context.start_time
        )
        commitments.append([ep.frames.observation["observation.joints"].tobytes() for ep in eps])
    assert commitments[0] == commitments[1] == commitments[2]


def test_ingest_commits_through_the_store_and_a_second_ingest_adds_nothing(
    shift: list[SimulatedEpisode], tmp_path: Path
) -> None:
    data, profile_path = write_style("rosbag", shift, tmp_path / "src")
    profile = load_profile(profile_path)
    with EpisodeStore.open(tmp_path / "home") as store:
        receipt = ingest(data, profile, store.add)
        assert len(receipt.added) == len(shift)
        again = ingest(data, profile, store.add)
        assert not again.added and len(again.skipped) == len(shift)
        stored = store.read(receipt.added[0].episode_id)
        assert stored.context.task == shift[0].task
        assert stored.provenance.source_rates_hz["/robot/joint_states"] == 500.0
