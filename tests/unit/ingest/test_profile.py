"""Site profiles: parsing, errors that name the key, round trip, fuzzing."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from dure.client.episodes.profile import SiteProfile, si_unit
from dure.client.errors import ProfileError
from dure.client.importers.profile_io import dump_profile, parse_profile

BASE: dict[str, Any] = {
    "version": "dure/site-profile/v1",
    "format": "rosbag",
    "fps": 80,
    "resampling": "zoh",
    "features": {
        "observation.state": [
            {
                "stream": "/joint_states",
                "fields": ["position"],
                "select": ["j2", "j1"],
                "unit": "deg",
            }
        ],
        "observation.force": [
            {
                "stream": "/ft",
                "fields": ["wrench.force.x", "wrench.torque.x"],
                "names": ["fx", "tx"],
                "unit": ["N", "N*m"],
            }
        ],
        "action": [
            {"stream": "/cmd", "fields": ["data"], "names": ["dx", "grip"], "unit": ["mm", "1"]}
        ],
    },
    "segmentation": {"method": "marker", "stream": "/marker"},
    "task": {"fixed": "pick"},
    "context": {
        "site": "acme",
        "cell": "c1",
        "robot": "r1",
        "embodiment": "ur5e",
        "operator": "0123456789abcdef",
        "source": "teleoperation",
    },
    "action_space": {"kind": "joint", "mode": "absolute", "frame": "base", "gripper": "width-m"},
}


def text(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False)


def test_a_valid_profile_parses_and_declares_si_features() -> None:
    profile = parse_profile(text(BASE))
    specs = profile.feature_specs()
    assert specs["observation.state"].names == ("j2", "j1")
    assert specs["observation.state"].units == ("rad", "rad")
    assert specs["observation.force"].units == ("N", "N*m")
    assert specs["action"].units == ("m", "1")


def test_dump_then_parse_is_the_identity() -> None:
    profile = parse_profile(text(BASE))
    assert parse_profile(dump_profile(profile)) == profile


def test_units_convert_to_si() -> None:
    assert si_unit("mm") == ("m", 1e-3)
    assert si_unit("deg")[0] == "rad"
    with pytest.raises(ValueError, match="unknown unit"):
        si_unit("furlong")


def mutate(path: list[Any], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (["features", "action", 0, "unit"], ["mmm", "1"], "features.action[0]"),
        (["fps"], 0, "fps"),
        (["format"], "bag", "format"),
        (["context", "operator"], "Alice Smith", "context.operator"),
        (["context", "colour"], "red", "context.colour"),
        (["segmentation", "stream"], KeyError, "segmentation"),
        (["task", "stream"], "/task", "task"),
        (["features", "observation.state"], KeyError, "features"),
        (["features", "action", 0, "fields"], [], "features"),
        (["action_space"], KeyError, "action_space"),
    ],
)
def test_errors_name_the_offending_key(path: list[Any], value: Any, expected: str) -> None:
    with pytest.raises(ProfileError) as info:
        parse_profile(text(mutate(path, value)), origin="site.yaml")
    assert info.value.message.startswith(f"site.yaml: {expected}")
    assert info.value.hint


def test_yaml_syntax_errors_give_the_position() -> None:
    with pytest.raises(ProfileError, match="line 3, column 1"):
        parse_profile("format: rosbag\nfps: [80\n", origin="p.yaml")


def test_a_non_mapping_is_refused() -> None:
    with pytest.raises(ProfileError, match="mapping"):
        parse_profile("- 1\n- 2\n")


def test_robomimic_needs_a_sample_rate() -> None:
    doc = mutate(["format"], "robomimic")
    doc["segmentation"] = {"method": "per-source-episode"}
    with pytest.raises(ProfileError, match="rate_hz"):
        parse_profile(text(doc))


yaml_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_arbitrary_text_gives_a_profile_or_our_error(body: str) -> None:
    with contextlib.suppress(ProfileError):
        parse_profile(body)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "format",
                "fps",
                "features",
                "context",
                "segmentation",
                "task",
                "action_space",
                "time",
                "outcome",
                "csv",
            ]
        ),
        max_size=4,
    ),
    yaml_values,
)
def test_fuzz_corrupted_sections_give_our_error(keys: list[str], junk: Any) -> None:
    doc = copy.deepcopy(BASE)
    for key in keys:
        doc[key] = junk
    try:
        result = parse_profile(text(doc))
    except ProfileError:
        return
    assert isinstance(result, SiteProfile)
