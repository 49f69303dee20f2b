"""Per-feature statistics that merge: mean, std, min, max and quantiles.

A :class:`FeatureStats` summarises the rows of one vector feature (``(n, d)``
samples) per column.  Two summaries of disjoint sample sets merge into the
summary of their union, so statistics of any selection of episodes come from
the stored per-episode summaries without reading a frame again:

* ``count``, ``min`` and ``max`` merge exactly;
* ``mean`` and ``m2`` (the sum of squared deviations) merge exactly with Chan et
  al.'s parallel update, so ``std`` (population, ``ddof=0``, as ``np.std``) is
  exact up to rounding;
* quantiles come from a *quantile sketch*: the quantile function sampled at
  :data:`SKETCH_POINTS` probabilities (every percent, denser in the tails) (``np.quantile``'s linear
  method for the samples of one summary).  Merging mixes the two piecewise
  linear distributions by weight and samples the mixture's quantile function
  again.  A summary built from samples is exact at the grid probabilities;
  merged summaries are approximate: the rank of a merged quantile in the pooled
  samples is off by at most about ``1 / n`` for parts of ``n`` samples (the
  linear method smooths each part's empirical distribution by that much), and
  by a fraction of a percent for parts of hundreds of frames (the tests compare
  with ``np.quantile``).  Merge many
  summaries with :func:`merge_all`, which pairs them up in a balanced tree so
  the approximation is applied ``log2(k)`` times, not ``k``.

Normalisation: :class:`Normalizer` maps a feature to zero mean and unit
standard deviation (``mean_std``) or to ``[-1, 1]`` (``min_max``), and back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from dure.client.errors import EpisodeError

if TYPE_CHECKING:
    from dure.client.episodes.schema import Episode

__all__ = [
    "QUANTILES",
    "SKETCH_POINTS",
    "FeatureStats",
    "Normalizer",
    "StatsAccumulator",
    "episode_stats",
    "merge_all",
    "merge_stats",
    "stats_by_feature",
]

QUANTILES: tuple[float, ...] = (0.01, 0.10, 0.50, 0.90, 0.99)
"""The quantiles reported (``q01`` ... ``q99``); all lie on the sketch grid."""

_TAIL = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075)
_GRID = np.unique(
    np.concatenate([np.linspace(0.0, 1.0, 101), _TAIL, 1.0 - np.array(_TAIL)]).round(6)
)
SKETCH_POINTS = int(_GRID.shape[0])
"""Probabilities at which the quantile function is kept: ``0, 0.01, ..., 1`` plus
six points in each tail (``0.0005 .. 0.0075`` and their mirrors), so the
``q01``/``q99`` of merged summaries stay close."""
_F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FeatureStats:
    """Mergeable statistics of one ``(n, d)`` feature, per column.

    Attributes
    ----------
    count
        Number of samples (rows).
    mean, m2, minimum, maximum
        float64 ``(d,)``: mean, sum of squared deviations from the mean, min, max.
    sketch
        float64 ``(SKETCH_POINTS, d)``: the quantile function at the sketch grid.
    """

    count: int
    mean: _F64
    m2: _F64
    minimum: _F64
    maximum: _F64
    sketch: _F64

    @classmethod
    def from_samples(cls, samples: npt.NDArray[np.floating]) -> FeatureStats:
        """Summarise ``samples`` of shape ``(n, d)`` (``n >= 1``, all finite)."""
        raw = np.asarray(samples)
        if (
            raw.ndim != 2
            or raw.shape[0] == 0
            or raw.dtype.kind != "f"
            or not np.isfinite(raw).all()
        ):
            raise EpisodeError(
                f"statistics need finite float samples of shape (n >= 1, d), got {raw.shape}",
                hint="Validate the episode before computing its statistics.",
            )
        mean = raw.mean(axis=0, dtype=np.float64)
        centered = raw - mean  # float64
        # One contiguous row per column, sorted in the input's own dtype (float32 sorts fast).
        columns = np.ascontiguousarray(raw.T)
        columns.sort(axis=1)
        return cls(
            count=int(raw.shape[0]),
            mean=mean,
            m2=np.einsum("ij,ij->j", centered, centered),
            minimum=columns[:, 0].astype(np.float64),
            maximum=columns[:, -1].astype(np.float64),
            sketch=_sorted_quantiles(columns, _GRID),
        )

    @property
    def dim(self) -> int:
        """Number of columns ``d``."""
        return int(self.mean.shape[0])

    @property
    def std(self) -> _F64:
        """Population standard deviation per column (``ddof=0``)."""
        return np.sqrt(np.maximum(self.m2, 0.0) / self.count)

    def quantile(self, q: float) -> _F64:
        """Return the ``q``-quantile per column, ``0 <= q <= 1``, from the sketch."""
        k = int(np.clip(np.searchsorted(_GRID, q, side="right"), 1, SKETCH_POINTS - 1))
        g0, g1 = _GRID[k - 1], _GRID[k]
        frac = min(max((q - g0) / (g1 - g0), 0.0), 1.0)
        low, high = self.sketch[k - 1], self.sketch[k]
        result: _F64 = low + frac * (high - low)
        return result

    def merge(self, other: FeatureStats) -> FeatureStats:
        """Return the statistics of the union of both sample sets."""
        return merge_stats(self, other)

    def summary(self) -> dict[str, list[float]]:
        """Return the LeRobot ``stats.json`` entry: min, max, mean, std, count, q01..q99."""
        out: dict[str, list[float]] = {
            "min": self.minimum.tolist(),
            "max": self.maximum.tolist(),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "count": [self.count],
        }
        for q in QUANTILES:
            out[_quantile_key(q)] = self.quantile(q).tolist()
        return out


def merge_stats(left: FeatureStats, right: FeatureStats) -> FeatureStats:
    """Merge two summaries of disjoint sample sets of the same feature."""
    if left.dim != right.dim:
        raise EpisodeError(
            f"cannot merge statistics of {left.dim} and {right.dim} columns",
            hint="Merge statistics of the same feature only.",
        )
    n = left.count + right.count
    delta = right.mean - left.mean
    mean = left.mean + delta * (right.count / n)
    m2 = left.m2 + right.m2 + delta**2 * (left.count * right.count / n)
    sketch = _mix(left, right)
    return FeatureStats(
        count=n,
        mean=mean,
        m2=m2,
        minimum=np.minimum(left.minimum, right.minimum),
        maximum=np.maximum(left.maximum, right.maximum),
        sketch=sketch,
    )


def merge_all(parts: Sequence[FeatureStats]) -> FeatureStats:
    """Merge any number of summaries in a balanced tree (see the module docstring)."""
    if not parts:
        raise EpisodeError(
            "no statistics to merge: the selection is empty",
            hint="Select at least one episode.",
        )
    level = list(parts)
    while len(level) > 1:
        paired = [merge_stats(a, b) for a, b in zip(level[::2], level[1::2], strict=False)]
        level = paired + ([level[-1]] if len(level) % 2 else [])
    return level[0]


def _sorted_quantiles(columns: npt.NDArray[np.floating], probs: _F64) -> _F64:
    """``np.quantile(values, probs, axis=0)`` (linear method); ``columns`` = sorted ``values.T``."""
    n = columns.shape[1]
    position = probs * (n - 1)
    low = np.floor(position).astype(np.intp)
    high = np.minimum(low + 1, n - 1)
    below = columns[:, low].astype(np.float64).T
    above = columns[:, high].astype(np.float64).T
    result: _F64 = below + (position - low)[:, None] * (above - below)
    return result


def _mix(left: FeatureStats, right: FeatureStats) -> _F64:
    """Quantile functions of the weighted mixtures of two sketched distributions, per column."""
    xs = np.sort(np.concatenate([left.sketch, right.sketch], axis=0), axis=0)
    total = left.count + right.count
    cdf = (left.count / total) * _cdf(left.sketch, xs) + (right.count / total) * _cdf(
        right.sketch, xs
    )
    return _invert(np.maximum.accumulate(cdf, axis=0), xs)


def _column_search(
    ordered: _F64, values: _F64, side: Literal["left", "right"]
) -> npt.NDArray[np.intp]:
    """``np.searchsorted`` of each column of ``values`` in the same column of ``ordered``.

    Columns are mapped affinely (order-preserving) into disjoint intervals
    ``[3j, 3j + 1]`` so that one search over the flattened array does them all.
    """
    rows, dim = ordered.shape
    low = np.minimum(ordered.min(axis=0), values.min(axis=0))
    span = np.maximum(ordered.max(axis=0), values.max(axis=0)) - low
    span = np.where(span > 0, span, 1.0)
    offset = 3.0 * np.arange(dim)
    keys = ((ordered - low) / span + offset).T.ravel()
    probes = ((values - low) / span + offset).T.ravel()
    found = np.searchsorted(keys, probes, side=side).reshape(dim, -1).T
    result: npt.NDArray[np.intp] = found - rows * np.arange(dim)
    return np.clip(result, 0, rows)


def _cdf(quantiles: _F64, xs: _F64) -> _F64:
    """CDF at ``xs`` of the piecewise-linear distributions whose quantile functions are given.

    Right-continuous: tied quantiles (a point mass) make the CDF jump at that value.
    """
    points = quantiles.shape[0]
    cols = np.arange(quantiles.shape[1])
    below = _column_search(quantiles, xs, "right")  # knots <= x
    start = np.clip(below - 1, 0, points - 2)
    q0, q1 = quantiles[start, cols], quantiles[start + 1, cols]
    width = q1 - q0
    frac = np.clip((xs - q0) / np.where(width > 0, width, 1.0), 0.0, 1.0)
    cdf = _GRID[start] + frac * (_GRID[start + 1] - _GRID[start])
    result: _F64 = np.where(below == 0, 0.0, np.where(below >= points, 1.0, cdf))
    return result


def _invert(cdf: _F64, xs: _F64) -> _F64:
    """Quantiles at the sketch grid of the piecewise-linear CDFs ``(xs, cdf)``, per column."""
    rows = xs.shape[0]
    cols = np.arange(xs.shape[1])
    grid = np.broadcast_to(_GRID[:, None], (SKETCH_POINTS, xs.shape[1]))
    first = _column_search(cdf, grid, "left")  # first row with cdf >= p
    high = np.clip(first, 0, rows - 1)
    low = np.clip(first - 1, 0, rows - 1)
    c0, c1 = cdf[low, cols], cdf[high, cols]
    rise = c1 - c0
    frac = np.clip((grid - c0) / np.where(rise > 0, rise, 1.0), 0.0, 1.0)
    result: _F64 = xs[low, cols] + frac * (xs[high, cols] - xs[low, cols])
    return result


def _quantile_key(q: float) -> str:
    return f"q{round(q * 100):02d}"


@dataclass(frozen=True)
class Normalizer:
    """Affine normalisation of one feature from its statistics.

    ``mean_std``: ``(x - mean) / std``; ``min_max``: maps ``[min, max]`` to
    ``[-1, 1]``.  Columns with zero spread (constant features) get a scale of 1,
    so they map to 0 instead of dividing by zero.
    """

    shift: npt.NDArray[np.float32]
    scale: npt.NDArray[np.float32]

    @classmethod
    def from_stats(
        cls, stats: FeatureStats, mode: Literal["mean_std", "min_max"] = "mean_std"
    ) -> Normalizer:
        """Build the normaliser for ``mode`` from ``stats``."""
        if mode == "mean_std":
            shift, spread = stats.mean, stats.std
        else:
            shift, spread = (stats.maximum + stats.minimum) / 2, (stats.maximum - stats.minimum) / 2
        scale = np.where(spread > 1e-8, spread, 1.0)
        return cls(shift=shift.astype(np.float32), scale=scale.astype(np.float32))

    def normalise(self, values: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
        """Map raw values (``(..., d)``) to normalised float32 values."""
        return ((np.asarray(values, dtype=np.float32) - self.shift) / self.scale).astype(np.float32)

    def denormalise(self, values: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
        """Map normalised values back to raw units."""
        return (np.asarray(values, dtype=np.float32) * self.scale + self.shift).astype(np.float32)


def stats_by_feature(
    per_episode: Sequence[Mapping[str, FeatureStats]],
) -> dict[str, FeatureStats]:
    """Merge per-episode statistics feature by feature (features common to all).

    Features are merged side by side as one wide summary (columns are
    independent), which costs one tree of merges instead of one per feature.
    """
    if not per_episode:
        raise EpisodeError(
            "no statistics to merge: the selection is empty", hint="Select episodes."
        )
    keys = sorted(set.intersection(*(set(item) for item in per_episode)))
    if not keys:
        return {}
    wide = merge_all([_side_by_side([item[key] for key in keys]) for item in per_episode])
    out, start = {}, 0
    for key in keys:
        width = per_episode[0][key].dim
        out[key] = _columns(wide, start, start + width)
        start += width
    return out


def _side_by_side(parts: Sequence[FeatureStats]) -> FeatureStats:
    if len({part.count for part in parts}) != 1:
        raise EpisodeError(
            "features of one episode have different sample counts",
            hint="Summarise every feature of an episode over the same frames.",
        )
    return FeatureStats(
        count=parts[0].count,
        mean=np.concatenate([p.mean for p in parts]),
        m2=np.concatenate([p.m2 for p in parts]),
        minimum=np.concatenate([p.minimum for p in parts]),
        maximum=np.concatenate([p.maximum for p in parts]),
        sketch=np.concatenate([p.sketch for p in parts], axis=1),
    )


def _columns(stats: FeatureStats, start: int, stop: int) -> FeatureStats:
    return FeatureStats(
        count=stats.count,
        mean=stats.mean[start:stop].copy(),
        m2=stats.m2[start:stop].copy(),
        minimum=stats.minimum[start:stop].copy(),
        maximum=stats.maximum[start:stop].copy(),
        sketch=stats.sketch[:, start:stop].copy(),
    )


def episode_stats(episode: Episode) -> dict[str, FeatureStats]:
    """Return the statistics of every vector feature of ``episode`` (observations, action)."""
    features = {**episode.frames.observation, "action": episode.frames.action}
    return {key: FeatureStats.from_samples(values) for key, values in sorted(features.items())}


class StatsAccumulator:
    """Streaming statistics of many ``(n, d)`` blocks per feature, exact within chunks.

    Blocks are buffered until ``chunk_rows`` rows of a feature are waiting, then
    summarised with :meth:`FeatureStats.from_samples` (exact) and merged with the
    earlier chunks, so a long stream costs few merges and bounded memory.
    """

    def __init__(self, chunk_rows: int = 8192) -> None:
        self._chunk_rows = chunk_rows
        self._pending: dict[str, list[npt.NDArray[np.floating]]] = {}
        self._rows: dict[str, int] = {}
        self._done: dict[str, FeatureStats] = {}

    def add(self, features: Mapping[str, npt.NDArray[np.floating]]) -> None:
        """Add one block per feature (e.g. one episode's observations and actions)."""
        for key, values in features.items():
            self._pending.setdefault(key, []).append(values)
            self._rows[key] = self._rows.get(key, 0) + int(values.shape[0])
            if self._rows[key] >= self._chunk_rows:
                self._flush(key)

    def result(self) -> dict[str, FeatureStats]:
        """The statistics of everything added so far, per feature."""
        for key in list(self._pending):
            self._flush(key)
        return dict(sorted(self._done.items()))

    def _flush(self, key: str) -> None:
        blocks = self._pending.pop(key, [])
        self._rows[key] = 0
        if not blocks:
            return
        chunk = FeatureStats.from_samples(np.concatenate(blocks))
        self._done[key] = merge_stats(self._done[key], chunk) if key in self._done else chunk
