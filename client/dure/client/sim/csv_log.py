"""A simulated PLC that exports one CSV per cycle, written with Python's ``csv`` module.

German conventions, as such exports often have: ``;`` between fields, ``,`` as the
decimal mark, German column names, a Unix-time ``Zeit_ms`` column in milliseconds,
positions in millimetres, joint angles in degrees (the style's joint order), 100 Hz
(sampling the 80 Hz state), and one file per episode: ``zyklus_0000.csv``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dure.client.sim.styles import LoggingStyle
from dure.client.sim.truth import (
    ACTION_NAMES,
    FORCE_NAMES,
    STATE_NAMES,
    SimulatedEpisode,
    hold_samples,
)

__all__ = ["csv_columns", "csv_profile_features", "write_csv_log"]

_AXES = {"x": "X", "y": "Y", "z": "Z", "qw": "QW", "qx": "QX", "qy": "QY", "qz": "QZ"}
_BODIES = {"hand": "TCP", "obj0": "Teil1", "obj1": "Teil2", "goal": "Ziel"}


def _state_column(name: str) -> tuple[str, str]:
    """Return (column, unit) for a canonical state element."""
    if name == "gripper_opening":
        return "Greifer_Oeffnung", "1"
    body, axis = name.split("_", 1)
    unit = "mm" if axis in ("x", "y", "z") else "1"
    suffix = "_mm" if unit == "mm" else ""
    return f"{_BODIES[body]}_{_AXES[axis]}{suffix}", unit


def csv_columns(style: LoggingStyle) -> dict[str, list[str]]:
    """Return the export's column names per canonical feature (in canonical order)."""
    return {
        "observation.state": [_state_column(name)[0] for name in STATE_NAMES],
        "observation.joints": [f"Achse_{name[-1]}_Grad" for name in sorted(style.joint_order)],
        "observation.force": [
            "Kraft_X_N",
            "Kraft_Y_N",
            "Kraft_Z_N",
            "Moment_X_Nm",
            "Moment_Y_Nm",
            "Moment_Z_Nm",
        ],
        "action": ["Soll_dX", "Soll_dY", "Soll_dZ", "Soll_Greifer"],
    }


def _number(value: float) -> str:
    return repr(float(value)).replace(".", ",")


def _rows(ep: SimulatedEpisode, style: LoggingStyle) -> tuple[list[str], list[list[str]]]:
    state = ep.features["observation.state"].copy()
    scale = np.array([1000.0 if _state_column(n)[1] == "mm" else 1.0 for n in STATE_NAMES])
    cols = csv_columns(style)
    joint_cols = [f"Achse_{name[-1]}_Grad" for name in style.joint_order]
    joint_idx = [int(name[-1]) for name in style.joint_order]
    values = np.concatenate(
        [
            state * scale,
            np.degrees(ep.features["observation.joints"][:, joint_idx]),
            ep.features["observation.force"],
            ep.features["action"],
            ep.success[:, None].astype(np.float64),
            ep.reward[:, None],
        ],
        axis=1,
    )
    times, sampled = hold_samples(values, ep.start_ns, style.rates_hz["all"])
    header = ["Zeit_ms", "Programm", *cols["observation.state"], *joint_cols]
    header += [*cols["observation.force"], *cols["action"], "Erfolg", "Belohnung"]
    rows = []
    for t, row in zip(times.tolist(), sampled, strict=True):
        flags = [str(int(row[-2])), _number(row[-1])]
        rows.append([str(t // 1_000_000), ep.task, *(_number(v) for v in row[:-2]), *flags])
    return header, rows


def write_csv_log(root: Path, episodes: Sequence[SimulatedEpisode], style: LoggingStyle) -> None:
    """Write one ``;``-separated CSV per episode under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for ep in episodes:
        header, rows = _rows(ep, style)
        with (root / f"zyklus_{ep.index:04d}.csv").open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out, delimiter=";")
            writer.writerow(header)
            writer.writerows(rows)


def csv_profile_features(style: LoggingStyle) -> dict[str, Any]:
    """Return the profile sections that map these exports back to canonical features."""
    cols = csv_columns(style)
    state_units = [_state_column(name)[1] for name in STATE_NAMES]
    return {
        "features": {
            "observation.state": [
                {
                    "fields": cols["observation.state"],
                    "names": list(STATE_NAMES),
                    "unit": state_units,
                }
            ],
            "observation.joints": [
                {
                    "fields": cols["observation.joints"],
                    "names": [f"right_j{i}" for i in range(7)],
                    "unit": "deg",
                }
            ],
            "observation.force": [
                {
                    "fields": cols["observation.force"],
                    "names": list(FORCE_NAMES),
                    "unit": ["N"] * 3 + ["N*m"] * 3,
                }
            ],
            "action": [{"fields": cols["action"], "names": list(ACTION_NAMES)}],
        },
        "time": {"column": "Zeit_ms", "unit": "ms"},
        "csv": {"delimiter": ";", "decimal": ",", "pattern": "zyklus_*.csv"},
        "segmentation": {"method": "per-file"},
        "task": {"stream": "Programm"},
        "outcome": {
            "success_definition": "any-step",
            "success": {"stream": "Erfolg"},
            "reward": {"stream": "Belohnung"},
        },
    }
