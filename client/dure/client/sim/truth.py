"""What a simulated factory really did: the ground truth its native logs are written from.

A :class:`SimulatedEpisode` holds one Meta-World rollout on its 80 Hz control grid, in
SI units and the canonical feature order, before any native logger distorts it (other
rates, millimetres, degrees, shuffled joint orders).  The round-trip test ingests the
native logs and compares the canonical episodes against these arrays.

Canonical features of a simulated factory (names and units are the contract the site
profiles written next to the data map back to):

* ``observation.state`` (21): hand position (m), gripper opening (1), object 0
  position (m) and quaternion (1, w x y z), object 1 position (m) and quaternion (1),
  goal position (m).  This is Meta-World's 39-number observation without the repeated
  previous frame (``obs[:18] ++ obs[36:]``); :func:`canonical_state` maps one to the other.
* ``observation.joints`` (7): Sawyer arm joint angles ``right_j0 .. right_j6`` (rad).
* ``observation.force`` (6): the external wrench on the hand body, force then torque
  (N, N*m).
* ``action`` (4): end-effector delta position command (normalised, 1) and gripper
  effort (1, positive closes).

Per frame ``i``: the observation before action ``i``; ``success[i]`` and ``reward[i]``
are Meta-World's ``info["success"]`` and reward after action ``i``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "ACTION_NAMES",
    "CONTROL_FPS",
    "FEATURE_NAMES",
    "FEATURE_UNITS",
    "FORCE_NAMES",
    "FRAME_NS",
    "JOINT_NAMES",
    "STATE_NAMES",
    "SUCCESS_DEFINITION",
    "SimulatedEpisode",
    "canonical_state",
    "hold_samples",
]

CONTROL_FPS = 80
"""Meta-World's control rate: 0.0025 s timestep x frame_skip 5."""

FRAME_NS = 1_000_000_000 // CONTROL_FPS
"""One control period in ns (exactly 12.5 ms)."""

SUCCESS_DEFINITION = "any-step"
"""An episode succeeds if ``info["success"]`` was true after any step (it can switch off)."""

_POSITION = ("x", "y", "z")
_QUAT = ("qw", "qx", "qy", "qz")
STATE_NAMES: tuple[str, ...] = (
    *(f"hand_{a}" for a in _POSITION),
    "gripper_opening",
    *(f"obj0_{a}" for a in _POSITION),
    *(f"obj0_{a}" for a in _QUAT),
    *(f"obj1_{a}" for a in _POSITION),
    *(f"obj1_{a}" for a in _QUAT),
    *(f"goal_{a}" for a in _POSITION),
)
JOINT_NAMES: tuple[str, ...] = tuple(f"right_j{i}" for i in range(7))
FORCE_NAMES: tuple[str, ...] = ("fx", "fy", "fz", "tx", "ty", "tz")
ACTION_NAMES: tuple[str, ...] = ("ee_dx", "ee_dy", "ee_dz", "gripper_effort")

_STATE_UNITS = ("m",) * 3 + ("1",) + (("m",) * 3 + ("1",) * 4) * 2 + ("m",) * 3
FEATURE_NAMES: dict[str, tuple[str, ...]] = {
    "observation.state": STATE_NAMES,
    "observation.joints": JOINT_NAMES,
    "observation.force": FORCE_NAMES,
    "action": ACTION_NAMES,
}
FEATURE_UNITS: dict[str, tuple[str, ...]] = {
    "observation.state": _STATE_UNITS,
    "observation.joints": ("rad",) * 7,
    "observation.force": ("N",) * 3 + ("N*m",) * 3,
    "action": ("1",) * 4,
}


def canonical_state(obs: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Map Meta-World's 39-number observation(s) to the canonical 21-number state."""
    array = np.asarray(obs, dtype=np.float64)
    return np.concatenate([array[..., :18], array[..., 36:39]], axis=-1).astype(np.float32)


@dataclass(frozen=True)
class SimulatedEpisode:
    """One scripted-expert rollout, on the 80 Hz control grid, in canonical SI form.

    Attributes
    ----------
    task
        Meta-World task name, e.g. ``"push-v3"``.
    seed
        The layout seed (``env.seed(seed)`` before reset).
    index
        Position of the episode in the factory's log (0-based).
    start_ns
        Wall time of frame 0 in the native log, ns since the Unix epoch.
    features
        Canonical feature name -> ``(n, d)`` float64 array (see module docstring).
    reward, success
        ``(n,)`` reward and ``info["success"]`` after each action.
    """

    task: str
    seed: int
    index: int
    start_ns: int
    features: dict[str, npt.NDArray[np.float64]]
    reward: npt.NDArray[np.float64]
    success: npt.NDArray[np.bool_]

    @property
    def n_frames(self) -> int:
        """Number of control steps (frames)."""
        return int(self.reward.shape[0])

    @property
    def succeeded(self) -> bool:
        """Outcome under :data:`SUCCESS_DEFINITION` (any step)."""
        return bool(self.success.any())

    @property
    def end_ns(self) -> int:
        """Time of the last frame, ns since the Unix epoch."""
        return self.start_ns + (self.n_frames - 1) * FRAME_NS


def hold_samples(
    values: npt.NDArray[np.float64], start_ns: int, rate_hz: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Sample an 80 Hz ground-truth array the way a sensor at ``rate_hz`` would log it.

    The simulated state holds between control steps, so the sample stamped ``t`` reads
    the frame ``floor((t - start) * 80 / 1e9)``.  Samples run from the first frame to
    the last (inclusive); ``rate_hz`` must divide 1e9 (50, 80, 100, 500, 1000 ...).
    """
    n = values.shape[0]
    period = 1_000_000_000 // rate_hz
    last = (n - 1) * FRAME_NS
    offsets = np.arange(0, last + 1, period, dtype=np.int64)
    frames = np.minimum(offsets // FRAME_NS, n - 1)
    return start_ns + offsets, values[frames]
