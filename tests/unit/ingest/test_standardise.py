"""The standardisation pipeline: conversion, reordering, resampling, validation errors."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from dure.client.episodes.profile import SiteProfile
from dure.client.episodes.standardise import RawEpisode, Stream, standardise
from dure.client.errors import IngestError

S = 1_000_000_000
START = 1_700_000_000 * S

PROFILE = SiteProfile.model_validate(
    {
        "format": "rosbag",
        "fps": 10,
        "resampling": "zoh",
        "features": {
            "observation.state": [
                {"stream": "/js", "fields": ["position"], "select": ["b", "a"], "unit": "deg"},
                {"stream": "/tcp", "fields": ["point.x"], "names": ["x"], "unit": "mm"},
            ],
            "action": [{"stream": "/cmd", "fields": ["data"], "names": ["u"]}],
        },
        "segmentation": {"method": "per-file"},
        "task": {"fixed": "pick"},
        "outcome": {"success": {"stream": "/ok"}},
        "validation": {"max_gap_s": 0.35, "ranges": {"action": [-1, 1]}},
        "context": {
            "site": "acme",
            "cell": "c1",
            "robot": "r1",
            "embodiment": "ur5e",
            "operator": "0123456789abcdef",
            "source": "teleoperation",
        },
        "action_space": {"kind": "joint", "mode": "absolute", "frame": "base", "gripper": "none"},
    }
)


def stream(name: str, rate: int, values: Any, names: tuple[str, ...] | None = None) -> Stream:
    array = np.asarray(values, dtype=np.float64)
    array = array.reshape(len(array), -1) if array.ndim == 1 else array
    t = START + (np.arange(len(array)) * (S // rate)).astype(np.int64)
    return Stream(name, t, array, names)


def raw(**changes: Any) -> RawEpisode:
    base = RawEpisode(
        source_uri="cell.bag",
        source_sha256="ab" * 32,
        index=3,
        start_ns=START,
        end_ns=START + S,
        features={
            "observation.state": [
                stream(
                    "/js",
                    50,
                    np.stack([np.arange(51), 90 + np.arange(51)], axis=1) * 1.0,
                    ("a", "b"),
                ),
                stream("/tcp", 20, np.full(21, 250.0)),
            ],
            "action": [stream("/cmd", 10, np.linspace(-1, 1, 11))],
        },
        task="pick",
        instruction="pick the part",
        success=stream("/ok", 10, [0] * 8 + [1, 1, 0]),
    )
    return dataclasses.replace(base, **changes)


def test_converts_reorders_and_holds_onto_the_grid() -> None:
    ep = standardise(raw(), PROFILE, "test/1")
    assert ep.n_frames == 11 and ep.fps == 10
    state = ep.frames.observation["observation.state"]
    # column 0 is source "b" (90 + k deg), column 1 is "a"; 50 Hz held at 10 Hz: k = 5 i
    np.testing.assert_allclose(state[:, 0], np.radians(90 + 5 * np.arange(11)), rtol=1e-6)
    np.testing.assert_allclose(state[:, 1], np.radians(5 * np.arange(11)), rtol=1e-6)
    np.testing.assert_allclose(state[:, 2], 0.25)
    assert ep.context.sensors.features["observation.state"].names == ("b", "a", "x")
    assert ep.context.sensors.features["observation.state"].units == ("rad", "rad", "m")
    assert ep.outcome.success and ep.outcome.first_success_step == 8
    assert ep.provenance.source_rates_hz["/js"] == 50.0
    assert ep.provenance.resampling.value == "zoh"


def replaced(name: str, index: int, new: Stream) -> dict[str, list[Stream]]:
    features = {k: list(v) for k, v in raw().features.items()}
    features[name][index] = new
    return features


def bad_js(values: Any, t: Any = None, names: tuple[str, ...] = ("a", "b")) -> Stream:
    base = stream("/js", 50, values, names)
    return base if t is None else dataclasses.replace(base, t_ns=np.asarray(t, dtype=np.int64))


GOOD = np.zeros((51, 2))


@pytest.mark.parametrize(
    ("features", "field", "words"),
    [
        (
            replaced(
                "observation.state",
                0,
                bad_js(np.where(np.arange(102).reshape(51, 2) == 7, np.nan, 0.0)),
            ),
            "/js",
            "NaN",
        ),
        (
            replaced(
                "observation.state",
                0,
                bad_js(GOOD, START + np.array([*[*range(0, 50 * S // 50, S // 50)][::-1], S])),
            ),
            "/js",
            "backwards",
        ),
        (replaced("observation.state", 0, bad_js(GOOD[:10])), "/js", "no sample for"),
        (
            replaced("observation.state", 0, bad_js(GOOD, names=("a", "c"))),
            "/js",
            "'b' is not among",
        ),
        (
            replaced("observation.state", 1, stream("/tcp", 20, np.full((21, 2), 1.0))),
            "/tcp",
            "has 2 elements",
        ),
        (replaced("action", 0, stream("/cmd", 10, np.linspace(-1, 3, 11))), "action[0]", "outside"),
        (replaced("action", 0, stream("/cmd", 10, np.zeros((0, 1)))), "/cmd", "no samples"),
    ],
)
def test_bad_input_names_file_episode_and_field(features: Any, field: str, words: str) -> None:
    with pytest.raises(IngestError) as info:
        standardise(raw(features=features), PROFILE, "test/1")
    message = info.value.message
    assert message.startswith(f"cell.bag, episode 3: {field}"), message
    assert words in message
    assert info.value.hint


def test_too_short_an_episode_is_refused() -> None:
    with pytest.raises(IngestError, match="frames"):
        standardise(raw(end_ns=START), PROFILE, "test/1")


LINEAR = SiteProfile.model_validate({**PROFILE.model_dump(), "resampling": "linear"})
ZOH = PROFILE


def five_hz_ramp() -> dict[str, list[Stream]]:
    """The action sampled at 5 Hz (between every other grid point), -1 .. 1."""
    return replaced("action", 0, stream("/cmd", 5, np.linspace(-1, 1, 6)))


def test_linear_resampling_interpolates_between_samples_and_says_so() -> None:
    ep = standardise(raw(features=five_hz_ramp()), LINEAR, "test/1")
    # grid points halfway between two 5 Hz samples get the mean of the two
    np.testing.assert_allclose(ep.frames.action[:, 0], np.linspace(-1, 1, 11), atol=1e-6)
    assert ep.provenance.resampling.value == "linear"


def test_zero_order_hold_holds_between_samples_and_says_so() -> None:
    ep = standardise(raw(features=five_hz_ramp()), ZOH, "test/1")
    held = np.repeat(np.linspace(-1, 1, 6), 2)[:11]
    np.testing.assert_allclose(ep.frames.action[:, 0], held, atol=1e-6)
    assert ep.provenance.resampling.value == "zoh"


def test_samples_stamped_at_the_same_time_are_accepted_and_the_last_wins() -> None:
    t = START + np.array([0, 3, 5, 5, 8, 10], dtype=np.int64) * (S // 10)
    cmd = Stream("/cmd", t, np.array([[0.0], [0.1], [0.2], [0.5], [0.8], [1.0]]))
    for profile in (LINEAR, ZOH):
        ep = standardise(raw(features=replaced("action", 0, cmd)), profile, "test/1")
        assert ep.frames.action[5, 0] == pytest.approx(0.5)


DAY = 86_400 * S


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        # one wrong stamp 31 years before the rest: the grid would be 10^10 frames
        ({"start_ns": START - 10**18}, "max_episode_s"),
        ({"end_ns": START + 2 * DAY}, "max_episode_s"),
        ({"end_ns": START - S}, "before it starts"),
        ({"end_ns": 2**63 - 1}, "out of range"),
        (
            {
                "success": Stream(
                    "/ok", START + np.array([0, 10**18, 1], np.int64), np.zeros((3, 1))
                )
            },
            "backwards",
        ),
    ],
)
def test_time_is_checked_and_the_span_bounded_before_the_grid_is_allocated(
    changes: dict[str, Any], words: str
) -> None:
    with pytest.raises(IngestError) as info:
        standardise(raw(**changes), PROFILE, "test/1")
    assert words in info.value.message, info.value.message
    assert info.value.hint


def test_a_longer_episode_passes_when_the_profile_raises_the_limit() -> None:
    two_s = SiteProfile.model_validate(
        {**PROFILE.model_dump(), "validation": {"max_gap_s": 3.0, "max_episode_s": 2.0}}
    )
    short = two_s.model_copy(
        update={"validation": two_s.validation.model_copy(update={"max_episode_s": 0.5})}
    )
    with pytest.raises(IngestError, match=r"max_episode_s = 0\.5 s"):
        standardise(raw(), short, "test/1")
    assert standardise(raw(), two_s, "test/1").n_frames == 11
