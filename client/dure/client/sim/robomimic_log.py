"""A simulated lab that saves robomimic HDF5 files (one per task), written with h5py.

robomimic's layout (its documentation, "Dataset Structure")::

    data                    (group) attrs: total, env_args (JSON: env_name, type, env_kwargs)
      demo_0                (group) attrs: num_samples (+ start_time_ns, this lab's extra)
        actions             (N, 4)
        rewards, dones      (N,)   dones written with done_mode 0: 1 where s' is a success
        states              (N, 21) flattened simulator state (here the canonical state)
        obs/robot0_eef_pos  (N, 3)  m        obs/robot0_gripper_qpos (N, 1)
        obs/object          (N, 14) object poses   obs/goal_pos (N, 3) m
        obs/robot0_joint_pos (N, 7) rad, in the style's joint order
        obs/robot0_eef_wrench (N, 6) N, N*m
    mask                    (group) filter keys: train -> demo names

No times are stored: samples are at 80 Hz, which the site profile states (time.rate_hz).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dure.client.sim.styles import LoggingStyle
from dure.client.sim.truth import (
    CONTROL_FPS,
    FORCE_NAMES,
    JOINT_NAMES,
    STATE_NAMES,
    SimulatedEpisode,
)

__all__ = ["robomimic_profile_features", "write_robomimic"]


def _write_demo(group: Any, ep: SimulatedEpisode, style: LoggingStyle) -> None:
    state = ep.features["observation.state"]
    joints = [JOINT_NAMES.index(name) for name in style.joint_order]
    group.attrs["num_samples"] = ep.n_frames
    group.attrs["start_time_ns"] = ep.start_ns
    group.create_dataset("actions", data=ep.features["action"])
    group.create_dataset("rewards", data=ep.reward)
    group.create_dataset("dones", data=ep.success.astype(np.int64))
    group.create_dataset("states", data=state)
    obs = group.create_group("obs")
    obs.create_dataset("robot0_eef_pos", data=state[:, 0:3])
    obs.create_dataset("robot0_gripper_qpos", data=state[:, 3:4])
    obs.create_dataset("object", data=state[:, 4:18])
    obs.create_dataset("goal_pos", data=state[:, 18:21])
    obs.create_dataset("robot0_joint_pos", data=ep.features["observation.joints"][:, joints])
    obs.create_dataset("robot0_eef_wrench", data=ep.features["observation.force"])


def write_robomimic(root: Path, episodes: Sequence[SimulatedEpisode], style: LoggingStyle) -> None:
    """Write one robomimic HDF5 file per task under ``root`` (``<task>.hdf5``)."""
    import h5py

    root.mkdir(parents=True, exist_ok=True)
    for task in sorted({ep.task for ep in episodes}):
        mine = [ep for ep in episodes if ep.task == task]
        with h5py.File(root / f"{task}.hdf5", "w") as handle:
            data = handle.create_group("data")
            data.attrs["total"] = sum(ep.n_frames for ep in mine)
            env_args = {"env_name": task, "type": 4, "env_kwargs": {"control_freq": CONTROL_FPS}}
            data.attrs["env_args"] = json.dumps(env_args)
            for k, ep in enumerate(mine):
                _write_demo(data.create_group(f"demo_{k}"), ep, style)
            names = [f"demo_{k}".encode() for k in range(len(mine))]
            handle.create_group("mask").create_dataset("train", data=np.array(names, dtype="S"))


def robomimic_profile_features(style: LoggingStyle) -> dict[str, Any]:
    """Return the profile sections that map these files back to canonical features."""
    joint_index = [style.joint_order.index(name) for name in JOINT_NAMES]
    obj_units = (["m"] * 3 + ["1"] * 4) * 2
    return {
        "features": {
            "observation.state": [
                {"stream": "obs/robot0_eef_pos", "names": list(STATE_NAMES[0:3]), "unit": "m"},
                {"stream": "obs/robot0_gripper_qpos", "names": [STATE_NAMES[3]], "unit": "1"},
                {"stream": "obs/object", "names": list(STATE_NAMES[4:18]), "unit": obj_units},
                {"stream": "obs/goal_pos", "names": list(STATE_NAMES[18:21]), "unit": "m"},
            ],
            "observation.joints": [
                {
                    "stream": "obs/robot0_joint_pos",
                    "select": joint_index,
                    "names": list(JOINT_NAMES),
                    "unit": "rad",
                }
            ],
            "observation.force": [
                {
                    "stream": "obs/robot0_eef_wrench",
                    "names": list(FORCE_NAMES),
                    "unit": ["N"] * 3 + ["N*m"] * 3,
                }
            ],
            "action": [
                {"stream": "actions", "names": ["ee_dx", "ee_dy", "ee_dz", "gripper_effort"]}
            ],
        },
        "time": {"rate_hz": CONTROL_FPS},
        "segmentation": {"method": "per-source-episode"},
        "task": {"metadata": "env_args.env_name"},
        "outcome": {
            "success_definition": "any-step",
            "success": {"stream": "dones"},
            "reward": {"stream": "rewards"},
        },
    }
