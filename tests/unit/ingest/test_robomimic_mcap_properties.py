"""Property tests over the robomimic and MCAP importers' metadata.

Hypothesis writes small files whose metadata a careless or hostile writer could
produce (wrong attribute types, huge or negative integers and counts, nested JSON in
``env_args``, unknown schema and message encodings, empty topics, out-of-order and
out-of-range log times), then ingests each into a fresh store.  Every case must end
as valid episodes or as :class:`IngestError` with a bounded one-line message and a
hint: never another exception, and after an error the store is byte for byte as it
was.
"""

from __future__ import annotations

import json
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st
from tests.builders.store import tree_digest

from dure.client.episodes.profile import SiteProfile
from dure.client.episodes.schema import Episode
from dure.client.errors import IngestError
from dure.client.importers.ingest import ingest
from dure.client.store import EpisodeStore

MAX_MESSAGE = 600
CONTEXT = {
    "site": "s",
    "cell": "c",
    "robot": "r",
    "embodiment": "e",
    "operator": "0123456789abcdef",
    "source": "teleoperation",
}
ACTION_SPACE = {"kind": "joint", "mode": "absolute", "frame": "base", "gripper": "none"}
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def note(what: str) -> None:
    """Count the outcome in hypothesis' statistics (--hypothesis-show-statistics)."""
    if currently_in_test_context():
        event(what)


def outcome(source: Path, profile: SiteProfile) -> list[Episode] | IngestError:
    """Ingest into a fresh store: the episodes stored, or the error (the store unchanged)."""
    with tempfile.TemporaryDirectory() as scratch, EpisodeStore.open(Path(scratch)) as store:
        before = tree_digest(Path(scratch))
        try:
            receipt = ingest(source, profile, store.add)
        except IngestError as exc:
            note("IngestError")
            assert "\n" not in exc.message, exc.message
            assert 0 < len(exc.message) <= MAX_MESSAGE, exc.message[:2000]
            assert exc.hint and "\n" not in exc.hint
            assert store.select() == []
            assert tree_digest(Path(scratch)) == before
            return exc
        note("imported")
        return [store.read(s.episode_id) for s in receipt.added]


# --- MCAP -----------------------------------------------------------------------------

FLOAT64 = "float64 data\n"
SCHEMA_ENCODINGS = st.sampled_from(["ros2msg", "ros2idl", "", "protobuf", "jsonschema", "ros1msg"])
MESSAGE_ENCODINGS = st.sampled_from(["cdr", "json", "", "protobuf", "ros1", "cbor"])
SCHEMA_NAMES = st.sampled_from(
    ["std_msgs/msg/Float64", "acme_msgs/msg/Level", "sensor_msgs/msg/JointState", "", "a/b/c/d"]
)
SCHEMA_TEXTS = st.sampled_from(
    [FLOAT64, "", "float64 data\nfloat64 data\n", "uint8[] data\n", "Missing data\n", "string x\n"]
)
SANE_TIME = st.integers(1_700_000_000_000_000_000, 1_700_000_003_000_000_000)
LOG_TIMES = st.one_of(SANE_TIME, st.integers(0, 2**64 - 1), st.sampled_from([0, 2**63 - 1, 2**63]))


def cdr_float64(value: float) -> bytes:
    return b"\x00\x01\x00\x00" + struct.pack("<d", value)


def mostly(plausible: Any, hostile: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The plausible value two times in three, else a hostile one."""
    return st.one_of(st.just(plausible), st.just(plausible), hostile)


@st.composite
def mcap_topics(draw: st.DrawFn, start: int) -> dict[str, Any]:
    """One topic's metadata and messages: each part plausible or hostile on its own."""
    n = draw(mostly(20, st.integers(0, 30)))
    times = draw(
        mostly(
            [start + k * 10_000_000 for k in range(n)],
            st.lists(LOG_TIMES, min_size=n, max_size=n),
        )
    )
    values = draw(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=n, max_size=n))
    junk = draw(st.lists(st.binary(max_size=24), min_size=n, max_size=n))
    corrupt = draw(mostly(set(), st.sets(st.integers(0, max(0, n - 1)), max_size=2)))
    return {
        "schema_name": draw(mostly("std_msgs/msg/Float64", SCHEMA_NAMES)),
        "schema_encoding": draw(mostly("ros2msg", SCHEMA_ENCODINGS)),
        "schema_text": draw(mostly(FLOAT64, SCHEMA_TEXTS)),
        "message_encoding": draw(mostly("cdr", MESSAGE_ENCODINGS)),
        "metadata": draw(st.dictionaries(st.text(max_size=8), st.text(max_size=30), max_size=2)),
        "times": times,
        "values": values,
        "payloads": [junk[k] if k in corrupt else cdr_float64(v) for k, v in enumerate(values)],
        "corrupt": bool(corrupt),
    }


def write_mcap(path: Path, topics: dict[str, dict[str, Any]], chunked: bool) -> None:
    from mcap.writer import CompressionType, Writer

    with path.open("wb") as stream:
        writer: Any = Writer(
            stream,
            compression=CompressionType.ZSTD,
            use_chunking=chunked,
            enable_data_crcs=True,
        )
        writer.start(profile="ros2", library="hypothesis")
        for topic, spec in topics.items():
            schema = writer.register_schema(
                name=spec["schema_name"],
                encoding=spec["schema_encoding"],
                data=spec["schema_text"].encode(),
            )
            channel = writer.register_channel(
                topic=topic,
                message_encoding=spec["message_encoding"],
                schema_id=schema,
                metadata=spec["metadata"],
            )
            for seq, (t, payload) in enumerate(zip(spec["times"], spec["payloads"], strict=True)):
                writer.add_message(
                    channel, log_time=t, data=payload, publish_time=t, sequence=seq % 2**32
                )
        writer.finish()


def mcap_profile(segmentation: dict[str, Any]) -> SiteProfile:
    return SiteProfile.model_validate(
        {
            "format": "mcap",
            "fps": 50,
            "time": {"clock": "receive"},
            "features": {
                "observation.state": [{"stream": "/level", "fields": ["data"], "names": ["lv"]}],
                "action": [{"stream": "/cmd", "fields": ["data"], "names": ["cmd"]}],
            },
            "segmentation": segmentation,
            "task": {"fixed": "fill"},
            "context": CONTEXT,
            "action_space": ACTION_SPACE,
        }
    )


SEGMENTATIONS = st.sampled_from(
    [{"method": "per-file"}, {"method": "time-gap", "gap_s": 0.05}, {"method": "time-gap"}]
)


@SETTINGS
@given(data=st.data(), start=SANE_TIME, chunked=st.booleans(), segmentation=SEGMENTATIONS)
def test_mcap_metadata_gives_episodes_or_our_bounded_error(
    data: st.DataObject, start: int, chunked: bool, segmentation: dict[str, Any]
) -> None:
    level, cmd = data.draw(mcap_topics(start)), data.draw(mcap_topics(start))
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "cell.mcap"
        write_mcap(path, {"/level": level, "/cmd": cmd}, chunked)
        result = outcome(path, mcap_profile(segmentation))
    if isinstance(result, IngestError):
        return
    # Read only what is genuinely ROS 2 CDR of the declared type, and read it right.
    for spec in (level, cmd):
        assert spec["message_encoding"] == "cdr", spec["message_encoding"]
        assert spec["schema_encoding"] in ("ros2msg", "ros2idl", ""), spec["schema_encoding"]
    if level["corrupt"]:
        return  # junk bytes that happen to parse as CDR cannot be told from data
    seen = {float(np.float32(v)) for v in level["values"]}
    for episode in result:
        got = set(episode.frames.observation["observation.state"][:, 0].tolist())
        assert got <= seen, "every state value is one that was written"


@SETTINGS
@given(cmd=mcap_topics(1_700_000_000_000_000_000), chunked=st.booleans())
def test_an_empty_topic_gives_our_error(cmd: dict[str, Any], chunked: bool) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "cell.mcap"
        empty = {**cmd, "times": [], "values": [], "payloads": []}
        write_mcap(path, {"/level": empty, "/cmd": cmd}, chunked)
        result = outcome(path, mcap_profile({"method": "per-file"}))
    assert isinstance(result, IngestError)


# --- robomimic ------------------------------------------------------------------------

HUGE = st.sampled_from([2**63 - 1, -(2**63), 2**64 - 1, 10**30, -1, 0])
ATTRIBUTE = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    HUGE,
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.lists(st.integers(-5, 5), max_size=3),
)
JSON_LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10)
)
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)


def nested(depth: int) -> str:
    return '{"env_name": ' + "[" * depth + "1" + "]" * depth + "}"


ENV_ARGS = st.one_of(
    st.builds(lambda v: json.dumps({"env_name": v, "type": 1, "env_kwargs": {}}), JSON_VALUE),
    st.builds(json.dumps, JSON_VALUE),
    st.builds(nested, st.sampled_from([10, 1000, 100_000])),
    st.sampled_from(['{"env_name": 1' + "0" * 5000 + "}", "{", "", "\udcff", "NaN"]),
    st.text(max_size=40),
    st.binary(max_size=40),
)


@st.composite
def robomimic_files(draw: st.DrawFn) -> dict[str, Any]:
    """A robomimic file: each part plausible or hostile on its own."""
    n_demos = draw(mostly(2, st.integers(0, 3)))
    demos = {}
    for k in range(n_demos):
        name = draw(mostly(f"demo_{k}", st.sampled_from(["demo_10", "demo_x", "demo_-1", "demo_"])))
        rows = draw(mostly(10, st.integers(0, 12)))
        demos[name] = {
            "rows": rows,
            "obs_rows": draw(mostly(rows, st.sampled_from([rows + 1, max(0, rows - 1)]))),
            "dtype": draw(mostly("<f8", st.sampled_from(["<f4", "<i8", "|u1", "|S4", "|b1"]))),
            "attrs": draw(
                mostly(
                    {"num_samples": rows},
                    st.dictionaries(
                        st.sampled_from(["num_samples", "start_time_ns", "model_file", "task"]),
                        ATTRIBUTE,
                        max_size=3,
                    ),
                )
            ),
        }
    data_attrs = draw(
        mostly({"total": 20}, st.dictionaries(st.sampled_from(["total"]), ATTRIBUTE, max_size=1))
    )
    env_args = draw(mostly(json.dumps({"env_name": "Lift", "type": 1}), st.none() | ENV_ARGS))
    return {"demos": demos, "data_attrs": data_attrs, "env_args": env_args}


def store_attribute(attrs: Any, key: str, value: Any) -> bool:
    """Store ``value`` as an HDF5 attribute if h5py can; return whether it did."""
    try:
        attrs[key] = np.void(value) if isinstance(value, bytes) and value else value
    except (TypeError, ValueError, OverflowError):
        return False
    return True


def write_robomimic(path: Path, spec: dict[str, Any]) -> None:
    import h5py

    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as handle:
        data = handle.create_group("data")
        for key, value in spec["data_attrs"].items():
            store_attribute(data.attrs, key, value)
        if spec["env_args"] is not None:
            store_attribute(data.attrs, "env_args", spec["env_args"])
        for name, demo in spec["demos"].items():
            group = data.create_group(name)
            for key, value in demo["attrs"].items():
                store_attribute(group.attrs, key, value)
            rows, dtype = demo["rows"], np.dtype(demo["dtype"])
            actions = rng.uniform(-1, 1, size=(rows, 7))
            group.create_dataset("actions", data=actions.astype(dtype))
            group.create_dataset("rewards", data=np.ones(rows))
            group.create_dataset("dones", data=np.zeros(rows, dtype=np.int64))
            group.create_dataset("obs/robot0_eef_pos", data=rng.normal(size=(demo["obs_rows"], 3)))


def robomimic_profile(task: dict[str, Any]) -> SiteProfile:
    return SiteProfile.model_validate(
        {
            "format": "robomimic",
            "fps": 20,
            "time": {"rate_hz": 20},
            "features": {
                "observation.state": [
                    {"stream": "obs/robot0_eef_pos", "names": ["x", "y", "z"], "unit": "m"}
                ],
                "action": [{"stream": "actions", "names": [f"a{i}" for i in range(7)]}],
            },
            "segmentation": {"method": "per-source-episode"},
            "task": task,
            "outcome": {"success": {"stream": "rewards"}, "reward": {"stream": "rewards"}},
            "context": CONTEXT,
            "action_space": ACTION_SPACE,
        }
    )


TASKS = st.sampled_from(
    [{"metadata": "env_args.env_name"}, {"metadata": "task"}, {"fixed": "lift"}]
)


@SETTINGS
@given(spec=robomimic_files(), task=TASKS)
def test_robomimic_metadata_gives_episodes_or_our_bounded_error(
    spec: dict[str, Any], task: dict[str, Any]
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "lift.hdf5"
        write_robomimic(path, spec)
        result = outcome(path, robomimic_profile(task))
    if isinstance(result, IngestError):
        return
    for episode in result:
        assert episode.n_frames >= 2
        assert isinstance(episode.context.task, str) and episode.context.task


def _check(build: Callable[[Path], None], profile: SiteProfile) -> IngestError:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "source"
        build(path)
        result = outcome(path, profile)
    assert isinstance(result, IngestError)
    return result


# --- regressions the properties found, as examples ------------------------------------


def plain_topic(**changes: Any) -> dict[str, Any]:
    start = 1_700_000_000_000_000_000
    values = [float(k) / 4 for k in range(20)]
    spec = {
        "schema_name": "std_msgs/msg/Float64",
        "schema_encoding": "ros2msg",
        "schema_text": FLOAT64,
        "message_encoding": "cdr",
        "metadata": {},
        "times": [start + k * 10_000_000 for k in range(20)],
        "values": values,
        "payloads": [cdr_float64(v) for v in values],
        "corrupt": False,
    }
    return spec | changes


def mcap_case(topics: dict[str, dict[str, Any]]) -> list[Episode] | IngestError:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "cell.mcap"
        write_mcap(path, {"/level": plain_topic(), "/cmd": plain_topic()} | topics, True)
        return outcome(path, mcap_profile({"method": "per-file"}))


def test_a_topic_not_in_cdr_is_refused_not_misread() -> None:
    """CDR bytes on a channel declared json: once decoded as CDR regardless."""
    result = mcap_case({"/level": plain_topic(message_encoding="json")})
    assert isinstance(result, IngestError)
    assert "/level" in result.message and "'json'" in result.message


def test_a_definition_contradicting_the_standard_type_is_refused() -> None:
    """A bag whose Float64 is two float32: once read with the standard layout (garbage)."""
    result = mcap_case({"/level": plain_topic(schema_text="float32 data\nfloat32 pad\n")})
    assert isinstance(result, IngestError)
    assert "std_msgs/msg/Float64" in result.message and "definition" in result.message


def test_an_unparsable_definition_gives_one_line() -> None:
    result = mcap_case({"/level": plain_topic(schema_name="", schema_text="Missing data\n")})
    assert isinstance(result, IngestError)  # outcome() checks one line, bounded


def test_a_broken_definition_on_an_unused_topic_does_not_matter() -> None:
    """Only the profile's topics are decoded, so only their definitions must parse."""
    broken = plain_topic(schema_name="acme/msg/Broken", schema_text="float64 !data\n")
    result = mcap_case({"/camera/meta": broken})
    assert isinstance(result, list) and len(result) == 1


def test_a_custom_type_defined_in_idl_is_read() -> None:
    idl = (
        "module acme_msgs {\n  module msg {\n    struct Level {\n      double data;\n"
        "    };\n  };\n};\n"
    )
    custom = plain_topic(schema_name="acme_msgs/msg/Level", schema_encoding="ros2idl")
    result = mcap_case({"/level": custom | {"schema_text": idl}})
    assert isinstance(result, list) and len(result) == 1
    np.testing.assert_array_equal(
        result[0].frames.observation["observation.state"][:3, 0],
        [0.0, 0.5, 1.0],  # 50 fps
    )


def lift_copy(scratch: Path) -> Path:
    """A copy of the third-party robomimic fixture, to be edited by a test."""
    fixture = Path(__file__).resolve().parents[2] / "fixtures" / "thirdparty" / "robomimic"
    path = scratch / "lift.hdf5"
    path.write_bytes((fixture / "lift_low_dim.hdf5").read_bytes())
    return path


def edited_robomimic(edit: Callable[[Any, Path], None]) -> list[Episode] | IngestError:
    import h5py

    with tempfile.TemporaryDirectory() as scratch:
        path = lift_copy(Path(scratch))
        with h5py.File(path, "a") as handle:
            edit(handle, Path(scratch))
        return outcome(path, robomimic_profile({"metadata": "env_args.env_name"}))


def outside_file(scratch: Path, rows: int = 14) -> Path:
    import h5py

    other = scratch / "elsewhere.h5"
    with h5py.File(other, "w") as handle:
        handle.create_dataset("secret", data=np.full((rows, 3), 7.0))
    return other


def test_an_external_link_out_of_the_file_is_refused() -> None:
    """The provenance hashes one file; an external link once read another, unnamed."""
    import h5py

    def edit(handle: Any, scratch: Path) -> None:
        del handle["data/demo_2/obs/robot0_eef_pos"]
        handle["data/demo_2/obs/robot0_eef_pos"] = h5py.ExternalLink(
            str(outside_file(scratch)), "/secret"
        )

    result = edited_robomimic(edit)
    assert isinstance(result, IngestError)
    assert "external link" in result.message and "elsewhere.h5" in result.message


def test_a_virtual_dataset_reading_another_file_is_refused() -> None:
    import h5py

    def edit(handle: Any, scratch: Path) -> None:
        layout = h5py.VirtualLayout(shape=(14, 3), dtype="f8")
        layout[:] = h5py.VirtualSource(str(outside_file(scratch)), "secret", shape=(14, 3))
        del handle["data/demo_2/obs/robot0_eef_pos"]
        handle["data/demo_2/obs"].create_virtual_dataset("robot0_eef_pos", layout)

    result = edited_robomimic(edit)
    assert isinstance(result, IngestError) and "virtual dataset" in result.message


def test_external_raw_storage_is_refused() -> None:
    def edit(handle: Any, scratch: Path) -> None:
        raw = scratch / "raw.bin"
        raw.write_bytes(np.full((14, 3), 7.0).tobytes())
        del handle["data/demo_2/obs/robot0_eef_pos"]
        handle["data/demo_2/obs"].create_dataset(
            "robot0_eef_pos", shape=(14, 3), dtype="<f8", external=[(str(raw), 0, 14 * 3 * 8)]
        )

    result = edited_robomimic(edit)
    assert isinstance(result, IngestError) and "external raw storage" in result.message


def test_a_dataset_declared_huge_is_refused_before_it_is_read() -> None:
    """An unwritten chunked dataset costs nothing in the file but terabytes once read."""

    def edit(handle: Any, scratch: Path) -> None:
        del handle["data/demo_2/obs/robot0_eef_pos"]
        handle["data/demo_2/obs"].create_dataset(
            "robot0_eef_pos", shape=(10**11, 3), dtype="<f8", chunks=(1024, 3)
        )

    result = edited_robomimic(edit)
    assert isinstance(result, IngestError)
    assert "100000000000 rows" in result.message and "robot0_eef_pos" in result.message

    def wide(handle: Any, scratch: Path) -> None:  # one row per action, 10^11 columns each
        del handle["data/demo_2/obs/robot0_eef_pos"]
        handle["data/demo_2/obs"].create_dataset(
            "robot0_eef_pos", shape=(14, 10**11), dtype="<f8", chunks=(14, 1024)
        )

    result = edited_robomimic(wide)
    assert isinstance(result, IngestError)
    assert "1400000000000 values" in result.message, result.message


def test_the_optional_start_time_must_be_an_integer_in_range() -> None:
    for value in (2**63 - 1, 1.7e18, "1700000000"):

        def edit(handle: Any, scratch: Path, value: Any = value) -> None:
            handle["data/demo_2"].attrs["start_time_ns"] = value

        result = edited_robomimic(edit)
        assert isinstance(result, IngestError), value
        assert "start_time_ns" in result.message, result.message


def test_deeply_nested_env_args_is_named() -> None:
    def edit(handle: Any, scratch: Path) -> None:
        handle["data"].attrs["env_args"] = nested(100_000)

    result = edited_robomimic(edit)
    assert isinstance(result, IngestError) and "env_args" in result.message
