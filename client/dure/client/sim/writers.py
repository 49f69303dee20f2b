"""Dispatch from a logging style to its native writer and its site-profile sections.

Every writer uses the third-party library of its format (``rosbags``' writer,
``pyarrow``, ``h5py``, Python's ``csv``), never Dure's own store code, so ingesting
the result tests Dure against files the format's own tooling produced.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dure.client.sim.styles import LoggingStyle
from dure.client.sim.truth import SimulatedEpisode

__all__ = ["profile_sections", "write_native"]


def write_native(path: Path, episodes: Sequence[SimulatedEpisode], style: LoggingStyle) -> None:
    """Write ``episodes`` at ``path`` the way ``style`` logs them."""
    if style.name in ("rosbag", "mcap"):
        from dure.client.sim.ros_log import write_ros_log

        write_ros_log(path, episodes, style)
    elif style.name in ("lerobot-v21", "lerobot-v3"):
        from dure.client.sim.lerobot_log import write_lerobot

        write_lerobot(path, episodes, style)
    elif style.name == "robomimic":
        from dure.client.sim.robomimic_log import write_robomimic

        write_robomimic(path, episodes, style)
    else:
        from dure.client.sim.csv_log import write_csv_log

        write_csv_log(path, episodes, style)


def profile_sections(style: LoggingStyle) -> dict[str, Any]:
    """Return the profile's features, time, segmentation, task and outcome for ``style``."""
    if style.name in ("rosbag", "mcap"):
        from dure.client.sim.ros_log import ros_profile_features

        return ros_profile_features(style)
    if style.name in ("lerobot-v21", "lerobot-v3"):
        from dure.client.sim.lerobot_log import lerobot_profile_features

        return lerobot_profile_features(style)
    if style.name == "robomimic":
        from dure.client.sim.robomimic_log import robomimic_profile_features

        return robomimic_profile_features(style)
    from dure.client.sim.csv_log import csv_profile_features

    return csv_profile_features(style)
