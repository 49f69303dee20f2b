"""The factory's side of the statistics query, and the consortium statistics it receives.

A site answers ``query.stats`` (after the policy gate) with mergeable moments
of each feature over exactly the episodes its policy allows for the job:
``count``, ``mean``, ``m2`` (sum of squared deviations), ``min`` and ``max`` per
column; never a frame, never a quantile.  The coordinator merges the sites'
moments (:mod:`dure.server.federation.statistics` documents the JSON) and sends
the consortium statistics with every round; :func:`consortium_stats` turns them
into :class:`~dure.client.episodes.stats.FeatureStats` for normalisation.

The consortium statistics carry no quantiles, so their quantile sketch is a
placeholder (evenly spaced from ``min`` to ``max``): ``mean_std`` and
``min_max`` normalisation (what :class:`~dure.client.episodes.stats.Normalizer`
reads) are exact; quantile-based normalisation is not available to a federation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np

from dure.client.episodes.stats import SKETCH_POINTS, FeatureStats
from dure.client.federation.wire import RequestError

__all__ = ["consortium_stats", "moments_json"]


def moments_json(stats: Mapping[str, FeatureStats]) -> str:
    """Render a site's statistics as the moments JSON (no quantiles)."""
    return json.dumps(
        {
            name: {
                "count": item.count,
                "mean": item.mean.tolist(),
                "m2": item.m2.tolist(),
                "min": item.minimum.tolist(),
                "max": item.maximum.tolist(),
            }
            for name, item in sorted(stats.items())
        }
    )


def consortium_stats(text: str) -> dict[str, FeatureStats]:
    """Parse the consortium statistics sent with a round.

    Raises
    ------
    RequestError
        If the JSON is malformed or a feature's values are inconsistent.
    """
    try:
        value = json.loads(text)
        return {str(name): _feature(item) for name, item in value.items()}
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise RequestError(f"malformed consortium statistics: {exc}") from exc


def _feature(item: Mapping[str, object]) -> FeatureStats:
    arrays = {k: np.asarray(item[k], dtype=np.float64) for k in ("mean", "m2", "min", "max")}
    count = item["count"]
    if not isinstance(count, int) or count < 1 or len({a.shape for a in arrays.values()}) != 1:
        raise ValueError("count must be a positive integer and the columns of equal length")
    if not all(np.isfinite(a).all() and a.ndim == 1 for a in arrays.values()):
        raise ValueError("statistics must be finite vectors")
    sketch = np.linspace(arrays["min"], arrays["max"], SKETCH_POINTS)
    return FeatureStats(count, arrays["mean"], arrays["m2"], arrays["min"], arrays["max"], sketch)
