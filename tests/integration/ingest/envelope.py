"""The resampling tolerance the round trip is held to, stated as an envelope.

A stream sampled at ``rate`` Hz from the simulated 80 Hz state (which holds between
control steps) and resampled back onto the 80 Hz grid may lag the truth by up to one
source period.  So ingested frame ``i`` must lie, column by column, within the
min..max of the truth over frames ``i - h .. i`` with ``h = ceil(80 / rate)`` (+1 for
linear interpolation, which blends two held samples).  Streams logged at 80 Hz on the
control grid must match exactly (to float32 rounding).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = ["assert_within_envelope"]


def assert_within_envelope(
    got: npt.NDArray[np.float32],
    truth: npt.NDArray[np.float64],
    lag_frames: int,
    *,
    label: str,
) -> None:
    """Check every ingested value against the truth's range over its hold window."""
    n = got.shape[0]
    rel = 1e-6 * np.maximum(1.0, np.abs(truth[:n])).max(axis=0)
    if lag_frames == 0:
        np.testing.assert_allclose(got, truth[:n], rtol=1e-6, atol=1e-6, err_msg=label)
        return
    windows = np.stack([truth[np.clip(np.arange(n) - k, 0, None)] for k in range(lag_frames + 1)])
    lo, hi = windows.min(axis=0) - rel, windows.max(axis=0) + rel
    bad = (got < lo) | (got > hi)
    assert not bad.any(), f"{label}: frame {np.argwhere(bad)[0]} outside the hold envelope"


def lag_for(rate_hz: float, fps: int = 80, linear: bool = False) -> int:
    """Frames an ingested value may lag the truth for a source at ``rate_hz``."""
    if rate_hz % fps == 0 and not linear:
        return 0
    return math.ceil(fps / rate_hz) + (1 if linear else 0)
