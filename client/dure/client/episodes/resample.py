"""Resampling irregular source streams onto an episode's fixed frame grid.

Pure numpy, vectorised over samples and columns.  Times are integer nanoseconds
(``int64``), as ROS 2 and MCAP stamp them, so a grid point and a source sample
that are meant to coincide compare exactly; sources stamped in float seconds are
converted once with :func:`seconds_to_ns`.

Contract
--------
* The grid of an episode that starts at ``t0`` is ``t0 + round(i * 1e9 / fps)`` ns,
  ``i = 0 .. n-1``: strictly increasing, one frame every ``1/fps`` seconds.
* Zero-order hold (:func:`zoh`) returns, for each grid time ``g``, the value of the
  last source sample stamped at or before ``g + tolerance`` (tolerance =
  ``period / 1000``, which absorbs float32 timestamps).  Every output row is an
  input row, unchanged.  Grid times before the first sample take the first sample.
* Linear (:func:`linear`) interpolates between the two samples around ``g``; before
  the first and after the last sample it holds the end value (as ``np.interp``).
  On a grid that coincides with the source, both methods return the input.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "NS_PER_S",
    "FloatArray",
    "IntArray",
    "Resampled",
    "frame_grid",
    "frame_period_ns",
    "hold_tolerance_ns",
    "linear",
    "n_frames_between",
    "resample",
    "seconds_to_ns",
    "zoh",
]

NS_PER_S = 1_000_000_000

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def frame_period_ns(fps: int) -> float:
    """Return the frame period in nanoseconds (exact for fps dividing 1e9)."""
    return NS_PER_S / fps


def hold_tolerance_ns(fps: int) -> int:
    """Return how far past a grid time a sample may be stamped and still count at it."""
    return max(1, int(frame_period_ns(fps) // 1000))


def n_frames_between(start_ns: int, end_ns: int, fps: int) -> int:
    """Return how many frames of the ``fps`` grid from ``start_ns`` fall at or before ``end_ns``."""
    span = max(0, int(end_ns) - int(start_ns)) + hold_tolerance_ns(fps)
    return int(span * fps // NS_PER_S) + 1


def frame_grid(start_ns: int, n: int, fps: int) -> IntArray:
    """Return ``n`` grid times in ns: ``start_ns + round(i * 1e9 / fps)``."""
    i = np.arange(n, dtype=np.int64)
    return np.int64(start_ns) + (i * NS_PER_S * 2 + fps) // (2 * fps)


def seconds_to_ns(seconds: npt.ArrayLike) -> IntArray:
    """Convert float seconds to integer nanoseconds, rounding to the nearest ns."""
    return np.rint(np.asarray(seconds, dtype=np.float64) * NS_PER_S).astype(np.int64)


def _as_2d(values: npt.ArrayLike) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    return array.reshape(array.shape[0], -1) if array.ndim != 2 else array


def zoh(t_src: IntArray, values: npt.ArrayLike, t_grid: IntArray, fps: int) -> FloatArray:
    """Zero-order hold: the last sample at or before each grid time (see module contract).

    Parameters
    ----------
    t_src
        Source times in ns, non-decreasing, at least one.
    values
        ``(len(t_src), d)`` source values (a 1-D array is one column).
    t_grid
        Grid times in ns.
    fps
        The grid's rate, which sets the stamp tolerance.
    """
    data = _as_2d(values)
    idx = np.searchsorted(t_src, t_grid + hold_tolerance_ns(fps), side="right") - 1
    return data[np.clip(idx, 0, len(t_src) - 1)]


def linear(t_src: IntArray, values: npt.ArrayLike, t_grid: IntArray, fps: int) -> FloatArray:
    """Linear interpolation between the samples around each grid time (see module contract)."""
    data = _as_2d(values)
    n = len(t_src)
    if n == 1:
        return np.repeat(data, len(t_grid), axis=0)
    right = np.clip(np.searchsorted(t_src, t_grid, side="right"), 1, n - 1)
    left = right - 1
    t_left = t_src[left]
    span = (t_src[right] - t_left).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = np.where(span > 0, (t_grid - t_left) / np.where(span > 0, span, 1.0), 1.0)
    weight = np.clip(weight, 0.0, 1.0)[:, None]
    return data[left] * (1.0 - weight) + data[right] * weight


class Resampled(NamedTuple):
    """The resampled values and the method that produced them (for the provenance)."""

    values: FloatArray
    method: Literal["zoh", "linear"]


def resample(
    method: Literal["zoh", "linear"],
    t_src: IntArray,
    values: npt.ArrayLike,
    t_grid: IntArray,
    fps: int,
) -> Resampled:
    """Resample with the named method (``"zoh"`` or ``"linear"``).

    Returns
    -------
    Resampled
        The values on the grid and the method that ran, which the provenance records
        (never copied from the request, so what is recorded is what happened).

    Raises
    ------
    ValueError
        If ``method`` is neither ``"zoh"`` nor ``"linear"``.
    """
    if method == "zoh":
        return Resampled(zoh(t_src, values, t_grid, fps), "zoh")
    if method == "linear":
        return Resampled(linear(t_src, values, t_grid, fps), "linear")
    raise ValueError(f"unknown resampling method {method!r}")
