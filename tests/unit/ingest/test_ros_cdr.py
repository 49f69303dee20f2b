"""The raw-CDR batch decoder agrees with rosbags' own deserialisation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rosbags.typesys import Stores, get_typestore

from dure.client.importers.ros_cdr import decode_batch

TS = get_typestore(Stores.ROS2_HUMBLE)
T = TS.types
finite = st.floats(-1e9, 1e9, allow_nan=False, width=64)
frame_ids = st.text(alphabet="abcdefgh_/", max_size=12)


def header(sec: int, nanosec: int, frame: str) -> Any:
    return T["std_msgs/msg/Header"](
        stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=frame
    )


def joint_state(sec: int, names: list[str], pos: list[float], frame: str) -> Any:
    empty = np.zeros(0, dtype=np.float64)
    return T["sensor_msgs/msg/JointState"](
        header=header(sec, 7, frame),
        name=names,
        position=np.array(pos, dtype=np.float64),
        velocity=np.array(pos[::-1], dtype=np.float64),
        effort=empty,
    )


def ser(msg: Any, typename: str) -> bytes:
    return bytes(TS.serialize_cdr(msg, typename))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.text(alphabet="abcxyz_0123456789", min_size=1, max_size=10),
        min_size=1,
        max_size=8,
        unique=True,
    ),
    st.integers(1, 20),
    frame_ids,
    st.data(),
)
def test_joint_state_batches_match_rosbags(
    names: list[str], m: int, frame: str, data: st.DataObject
) -> None:
    rows = [data.draw(st.lists(finite, min_size=len(names), max_size=len(names))) for _ in range(m)]
    raws = [
        ser(joint_state(1000 + k, names, row, frame), "sensor_msgs/msg/JointState")
        for k, row in enumerate(rows)
    ]
    batch = decode_batch("sensor_msgs/msg/JointState", raws)
    assert batch is not None and batch.stamps_ns is not None
    assert batch.element_names == tuple(names)
    for k, raw in enumerate(raws):
        ref: Any = TS.deserialize_cdr(raw, "sensor_msgs/msg/JointState")
        np.testing.assert_array_equal(batch.fields["position"][k], ref.position)
        np.testing.assert_array_equal(batch.fields["velocity"][k], ref.velocity)
        assert batch.stamps_ns[k] == ref.header.stamp.sec * 10**9 + ref.header.stamp.nanosec


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(finite, min_size=7, max_size=7), min_size=1, max_size=10), frame_ids)
def test_fixed_geometry_types_match_rosbags(rows: list[list[float]], frame: str) -> None:
    vec = T["geometry_msgs/msg/Vector3"]
    point = T["geometry_msgs/msg/Point"]
    cases: list[tuple[str, Callable[[list[float]], Any], list[str]]] = [
        (
            "geometry_msgs/msg/WrenchStamped",
            lambda r: T["geometry_msgs/msg/WrenchStamped"](
                header=header(5, 9, frame),
                wrench=T["geometry_msgs/msg/Wrench"](
                    force=vec(x=r[0], y=r[1], z=r[2]), torque=vec(x=r[3], y=r[4], z=r[5])
                ),
            ),
            [
                "wrench.force.x",
                "wrench.force.y",
                "wrench.force.z",
                "wrench.torque.x",
                "wrench.torque.y",
                "wrench.torque.z",
            ],
        ),
        (
            "geometry_msgs/msg/PoseStamped",
            lambda r: T["geometry_msgs/msg/PoseStamped"](
                header=header(5, 9, frame),
                pose=T["geometry_msgs/msg/Pose"](
                    position=point(x=r[0], y=r[1], z=r[2]),
                    orientation=T["geometry_msgs/msg/Quaternion"](x=r[3], y=r[4], z=r[5], w=r[6]),
                ),
            ),
            ["pose.position.x", "pose.position.z", "pose.orientation.x", "pose.orientation.w"],
        ),
        ("std_msgs/msg/Float64", lambda r: T["std_msgs/msg/Float64"](data=r[0]), ["data"]),
    ]
    for typename, build, paths in cases:
        raws = [ser(build(r), typename) for r in rows]
        batch = decode_batch(typename, raws)
        assert batch is not None
        for k, raw in enumerate(raws):
            ref: Any = TS.deserialize_cdr(raw, typename)
            for path in paths:
                value = ref
                for part in path.split("."):
                    value = getattr(value, part)
                assert batch.fields[path][k, 0] == value


def test_multi_array_and_bool_match_rosbags() -> None:
    layout = T["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
    raws = [
        ser(
            T["std_msgs/msg/Float64MultiArray"](layout=layout, data=np.array([k, -k, 0.5])),
            "std_msgs/msg/Float64MultiArray",
        )
        for k in range(5)
    ]
    batch = decode_batch("std_msgs/msg/Float64MultiArray", raws)
    assert batch is not None
    np.testing.assert_array_equal(batch.fields["data"][3], [3, -3, 0.5])
    bools = [ser(T["std_msgs/msg/Bool"](data=b), "std_msgs/msg/Bool") for b in (True, False, True)]
    decoded = decode_batch("std_msgs/msg/Bool", bools)
    assert decoded is not None
    np.testing.assert_array_equal(decoded.fields["data"][:, 0], [1.0, 0.0, 1.0])


def test_batches_it_cannot_trust_fall_back() -> None:
    a = ser(joint_state(1, ["j1", "j2"], [1.0, 2.0], "base"), "sensor_msgs/msg/JointState")
    swapped = ser(joint_state(1, ["j2", "j1"], [1.0, 2.0], "base"), "sensor_msgs/msg/JointState")
    longer = ser(joint_state(1, ["j1", "j22"], [1.0, 2.0], "base"), "sensor_msgs/msg/JointState")
    assert len(a) == len(swapped)
    assert (
        decode_batch("sensor_msgs/msg/JointState", [a, swapped]) is None
    )  # same length, other names
    assert decode_batch("sensor_msgs/msg/JointState", [a, longer]) is None
    assert decode_batch("sensor_msgs/msg/JointState", []) is None
    assert (
        decode_batch(
            "std_msgs/msg/String", [ser(T["std_msgs/msg/String"](data="x"), "std_msgs/msg/String")]
        )
        is None
    )
    big_endian = b"\x00\x00" + a[2:]
    assert decode_batch("sensor_msgs/msg/JointState", [big_endian]) is None


@pytest.mark.parametrize("cut", [0, 3, 10, 30])
def test_truncated_messages_fall_back_or_decode_nothing_wrong(cut: int) -> None:
    a = ser(joint_state(1, ["j1", "j2"], [1.0, 2.0], "base"), "sensor_msgs/msg/JointState")
    assert decode_batch("sensor_msgs/msg/JointState", [a[:cut]]) is None
