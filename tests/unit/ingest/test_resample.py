"""Resampling: against naive references, and the properties it must preserve."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dure.client.episodes.resample import (
    NS_PER_S,
    frame_grid,
    hold_tolerance_ns,
    linear,
    n_frames_between,
    resample,
    seconds_to_ns,
    zoh,
)

FPS = st.sampled_from([10, 30, 50, 80, 100, 500])


@st.composite
def streams(draw: st.DrawFn) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Strictly increasing integer times and finite values, 1..60 samples, 1..4 columns."""
    steps = draw(st.lists(st.integers(1, 50_000_000), min_size=0, max_size=59))
    start = draw(st.integers(0, 10**12))
    t = start + np.concatenate(([0], np.cumsum(steps))).astype(np.int64)
    d = draw(st.integers(1, 4))
    values = draw(
        st.lists(
            st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
            min_size=len(t) * d,
            max_size=len(t) * d,
        )
    )
    return t, np.asarray(values, dtype=np.float64).reshape(len(t), d)


def naive_zoh(
    t: npt.NDArray[np.int64], v: npt.NDArray[np.float64], g: int, tol: int
) -> npt.NDArray[np.float64]:
    """Written from the contract: the last sample stamped at or before g + tol, else the first."""
    chosen = 0
    for i, ti in enumerate(t):
        if ti <= g + tol:
            chosen = i
    return np.asarray(v[chosen], dtype=np.float64)


@settings(max_examples=200, deadline=None)
@given(streams(), FPS)
def test_zoh_matches_naive_reference_and_only_returns_input_rows(
    stream: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]], fps: int
) -> None:
    t, v = stream
    n = n_frames_between(int(t[0]), int(t[-1]), fps)
    grid = frame_grid(int(t[0]), n, fps)
    out = zoh(t, v, grid, fps)
    tol = hold_tolerance_ns(fps)
    for k, g in enumerate(grid):
        np.testing.assert_array_equal(out[k], naive_zoh(t, v, int(g), tol))
    # sample-and-hold: every output row is one of the input rows, unchanged
    rows = {tuple(row) for row in v}
    assert all(tuple(row) in rows for row in out)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**15), st.integers(1, 2000), FPS)
def test_grid_is_monotonic_at_the_declared_fps(start: int, n: int, fps: int) -> None:
    grid = frame_grid(start, n, fps)
    assert grid[0] == start and len(grid) == n
    steps = np.diff(grid)
    assert np.all(steps > 0)
    # each step is the period rounded to the nanosecond; over n frames no drift accumulates
    assert np.all(np.abs(steps - NS_PER_S / fps) <= 1)
    assert abs(int(grid[-1] - start) - (n - 1) * NS_PER_S / fps) <= 0.5


@settings(max_examples=200, deadline=None)
@given(streams(), FPS)
def test_resampling_a_grid_aligned_stream_returns_it_unchanged(
    stream: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]], fps: int
) -> None:
    _, v = stream
    grid = frame_grid(10**9, len(v), fps)
    np.testing.assert_array_equal(zoh(grid, v, grid, fps), v)
    np.testing.assert_allclose(linear(grid, v, grid, fps), v, rtol=0, atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(streams(), FPS)
def test_linear_matches_np_interp_per_column(
    stream: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]], fps: int
) -> None:
    t, v = stream
    n = n_frames_between(int(t[0]), int(t[-1]), fps)
    grid = frame_grid(int(t[0]), n, fps)
    out = linear(t, v, grid, fps)
    for col in range(v.shape[1]):
        expected = np.interp(grid.astype(np.float64), t.astype(np.float64), v[:, col])
        np.testing.assert_allclose(out[:, col], expected, rtol=1e-9, atol=1e-6)
    assert np.all(out >= v.min(axis=0) - 1e-6) and np.all(out <= v.max(axis=0) + 1e-6)


def test_zoh_holds_a_step_signal_and_absorbs_float32_stamps() -> None:
    fps = 80
    t = seconds_to_ns(np.arange(8, dtype=np.float32) / np.float32(fps))
    v = np.arange(8, dtype=np.float64)
    out = zoh(t, v, frame_grid(0, 8, fps), fps)
    np.testing.assert_array_equal(out[:, 0], v)


def test_zoh_before_the_first_sample_holds_the_first() -> None:
    t = np.array([1, 2], dtype=np.int64) * NS_PER_S
    grid = np.array([0, 1_500_000_000, 2_500_000_000], dtype=np.int64)
    out = zoh(t, np.array([[1.0], [2.0]]), grid, 1)
    np.testing.assert_array_equal(out[:, 0], [1.0, 1.0, 2.0])


def test_n_frames_counts_the_end_frame_inclusively() -> None:
    assert n_frames_between(0, 0, 80) == 1
    assert n_frames_between(0, 12_500_000, 80) == 2
    assert n_frames_between(0, 12_499_999, 80) == 2  # within the hold tolerance
    assert n_frames_between(0, 12_400_000, 80) == 1


def test_resample_runs_the_method_asked_for_and_reports_it() -> None:
    """Between two samples linear gives the weighted mean, zero-order hold the earlier one."""
    t = np.array([0, NS_PER_S], dtype=np.int64)
    v = np.array([[0.0, 10.0], [1.0, 30.0]])
    grid = frame_grid(0, 5, 4)  # 0, 0.25, 0.5, 0.75, 1.0 s
    lin = resample("linear", t, v, grid, 4)
    assert lin.method == "linear"
    np.testing.assert_allclose(lin.values[:, 0], [0.0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(lin.values[:, 1], [10.0, 15.0, 20.0, 25.0, 30.0])
    held = resample("zoh", t, v, grid, 4)
    assert held.method == "zoh"
    np.testing.assert_allclose(held.values[:, 0], [0.0, 0.0, 0.0, 0.0, 1.0])


def test_resample_refuses_an_unknown_method() -> None:
    t = np.array([0], dtype=np.int64)
    with pytest.raises(ValueError, match="unknown resampling method"):
        resample("cubic", t, [[1.0]], t, 10)  # type: ignore[arg-type]
