"""Mergeable statistics checked against numpy (np.mean, np.std, np.quantile)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from tests.builders.episodes import make_episode

from dure.client.episodes.stats import (
    QUANTILES,
    FeatureStats,
    Normalizer,
    StatsAccumulator,
    episode_stats,
    merge_all,
    merge_stats,
    stats_by_feature,
)
from dure.client.errors import EpisodeError

RNG = np.random.default_rng(42)


def _parts(k: int, n: int = 300, d: int = 5) -> list[np.ndarray]:
    return [
        RNG.normal(loc=RNG.uniform(-3, 3), scale=RNG.uniform(0.5, 2), size=(n, d)) for _ in range(k)
    ]


def test_single_summary_matches_numpy_exactly() -> None:
    values = _parts(1)[0]
    stats = FeatureStats.from_samples(values)
    assert stats.count == 300 and stats.dim == 5
    np.testing.assert_allclose(stats.mean, np.mean(values, axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.std, np.std(values, axis=0), rtol=1e-12)
    np.testing.assert_array_equal(stats.minimum, values.min(axis=0))
    np.testing.assert_array_equal(stats.maximum, values.max(axis=0))
    for q in QUANTILES:  # on the sketch grid: exact
        np.testing.assert_allclose(stats.quantile(q), np.quantile(values, q, axis=0), rtol=1e-12)


def test_merged_moments_are_exact_and_quantiles_close() -> None:
    parts = _parts(37)
    merged = merge_all([FeatureStats.from_samples(p) for p in parts])
    whole = np.concatenate(parts)
    np.testing.assert_allclose(merged.mean, whole.mean(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(merged.std, whole.std(axis=0), rtol=1e-10)
    np.testing.assert_array_equal(merged.minimum, whole.min(axis=0))
    np.testing.assert_array_equal(merged.maximum, whole.max(axis=0))
    spread = whole.max(axis=0) - whole.min(axis=0)
    for q in QUANTILES:
        error = np.abs(merged.quantile(q) - np.quantile(whole, q, axis=0)) / spread
        assert error.max() < 0.01, (q, error.max())
        ranks = (whole <= merged.quantile(q)).mean(axis=0)
        assert np.abs(ranks - q).max() < 0.005, (q, ranks)


def test_merge_order_changes_moments_only_by_rounding() -> None:
    samples = _parts(6)
    parts = [FeatureStats.from_samples(p) for p in samples]
    forward, backward = merge_all(parts), merge_all(parts[::-1])
    np.testing.assert_allclose(forward.mean, backward.mean, rtol=1e-12)
    np.testing.assert_allclose(forward.m2, backward.m2, rtol=1e-10)
    whole = np.concatenate(samples)
    for q in QUANTILES:  # the sketch is approximate: both orders land close in rank
        for merged in (forward, backward):
            ranks = (whole <= merged.quantile(q)).mean(axis=0)
            assert np.abs(ranks - q).max() < 0.005, (q, ranks)


@settings(max_examples=100, deadline=None)
@given(
    values=arrays(
        np.float64,
        st.tuples(st.integers(2, 60), st.integers(1, 3)),
        elements=st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False),
    ),
    cut=st.floats(0.05, 0.95),
)
def test_split_and_merge_equals_whole(values: np.ndarray, cut: float) -> None:
    k = max(1, min(values.shape[0] - 1, int(cut * values.shape[0])))
    merged = merge_stats(
        FeatureStats.from_samples(values[:k]), FeatureStats.from_samples(values[k:])
    )
    whole = FeatureStats.from_samples(values)
    assert merged.count == whole.count
    np.testing.assert_allclose(merged.mean, whole.mean, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(merged.m2, whole.m2, rtol=1e-7, atol=1e-6)
    np.testing.assert_array_equal(merged.minimum, whole.minimum)
    np.testing.assert_array_equal(merged.maximum, whole.maximum)
    for q in QUANTILES:  # within the data's range, and monotone in q
        value = merged.quantile(q)
        assert np.all(value >= whole.minimum - 1e-9) and np.all(value <= whole.maximum + 1e-9)
    qs = np.array([merged.quantile(q) for q in QUANTILES])
    assert np.all(np.diff(qs, axis=0) >= -1e-9)


def test_constant_feature() -> None:
    ones = FeatureStats.from_samples(np.ones((10, 2)))
    merged = merge_stats(ones, FeatureStats.from_samples(np.ones((4, 2))))
    np.testing.assert_array_equal(merged.std, [0.0, 0.0])
    np.testing.assert_array_equal(merged.quantile(0.5), [1.0, 1.0])
    normal = Normalizer.from_stats(merged)
    np.testing.assert_array_equal(normal.normalise(np.ones((3, 2))), np.zeros((3, 2)))


def test_summary_is_the_lerobot_entry() -> None:
    summary = FeatureStats.from_samples(_parts(1)[0]).summary()
    assert set(summary) == {"min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"}
    assert summary["count"] == [300]
    assert len(summary["mean"]) == 5


@pytest.mark.parametrize("mode", ["mean_std", "min_max"])
def test_normalizer_round_trip(mode: str) -> None:
    values = _parts(1)[0].astype(np.float32)
    normal = Normalizer.from_stats(FeatureStats.from_samples(values), mode)  # type: ignore[arg-type]
    out = normal.normalise(values)
    assert out.dtype == np.float32
    if mode == "mean_std":
        np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-5)
        np.testing.assert_allclose(out.std(axis=0), 1, atol=1e-4)
    else:
        np.testing.assert_allclose(out.min(axis=0), -1, atol=1e-5)
        np.testing.assert_allclose(out.max(axis=0), 1, atol=1e-5)
    np.testing.assert_allclose(normal.denormalise(out), values, rtol=1e-5, atol=1e-5)


def test_episode_stats_and_by_feature() -> None:
    first, second = make_episode(0, force=True), make_episode(1, force=True)
    per = [episode_stats(first), episode_stats(second)]
    assert sorted(per[0]) == ["action", "observation.force", "observation.state"]
    merged = stats_by_feature(per)
    both = np.concatenate([first.frames.action, second.frames.action])
    np.testing.assert_allclose(merged["action"].mean, both.mean(axis=0), rtol=1e-6)


def test_errors() -> None:
    with pytest.raises(EpisodeError, match="finite"):
        FeatureStats.from_samples(np.array([[np.nan]]))
    with pytest.raises(EpisodeError, match="empty"):
        merge_all([])
    with pytest.raises(EpisodeError, match="columns"):
        merge_stats(
            FeatureStats.from_samples(np.ones((2, 1))), FeatureStats.from_samples(np.ones((2, 2)))
        )


def test_accumulator_is_exact_within_a_chunk_and_merges_chunks() -> None:
    parts = _parts(9, n=100, d=3)
    exact, chunked = StatsAccumulator(), StatsAccumulator(chunk_rows=250)
    for part in parts:
        exact.add({"x": part})
        chunked.add({"x": part})
    whole = np.concatenate(parts)
    one = exact.result()["x"]
    for q in QUANTILES:
        np.testing.assert_allclose(one.quantile(q), np.quantile(whole, q, axis=0), rtol=1e-12)
    many = chunked.result()["x"]
    assert many.count == one.count == 900
    np.testing.assert_allclose(many.mean, whole.mean(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(many.std, whole.std(axis=0), rtol=1e-10)
    assert StatsAccumulator().result() == {}


def test_by_feature_equals_feature_by_feature_merge() -> None:
    per = [episode_stats(make_episode(seed, force=True)) for seed in range(5)]
    wide = stats_by_feature(per)
    for key in ("action", "observation.force", "observation.state"):
        alone = merge_all([item[key] for item in per])
        np.testing.assert_allclose(wide[key].mean, alone.mean, rtol=1e-12)
        np.testing.assert_allclose(wide[key].m2, alone.m2, rtol=1e-12)
        np.testing.assert_allclose(wide[key].sketch, alone.sketch, rtol=1e-12, atol=1e-12)
    with pytest.raises(EpisodeError, match="empty"):
        stats_by_feature([])
