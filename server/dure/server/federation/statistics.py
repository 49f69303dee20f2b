"""Consortium feature statistics, merged from the sites' answers to a statistics query.

Before the first round every admitted site answers ``query.stats`` (through its
policy gate, over exactly the episodes its policy allows) with mergeable
moments per feature: ``count``, ``mean``, ``m2`` (sum of squared deviations),
``min`` and ``max``, one value per column; never frames.  The coordinator merges
them exactly (Chan et al.'s parallel update) into the consortium statistics and
sends them with every round, so every site normalises its inputs the same way;
the task vocabulary is the sorted union of the sites' tasks.

JSON shape, both of a site's answer and of the consortium statistics::

    {"<feature>": {"count": int, "mean": [float], "m2": [float],
                   "min": [float], "max": [float]}, ...}
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from dure.server.federation.errors import FederationError

__all__ = ["ConsortiumStats", "Moments", "merge_moments", "parse_moments"]

_F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Moments:
    """Mergeable moments of one ``(n, d)`` feature, per column."""

    count: int
    mean: _F64
    m2: _F64
    minimum: _F64
    maximum: _F64

    @property
    def dim(self) -> int:
        """Number of columns."""
        return int(self.mean.shape[0])

    def merge(self, other: Moments) -> Moments:
        """Return the moments of the union of both sample sets."""
        if other.dim != self.dim:
            raise FederationError(f"cannot merge moments of {self.dim} and {other.dim} columns")
        n = self.count + other.count
        delta = other.mean - self.mean
        return Moments(
            count=n,
            mean=self.mean + delta * (other.count / n),
            m2=self.m2 + other.m2 + delta**2 * (self.count * other.count / n),
            minimum=np.minimum(self.minimum, other.minimum),
            maximum=np.maximum(self.maximum, other.maximum),
        )

    def to_json_value(self) -> dict[str, Any]:
        """Return the JSON object of the module docstring."""
        return {
            "count": self.count,
            "mean": self.mean.tolist(),
            "m2": self.m2.tolist(),
            "min": self.minimum.tolist(),
            "max": self.maximum.tolist(),
        }


def parse_moments(text: str, source: str) -> dict[str, Moments]:
    """Parse a site's statistics answer; raise :class:`FederationError` if malformed."""
    try:
        value = json.loads(text)
        parsed = {name: _moments(item) for name, item in value.items()}
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise FederationError(f"{source}: malformed statistics answer: {exc}") from exc
    if not parsed:
        raise FederationError(f"{source}: the statistics answer names no feature")
    return parsed


def merge_moments(parts: Sequence[Mapping[str, Moments]]) -> dict[str, Moments]:
    """Merge the sites' moments feature by feature (features every site has)."""
    if not parts:
        raise FederationError("no site answered the statistics query")
    names = sorted(set.intersection(*(set(part) for part in parts)))
    merged = {}
    for name in names:
        total = parts[0][name]
        for part in parts[1:]:
            total = total.merge(part[name])
        merged[name] = total
    return merged


@dataclass(frozen=True)
class ConsortiumStats:
    """The merged statistics and task vocabulary a run sends with every round."""

    features: dict[str, Moments]
    tasks: tuple[str, ...]
    episodes: int

    @property
    def observation_dim(self) -> int:
        """Columns of all ``observation.*`` features together."""
        return sum(m.dim for name, m in self.features.items() if name.startswith("observation."))

    @property
    def action_dim(self) -> int:
        """Columns of the ``action`` feature."""
        if "action" not in self.features:
            raise FederationError("the consortium statistics have no 'action' feature")
        return self.features["action"].dim

    def features_json(self) -> str:
        """The statistics as the JSON of the module docstring."""
        return json.dumps({name: m.to_json_value() for name, m in sorted(self.features.items())})

    def tasks_json(self) -> str:
        """The task vocabulary as a JSON list."""
        return json.dumps(list(self.tasks))


def _moments(item: Mapping[str, Any]) -> Moments:
    columns = {key: np.asarray(item[key], dtype=np.float64) for key in ("mean", "m2", "min", "max")}
    count = item["count"]
    shapes = {array.shape for array in columns.values()}
    if (
        not isinstance(count, int)
        or count < 1
        or len(shapes) != 1
        or len(next(iter(shapes))) != 1
        or not all(np.isfinite(array).all() for array in columns.values())
    ):
        raise ValueError("count must be a positive integer and mean/m2/min/max finite, same length")
    return Moments(count, columns["mean"], columns["m2"], columns["min"], columns["max"])
