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


def test_linear_resampling_of_the_csv_style_interpolates_its_own_samples(
    shift: list[SimulatedEpisode], tmp_path: Path
) -> None:
    """The CSV logs at 100 Hz onto an 80 fps grid: most frames fall between two rows.

    Each frame must be the linear interpolation of the two rows around it (read here
    straight from the file), which zero-order hold is not, and the provenance must say
    ``linear``.
    """
    import pyarrow.csv as pacsv

    data, profile_path = write_style("csv", shift, tmp_path)
    profile = load_profile(profile_path)
    assert profile.resampling.value == "linear"
    column = profile.features["action"][0].fields[0]
    for got in iter_episodes(data, profile):
        table = pacsv.read_csv(
            got.provenance.source_uri,
            parse_options=pacsv.ParseOptions(delimiter=profile.csv.delimiter),
            convert_options=pacsv.ConvertOptions(decimal_point=profile.csv.decimal),
        )
        t_ms = table.column(profile.time.column).to_numpy().astype(np.float64)
        values = table.column(column).to_numpy().astype(np.float64)
        grid_ms = t_ms[0] + got.frames.timestamp * 1e3
        want = np.interp(grid_ms, t_ms, values)
        held = values[np.searchsorted(t_ms, grid_ms + 1e-6, side="right") - 1]
        assert np.abs(want - held).max() > 1e-3  # the two methods differ on this data
        np.testing.assert_allclose(got.frames.action[:, 0], want, rtol=1e-5, atol=1e-5)
        assert got.provenance.resampling.value == "linear"
