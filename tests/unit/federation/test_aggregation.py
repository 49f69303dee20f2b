"""Aggregation through Flower's strategies and DP wrappers, checked against numpy."""

from __future__ import annotations

import math
from collections.abc import Iterator
from statistics import NormalDist
from typing import Any

import numpy as np
import pytest
from tests.builders.flower import set_task_identity

from dure.policies.errors import DocumentError
from dure.policies.examples import example_job_value
from dure.policies.job import JobManifest
from dure.server.federation.aggregation import (
    STRATEGIES,
    build_strategy,
    check_job_supported,
    proximal_mu,
    update_message,
)
from dure.server.federation.aggregation import aggregate as aggregate_replies
from dure.server.federation.errors import FederationError

REF = {"w": np.zeros((3, 2), np.float32), "b": np.zeros(2, np.float32)}
Update = tuple[dict[str, np.ndarray], int]


def aggregate(
    job: JobManifest, round: int, ref: dict[str, np.ndarray], updates: list[Update]
) -> dict[str, np.ndarray]:
    """Aggregate ``(tensors, examples)`` pairs through fresh reply Messages."""
    return aggregate_replies(job, round, ref, [update_message(t, n) for t, n in updates])


@pytest.fixture(autouse=True)
def _task_identity() -> None:
    set_task_identity()


def _job(strategy: str = "fedavg", params: dict[str, Any] | None = None, **dp: str) -> JobManifest:
    value = example_job_value(dp=bool(dp))
    value["aggregation"] = {
        "strategy": strategy,
        "secure": False,
        "norm_bound": "10.0",
        "params": params or {},
    }
    if dp:
        value["dp"] = {**value["dp"], **dp}  # type: ignore[dict-item]
    return JobManifest.from_value(value)


def _updates(rng: np.random.Generator, n: int = 5) -> list[tuple[dict[str, np.ndarray], int]]:
    return [
        (
            {k: rng.normal(size=v.shape).astype(np.float32) for k, v in REF.items()},
            int(rng.integers(1, 100)),
        )
        for _ in range(n)
    ]


def test_fedavg_is_the_example_weighted_mean() -> None:
    updates = _updates(np.random.default_rng(0))
    result = aggregate(_job(), 1, REF, updates)
    for name, reference in REF.items():
        expected = np.average(
            [u[name] for u, _ in updates], axis=0, weights=[n for _, n in updates]
        )
        np.testing.assert_allclose(result[name], expected, rtol=1e-5, atol=1e-6)
        assert result[name].dtype == reference.dtype


def test_fedprox_aggregates_as_fedavg_and_carries_mu() -> None:
    updates = _updates(np.random.default_rng(1))
    job = _job("fedprox", {"proximal_mu": "0.01"})
    assert proximal_mu(job) == pytest.approx(0.01) and proximal_mu(_job()) == 0.0
    np.testing.assert_allclose(
        aggregate(job, 1, REF, updates)["w"], aggregate(_job(), 1, REF, updates)["w"], rtol=1e-6
    )


def test_trimmed_mean_drops_the_extremes() -> None:
    updates = [
        ({k: np.full(v.shape, x, np.float32) for k, v in REF.items()}, 1) for x in (0, 1, 2, 3, 100)
    ]
    result = aggregate(_job("trimmed-mean", {"beta": "0.2"}), 1, REF, updates)
    np.testing.assert_allclose(result["w"], 2.0)


def test_krum_picks_an_update_close_to_the_others() -> None:
    updates = [
        ({k: np.full(v.shape, x, np.float32) for k, v in REF.items()}, 1)
        for x in (1.0, 1.1, 0.9, 50.0)
    ]
    result = aggregate(_job("krum", {"num_malicious_nodes": 1}), 1, REF, updates)
    assert float(result["w"][0, 0]) in (1.0, pytest.approx(1.1), pytest.approx(0.9))


def test_the_callers_arrays_are_never_modified() -> None:
    updates = _updates(np.random.default_rng(2))
    before = [{k: v.copy() for k, v in u.items()} for u, _ in updates]
    aggregate(_job("trimmed-mean", {"beta": "0.2"}), 1, REF, updates)
    aggregate(_job(clip="0.1", noise_multiplier="1.0"), 1, REF, updates)
    for (u, _), b in zip(updates, before, strict=True):
        assert all(np.array_equal(u[k], b[k]) for k in u)


@pytest.fixture
def seeded_numpy() -> Iterator[None]:
    """Seed numpy's global generator, from which Flower's DP wrappers draw their noise.

    Flower's ``add_gaussian_noise_inplace`` calls ``np.random.normal`` with no
    generator argument, so a seed here makes the noise (and the test) repeatable;
    the previous global state is restored afterwards.
    """
    state = np.random.get_state()
    np.random.seed(20261110)
    try:
        yield
    finally:
        np.random.set_state(state)


def _chernoff_tolerance(degrees: int, failure: float) -> float:
    """The ``t`` with ``P(|X / k - 1| > t) <= failure`` for ``X ~ chi2(k)`` (Chernoff bound).

    The upper tail obeys ``P(X / k >= 1 + t) <= exp(-k / 2 * (t - ln(1 + t)))`` and
    the lower ``P(X / k <= 1 - t) <= exp(-k / 2 * (-t - ln(1 - t)))``; ``t`` is found
    by bisection so that both together are at most ``failure``.
    """
    target = math.log(2 / failure) * 2 / degrees  # each tail <= failure / 2
    low, high = 0.0, 1e3
    for _ in range(100):  # the upper tail's exponent is the smaller one: solve for it
        middle = (low + high) / 2
        low, high = (middle, high) if middle - math.log1p(middle) < target else (low, middle)
    return high


def _gaussian_tolerance(count: int, failure: float) -> float:
    """The ``z`` with ``P(max of count |N(0, 1)| > z) <= failure`` (union bound)."""
    return float(NormalDist().inv_cdf(1 - failure / (2 * count)))


FAILURE = 1e-9  # the probability that a correct implementation fails a statistical check


@pytest.mark.usefixtures("seeded_numpy")
def test_server_side_dp_clips_weighs_equally_and_adds_calibrated_noise() -> None:
    clip, noise, n, rounds = 0.5, 2.0, 4, 200
    job = _job(clip=str(clip), noise_multiplier=str(noise))
    big = [
        ({"w": np.full((3, 2), 10.0, np.float32), "b": np.zeros(2, np.float32)}, k)
        for k in (1, 1000, 5, 7)
    ]
    samples = np.stack(
        [
            np.concatenate([(out := aggregate(job, r, REF, big))["w"].ravel(), out["b"]])
            for r in range(rounds)
        ]
    ).astype(np.float64)
    # Every update clipped to norm 0.5 along the same direction (w only), uniform mean,
    # then noise N(0, sigma^2) with sigma = noise * clip / contributors on every coordinate.
    expected = np.concatenate([np.full(6, clip / np.sqrt(6)), np.zeros(2)])
    sigma = noise * clip / n
    residuals = samples - expected
    # Each coordinate's mean residual is N(0, sigma^2 / rounds) when calibrated.
    z = _gaussian_tolerance(expected.size, FAILURE)
    assert np.all(np.abs(residuals.mean(axis=0)) <= z * sigma / np.sqrt(rounds)), residuals.mean(
        axis=0
    )
    # sum(residual^2) / sigma^2 is chi2 with one degree per value when calibrated.
    t = _chernoff_tolerance(residuals.size, FAILURE)
    ratio = float(np.square(residuals).sum() / sigma**2 / residuals.size)
    assert 1 - t <= ratio <= 1 + t, (ratio, t)


@pytest.mark.usefixtures("seeded_numpy")
def test_client_side_dp_leaves_clipping_to_the_factories() -> None:
    """In client-fixed mode the coordinator neither clips nor weighs by examples.

    The factories clip before signing (``rounds`` rejects an update over the
    clip before it reaches aggregation), so an update longer than the clip that
    reached ``aggregate`` is averaged as sent.  Clipping it here would be
    server-side clipping under a client-side label.
    """
    clip = 0.5
    client = _job(clip=str(clip), noise_multiplier="0.000001", mode="client-fixed")
    server = _job(clip=str(clip), noise_multiplier="0.000001", mode="server-fixed")
    values = (1.0, 2.0, 6.0)  # norms sqrt(6) * value, all far over the clip
    updates = [
        ({"w": np.full((3, 2), x, np.float32), "b": np.zeros(2, np.float32)}, k)
        for x, k in zip(values, (1, 50, 1000), strict=True)
    ]
    assert all(np.sqrt(6) * x > clip for x in values)
    np.testing.assert_allclose(aggregate(client, 1, REF, updates)["w"], np.mean(values), atol=1e-4)
    # The same updates under server-side clipping: each cut to the clip first.
    np.testing.assert_allclose(
        aggregate(server, 1, REF, updates)["w"], clip / np.sqrt(6), atol=1e-4
    )


def test_strategies_this_coordinator_does_not_run_are_refused_with_the_fix() -> None:
    job = _job("bulyan")
    with pytest.raises(FederationError, match="'bulyan' is not supported") as caught:
        check_job_supported(job)
    assert "supported strategies" in caught.value.hint


@pytest.mark.parametrize("strategy", ["krum", "fedavgm", "fedadam", "fedyogi", "fedadagrad"])
def test_secure_aggregation_needs_a_mean(strategy: str) -> None:
    value = example_job_value(dp=False)
    value["aggregation"] = {"strategy": strategy, "secure": True, "norm_bound": "1", "params": {}}
    with pytest.raises(FederationError, match=f"not {strategy} \\(SecAgg\\+ only runs") as caught:
        check_job_supported(JobManifest.from_value(value))
    assert "without aggregation.secure" in caught.value.hint


@pytest.mark.parametrize(
    "aggregation,message",
    [
        ({"strategy": "krum", "params": {"beta": "0.1"}}, "not parameters of krum"),
        ({"strategy": "trimmed-mean", "params": {"beta": "0.7"}}, "params.beta must be"),
        ({"strategy": "fedavgm", "params": {"server_momentum": "1"}}, "server_momentum"),
        ({"strategy": "fedadam", "params": {"eta": "0"}}, "params.eta must be"),
        ({"strategy": "fedyogi", "params": {"tau": 1}}, "params.tau must be decimal"),
    ],
)
def test_the_manifest_refuses_aggregation_no_coordinator_can_run(
    aggregation: dict[str, Any], message: str
) -> None:
    value = example_job_value(dp=False)
    value["aggregation"] = {"secure": False, "norm_bound": "1", "params": {}, **aggregation}
    with pytest.raises(DocumentError, match=message) as caught:
        JobManifest.from_value(value)
    assert "fix:" in caught.value.message


def test_dp_needs_a_mean_and_fixed_clipping() -> None:
    for strategy in ("krum", "fedavgm", "fedadam"):
        with pytest.raises(FederationError, match=f"DP needs fedavg or fedprox, not {strategy}"):
            check_job_supported(_job(strategy, clip="1.0"))
    with pytest.raises(FederationError, match="not supported"):
        check_job_supported(_job(mode="server-adaptive"))
    check_job_supported(_job(clip="1.0"))


def test_every_supported_strategy_builds() -> None:
    for name in STRATEGIES:
        params: dict[str, Any] = {"multi-krum": {"num_nodes_to_select": 2}}.get(name, {})
        assert build_strategy(_job(name, params)) is not None


def _two_rounds(job: JobManifest, optimiser: Any) -> list[dict[str, np.ndarray]]:
    """Two rounds from REF: round 1's updates at 1 and 3, round 2's at (model + 1)."""
    model = {k: v.copy() for k, v in REF.items()}
    models = []
    for round, shift in ((1, (1.0, 3.0)), (2, (1.0, 1.0))):
        updates = [({k: v + s for k, v in model.items()}, 10) for s in shift]
        messages = [update_message(t, n) for t, n in updates]
        model = aggregate_replies(job, round, model, messages, None, optimiser)
        models.append(model)
    return models


def test_fedavgm_momentum_carries_round_1_into_round_2() -> None:
    momentum, lr = 0.9, 1.0
    job = _job("fedavgm", {"server_momentum": "0.9", "server_learning_rate": "1"})
    first, second = _two_rounds(job, build_strategy(job))
    # Round 1: pseudo-gradient g1 = x0 - mean = -2; v1 = g1; x1 = x0 - lr * v1 = 2 (FedAvg's).
    np.testing.assert_allclose(first["w"], 2.0)
    # Round 2: g2 = -1; v2 = 0.9 * v1 + g2 = -2.8; x2 = x1 - lr * v2 = 4.8 (FedAvg: 3).
    v2 = momentum * -2.0 + -1.0
    np.testing.assert_allclose(second["w"], 2.0 - lr * v2, rtol=1e-6)
    plain = _two_rounds(_job("fedavg"), None)[1]
    np.testing.assert_allclose(plain["w"], 3.0)


def test_fedadam_moments_persist_across_rounds() -> None:
    job = _job("fedadam", {"eta": "0.1", "beta_1": "0.9", "beta_2": "0.99", "tau": "0.001"})
    strategy = build_strategy(job)
    first, second = _two_rounds(job, strategy)
    # By hand, Flower's FedAdam (bias correction at server_round + 1).
    b1, b2, eta, tau = 0.9, 0.99, 0.1, 0.001
    m = v = 0.0
    x = 0.0
    for round, delta in ((1, 2.0), (2, 1.0)):
        m = b1 * m + (1 - b1) * delta
        v = b2 * v + (1 - b2) * delta**2
        eta_t = eta * math.sqrt(1 - b2 ** (round + 1)) / (1 - b1 ** (round + 1))
        x = x + eta_t * m / (math.sqrt(v) + tau)
        expected = first if round == 1 else second
        np.testing.assert_allclose(expected["w"], x, rtol=1e-5)
    # A strategy rebuilt for round 2 (the moments lost) lands elsewhere.
    fresh = {k: np.full_like(v, first["w"].flat[0]) for k, v in REF.items()}
    replies = [update_message({k: v + 1.0 for k, v in fresh.items()}, 10)] * 2
    reset = aggregate_replies(job, 2, fresh, replies, None, build_strategy(job))
    assert not np.allclose(reset["w"], second["w"])


def test_a_server_optimiser_without_its_run_strategy_is_refused() -> None:
    job = _job("fedyogi")
    with pytest.raises(FederationError, match="keeps state across rounds") as caught:
        aggregate(job, 1, REF, _updates(np.random.default_rng(0), 2))
    assert "build_strategy" in caught.value.hint
