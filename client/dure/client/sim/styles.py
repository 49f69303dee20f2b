"""How a simulated factory logs: format, rates, units, names and joint order.

Each style stands for a kind of cell met in practice:

* ``rosbag``: a ROS 2 robot, SQLite 3 bag, joints at 500 Hz in degrees (shuffled
  order), force at 1 kHz, gripper at 50 Hz, positions in millimetres, episodes cut by
  marker messages.
* ``mcap``: a ROS 2 robot recording MCAP, joints at 250 Hz in radians, force at
  500 Hz, positions in metres, episodes cut by time gaps.
* ``lerobot-v21`` / ``lerobot-v3``: a teleoperation rig saving LeRobot datasets at
  80 Hz, the state vector in its own element order, v3 in millimetres.
* ``robomimic``: a simulation lab saving robomimic HDF5, one file per task.
* ``csv``: a PLC exporting one semicolon-separated CSV per cycle at 100 Hz, ms
  timestamps, millimetres and degrees, German column names, linear resampling.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dure.client.episodes.profile import SourceFormat
from dure.client.episodes.schema import Resampling

__all__ = ["STYLES", "LoggingStyle"]


@dataclass(frozen=True)
class LoggingStyle:
    """A factory's native logging style (see module docstring)."""

    name: str
    format: SourceFormat
    length_unit: str = "m"
    angle_unit: str = "rad"
    joint_order: tuple[str, ...] = tuple(f"right_j{i}" for i in range(7))
    rates_hz: dict[str, int] = field(default_factory=dict)
    resampling: Resampling = Resampling.ZOH


_SHUFFLED = ("right_j3", "right_j0", "right_j6", "right_j1", "right_j5", "right_j2", "right_j4")
_REVERSED = tuple(f"right_j{i}" for i in reversed(range(7)))

STYLES: dict[str, LoggingStyle] = {
    "rosbag": LoggingStyle(
        name="rosbag",
        format=SourceFormat.ROSBAG,
        length_unit="mm",
        angle_unit="deg",
        joint_order=_SHUFFLED,
        rates_hz={"joints": 500, "force": 1000, "gripper": 50, "pose": 100},
    ),
    "mcap": LoggingStyle(
        name="mcap",
        format=SourceFormat.MCAP,
        joint_order=_REVERSED,
        rates_hz={"joints": 250, "force": 500, "gripper": 80, "pose": 80},
    ),
    "lerobot-v21": LoggingStyle(name="lerobot-v21", format=SourceFormat.LEROBOT_V21),
    "lerobot-v3": LoggingStyle(
        name="lerobot-v3", format=SourceFormat.LEROBOT_V3, length_unit="mm", joint_order=_REVERSED
    ),
    "robomimic": LoggingStyle(name="robomimic", format=SourceFormat.ROBOMIMIC),
    "csv": LoggingStyle(
        name="csv",
        format=SourceFormat.CSV,
        length_unit="mm",
        angle_unit="deg",
        joint_order=_SHUFFLED,
        rates_hz={"all": 100},
        resampling=Resampling.LINEAR,
    ),
}
"""The built-in styles, by the name ``dure factory simulate --style`` takes."""
