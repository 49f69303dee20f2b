"""A simulated cell that logs like a ROS 2 robot: a rosbag2 (SQLite 3 or MCAP storage).

Written by ``rosbags.rosbag2.Writer`` with standard message types, each topic at
its own rate, every message stamped (header stamp and bag time alike):

========================  ==============================  =====================================
topic (rosbag / mcap)     type                            content
========================  ==============================  =====================================
joint states              sensor_msgs/msg/JointState      7 arm joints, shuffled order, deg|rad
wrench                    geometry_msgs/msg/WrenchStamped hand wrench, N and N*m
gripper                   std_msgs/msg/Float64            gripper opening (1)
tcp                       geometry_msgs/msg/PointStamped  hand position, mm|m
object 0 / object 1       geometry_msgs/msg/PoseStamped   object pose, mm|m and quaternion
goal                      geometry_msgs/msg/PointStamped  goal position, mm|m
command                   std_msgs/msg/Float64MultiArray  the 4-D action at 80 Hz
success / reward          std_msgs/msg/Bool / Float64     ``info["success"]``, reward, 80 Hz
task                      std_msgs/msg/String             task name, once per episode
marker (rosbag only)      std_msgs/msg/String             "start" / "end"
========================  ==============================  =====================================

The ``rosbag`` style segments by marker; the ``mcap`` style leaves a 1 s silence
between episodes and is cut by time gap.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from dure.client.sim.styles import LoggingStyle
from dure.client.sim.truth import (
    CONTROL_FPS,
    FORCE_NAMES,
    JOINT_NAMES,
    SimulatedEpisode,
    hold_samples,
)

__all__ = ["ros_profile_features", "write_ros_log"]

_Message = tuple[int, str, Any]  # (time ns, topic, message)


def _topics(style: LoggingStyle) -> dict[str, str]:
    prefix = "/cell" if style.name == "mcap" else ""
    return {
        "joints": f"{prefix}/robot/joint_states",
        "force": f"{prefix}/ft_sensor/wrench",
        "gripper": f"{prefix}/gripper/opening",
        "tcp": f"{prefix}/tcp/position",
        "obj0": f"{prefix}/scene/object0/pose",
        "obj1": f"{prefix}/scene/object1/pose",
        "goal": f"{prefix}/scene/goal",
        "command": f"{prefix}/cmd/ee_delta",
        "success": f"{prefix}/eval/success",
        "reward": f"{prefix}/eval/reward",
        "task": f"{prefix}/task",
        "marker": f"{prefix}/episode/marker",
    }


_TYPES = {
    "joints": "sensor_msgs/msg/JointState",
    "force": "geometry_msgs/msg/WrenchStamped",
    "gripper": "std_msgs/msg/Float64",
    "tcp": "geometry_msgs/msg/PointStamped",
    "obj0": "geometry_msgs/msg/PoseStamped",
    "obj1": "geometry_msgs/msg/PoseStamped",
    "goal": "geometry_msgs/msg/PointStamped",
    "command": "std_msgs/msg/Float64MultiArray",
    "success": "std_msgs/msg/Bool",
    "reward": "std_msgs/msg/Float64",
    "task": "std_msgs/msg/String",
    "marker": "std_msgs/msg/String",
}


class _Factory:
    """Builds rosbags message objects from numbers."""

    def __init__(self, typestore: Any) -> None:
        self.t = typestore.types

    def header(self, t_ns: int, frame: str) -> Any:
        stamp = self.t["builtin_interfaces/msg/Time"](
            sec=t_ns // 1_000_000_000, nanosec=t_ns % 1_000_000_000
        )
        return self.t["std_msgs/msg/Header"](stamp=stamp, frame_id=frame)

    def point(self, t_ns: int, xyz: npt.NDArray[np.float64]) -> Any:
        p = self.t["geometry_msgs/msg/Point"](x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2]))
        return self.t["geometry_msgs/msg/PointStamped"](header=self.header(t_ns, "world"), point=p)

    def pose(self, t_ns: int, v: npt.NDArray[np.float64]) -> Any:
        p = self.t["geometry_msgs/msg/Point"](x=float(v[0]), y=float(v[1]), z=float(v[2]))
        q = self.t["geometry_msgs/msg/Quaternion"](
            w=float(v[3]), x=float(v[4]), y=float(v[5]), z=float(v[6])
        )
        pose = self.t["geometry_msgs/msg/Pose"](position=p, orientation=q)
        return self.t["geometry_msgs/msg/PoseStamped"](header=self.header(t_ns, "world"), pose=pose)

    def joints(self, t_ns: int, names: Sequence[str], pos: npt.NDArray[np.float64]) -> Any:
        empty = np.zeros(0, dtype=np.float64)
        return self.t["sensor_msgs/msg/JointState"](
            header=self.header(t_ns, "base"),
            name=list(names),
            position=np.ascontiguousarray(pos, dtype=np.float64),
            velocity=empty,
            effort=empty,
        )

    def wrench(self, t_ns: int, w: npt.NDArray[np.float64]) -> Any:
        vec = self.t["geometry_msgs/msg/Vector3"]
        body = self.t["geometry_msgs/msg/Wrench"](
            force=vec(x=float(w[0]), y=float(w[1]), z=float(w[2])),
            torque=vec(x=float(w[3]), y=float(w[4]), z=float(w[5])),
        )
        return self.t["geometry_msgs/msg/WrenchStamped"](
            header=self.header(t_ns, "hand"), wrench=body
        )

    def array(self, values: npt.NDArray[np.float64]) -> Any:
        layout = self.t["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
        return self.t["std_msgs/msg/Float64MultiArray"](
            layout=layout, data=np.ascontiguousarray(values, dtype=np.float64)
        )

    def scalar(self, kind: str, value: Any) -> Any:
        return self.t[kind](data=value)


def _episode_messages(
    ep: SimulatedEpisode, style: LoggingStyle, make: _Factory
) -> Iterator[_Message]:
    topics = _topics(style)
    state, rate = ep.features["observation.state"], style.rates_hz
    length = 1000.0 if style.length_unit == "mm" else 1.0
    angle = 180.0 / np.pi if style.angle_unit == "deg" else 1.0
    order = [JOINT_NAMES.index(name) for name in style.joint_order]
    if style.name == "rosbag":
        yield ep.start_ns, topics["marker"], make.scalar("std_msgs/msg/String", "start")
    yield ep.start_ns, topics["task"], make.scalar("std_msgs/msg/String", ep.task)
    joints = ep.features["observation.joints"][:, order] * angle
    for t, row in zip(*hold_samples(joints, ep.start_ns, rate["joints"]), strict=True):
        yield int(t), topics["joints"], make.joints(int(t), style.joint_order, row)
    for t, row in zip(
        *hold_samples(ep.features["observation.force"], ep.start_ns, rate["force"]), strict=True
    ):
        yield int(t), topics["force"], make.wrench(int(t), row)
    for t, row in zip(*hold_samples(state[:, 3:4], ep.start_ns, rate["gripper"]), strict=True):
        yield int(t), topics["gripper"], make.scalar("std_msgs/msg/Float64", float(row[0]))
    yield from _pose_messages(ep, style, make, topics, length)
    yield from _control_messages(ep, make, topics)
    if style.name == "rosbag":
        yield ep.end_ns, topics["marker"], make.scalar("std_msgs/msg/String", "end")


def _pose_messages(
    ep: SimulatedEpisode, style: LoggingStyle, make: _Factory, topics: dict[str, str], length: float
) -> Iterator[_Message]:
    state, rate = ep.features["observation.state"], style.rates_hz["pose"]
    scale7 = np.array([length] * 3 + [1.0] * 4)
    for t, row in zip(*hold_samples(state[:, 0:3] * length, ep.start_ns, rate), strict=True):
        yield int(t), topics["tcp"], make.point(int(t), row)
    for key, cols in (("obj0", slice(4, 11)), ("obj1", slice(11, 18))):
        for t, row in zip(*hold_samples(state[:, cols] * scale7, ep.start_ns, rate), strict=True):
            yield int(t), topics[key], make.pose(int(t), row)
    for t, row in zip(*hold_samples(state[:, 18:21] * length, ep.start_ns, rate), strict=True):
        yield int(t), topics["goal"], make.point(int(t), row)


def _control_messages(
    ep: SimulatedEpisode, make: _Factory, topics: dict[str, str]
) -> Iterator[_Message]:
    times, actions = hold_samples(ep.features["action"], ep.start_ns, CONTROL_FPS)
    for i, t in enumerate(times.tolist()):
        yield t, topics["command"], make.array(actions[i])
        yield t, topics["success"], make.scalar("std_msgs/msg/Bool", bool(ep.success[i]))
        yield t, topics["reward"], make.scalar("std_msgs/msg/Float64", float(ep.reward[i]))


def write_ros_log(path: Path, episodes: Sequence[SimulatedEpisode], style: LoggingStyle) -> Path:
    """Write ``episodes`` as one rosbag2 directory at ``path`` (SQLite 3 or MCAP storage)."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    typestore = get_typestore(Stores.ROS2_HUMBLE)
    storage = StoragePlugin.MCAP if style.name == "mcap" else StoragePlugin.SQLITE3
    make = _Factory(typestore)
    with Writer(path, version=9, storage_plugin=storage) as writer:
        connections = {
            topic: writer.add_connection(topic, _TYPES[key], typestore=typestore)
            for key, topic in _topics(style).items()
            if key != "marker" or style.name == "rosbag"
        }
        for ep in episodes:
            messages = sorted(_episode_messages(ep, style, make), key=lambda m: m[0])
            for t_ns, topic, msg in messages:
                data = typestore.serialize_cdr(msg, _TYPES_BY_TOPIC(style)[topic])
                writer.write(connections[topic], t_ns, data)
    return path


def _TYPES_BY_TOPIC(style: LoggingStyle) -> dict[str, str]:  # noqa: N802
    return {topic: _TYPES[key] for key, topic in _topics(style).items()}


def ros_profile_features(style: LoggingStyle) -> dict[str, Any]:
    """Return the profile sections (features, segmentation, task, outcome) for this log."""
    topics, length, angle = _topics(style), style.length_unit, style.angle_unit
    position = ["position.x", "position.y", "position.z"]
    orientation = ["orientation.w", "orientation.x", "orientation.y", "orientation.z"]

    def pose(key: str, prefix: str) -> list[dict[str, Any]]:
        fields = [f"pose.{f}" for f in position], [f"pose.{f}" for f in orientation]
        axes = ("x", "y", "z"), ("qw", "qx", "qy", "qz")
        return [
            {
                "stream": topics[key],
                "fields": fields[0],
                "names": [f"{prefix}_{a}" for a in axes[0]],
                "unit": length,
            },
            {
                "stream": topics[key],
                "fields": fields[1],
                "names": [f"{prefix}_{a}" for a in axes[1]],
                "unit": "1",
            },
        ]

    point = ["point.x", "point.y", "point.z"]
    features = {
        "observation.state": [
            {
                "stream": topics["tcp"],
                "fields": point,
                "names": ["hand_x", "hand_y", "hand_z"],
                "unit": length,
            },
            {
                "stream": topics["gripper"],
                "fields": ["data"],
                "names": ["gripper_opening"],
                "unit": "1",
            },
            *pose("obj0", "obj0"),
            *pose("obj1", "obj1"),
            {
                "stream": topics["goal"],
                "fields": point,
                "names": ["goal_x", "goal_y", "goal_z"],
                "unit": length,
            },
        ],
        "observation.joints": [
            {
                "stream": topics["joints"],
                "fields": ["position"],
                "select": list(JOINT_NAMES),
                "unit": angle,
            }
        ],
        "observation.force": [
            {
                "stream": topics["force"],
                "fields": [f"wrench.{k}.{a}" for k in ("force", "torque") for a in "xyz"],
                "names": list(FORCE_NAMES),
                "unit": ["N"] * 3 + ["N*m"] * 3,
            }
        ],
        "action": [
            {
                "stream": topics["command"],
                "fields": ["data"],
                "names": ["ee_dx", "ee_dy", "ee_dz", "gripper_effort"],
            }
        ],
    }
    segmentation: dict[str, Any]
    if style.name == "rosbag":
        segmentation = {
            "method": "marker",
            "stream": topics["marker"],
            "start": "start",
            "end": "end",
        }
    else:
        segmentation = {"method": "time-gap", "gap_s": 0.5}
    return {
        "features": features,
        "segmentation": segmentation,
        "task": {"stream": topics["task"]},
        "outcome": {
            "success_definition": "any-step",
            "success": {"stream": topics["success"], "field": "data"},
            "reward": {"stream": topics["reward"], "field": "data"},
        },
    }
