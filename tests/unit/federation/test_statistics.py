"""Consortium statistics: the sites' moments merge exactly into the pooled statistics."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dure.client.episodes.stats import FeatureStats, Normalizer
from dure.client.federation.statistics import consortium_stats, moments_json
from dure.client.federation.wire import RequestError
from dure.server.federation.errors import FederationError
from dure.server.federation.statistics import ConsortiumStats, merge_moments, parse_moments


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=5), st.integers(0, 2**16))
def test_merged_moments_equal_the_pooled_statistics(sizes: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    parts = [rng.normal(loc=rng.normal(), scale=2, size=(n, 3)) for n in sizes]
    answers = [
        parse_moments(moments_json({"action": FeatureStats.from_samples(p)}), "t") for p in parts
    ]
    merged = merge_moments(answers)["action"]
    pooled = np.concatenate(parts)
    assert merged.count == len(pooled)
    np.testing.assert_allclose(merged.mean, pooled.mean(axis=0), atol=1e-9)
    np.testing.assert_allclose(
        merged.m2, ((pooled - pooled.mean(axis=0)) ** 2).sum(axis=0), rtol=1e-9, atol=1e-9
    )
    np.testing.assert_allclose(merged.minimum, pooled.min(axis=0))
    np.testing.assert_allclose(merged.maximum, pooled.max(axis=0))


def test_the_consortium_statistics_normalise_like_the_pooled_data() -> None:
    rng = np.random.default_rng(3)
    parts = [rng.normal(size=(n, 4)).astype(np.float32) for n in (10, 30)]
    answers = [
        parse_moments(moments_json({"observation.state": FeatureStats.from_samples(p)}), "t")
        for p in parts
    ]
    stats = ConsortiumStats(merge_moments(answers), ("a",), 2)
    received = consortium_stats(stats.features_json())["observation.state"]
    pooled = FeatureStats.from_samples(np.concatenate(parts))
    modes: tuple[Literal["mean_std", "min_max"], ...] = ("mean_std", "min_max")
    for mode in modes:
        got, want = Normalizer.from_stats(received, mode), Normalizer.from_stats(pooled, mode)
        np.testing.assert_allclose(got.shift, want.shift, rtol=1e-5)
        np.testing.assert_allclose(got.scale, want.scale, rtol=1e-5)
    assert stats.observation_dim == 4


@pytest.mark.parametrize(
    "text",
    [
        "{",
        "[]",
        '{"a": {"count": 0, "mean": [0], "m2": [0], "min": [0], "max": [0]}}',
        '{"a": {"count": 2, "mean": [0, 1], "m2": [0], "min": [0], "max": [0]}}',
        '{"a": {"count": 2, "mean": [NaN], "m2": [0], "min": [0], "max": [0]}}',
        "{}",
    ],
)
def test_malformed_answers_are_refused(text: str) -> None:
    with pytest.raises(FederationError):
        parse_moments(text, "site")


def test_malformed_consortium_statistics_are_refused_by_the_factory() -> None:
    with pytest.raises(RequestError):
        consortium_stats('{"a": {"count": 1}}')


def test_features_every_site_has_are_kept() -> None:
    one = FeatureStats.from_samples(np.ones((2, 1)))
    a = parse_moments(moments_json({"x": one, "y": one}), "a")
    b = parse_moments(moments_json({"x": one}), "b")
    assert set(merge_moments([a, b])) == {"x"}
    with pytest.raises(FederationError):
        merge_moments([])
