"""Dure's weighted mean against Flower's FedAvg, a naive reference and ``np.average``."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from flwr.app import Array, Message, MetricRecord
from flwr.serverapp.strategy import FedAvg, FedProx
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.builders.flower import set_task_identity, wire_copy

from dure.policies.examples import example_job_value
from dure.policies.job import JobManifest
from dure.server.federation.aggregation import aggregate, update_message
from dure.server.federation.errors import FederationError
from dure.server.federation.weighted import decode_array, weighted_mean
from dure.server.federation.wire import numpy_arrays

Tensors = dict[str, np.ndarray]
SHAPES = st.lists(
    st.lists(st.integers(0, 5), min_size=0, max_size=3).map(tuple), min_size=1, max_size=4
)


@pytest.fixture(autouse=True)
def _task_identity() -> None:
    set_task_identity()


def _job(strategy: str = "fedavg") -> JobManifest:
    value = example_job_value(dp=False)
    value["aggregation"] = {"strategy": strategy, "secure": False, "norm_bound": "1000000000.0"}
    if strategy == "fedprox":
        value["aggregation"]["params"] = {"proximal_mu": "0.1"}  # type: ignore[index]
    return JobManifest.from_value(value)


def _updates(seed: int, shapes: list[tuple[int, ...]], n: int, dtype: Any) -> list[Tensors]:
    rng = np.random.default_rng(seed)
    scales = 10.0 ** rng.integers(-3, 4, size=len(shapes))
    return [
        {f"t{i}": (rng.standard_normal(s) * scales[i]).astype(dtype) for i, s in enumerate(shapes)}
        for _ in range(n)
    ]


def _replies(updates: list[Tensors], weights: list[int]) -> list[Message]:
    """Real train replies, as the coordinator receives them (Flower's wire encoding)."""
    return [wire_copy(update_message(u, w)) for u, w in zip(updates, weights, strict=True)]


def _flower(replies: list[Message], strategy: FedAvg | None = None) -> Tensors:
    arrays, _ = (strategy or FedAvg()).aggregate_train(1, replies)
    assert arrays is not None
    return {name: arrays[name].numpy() for name in arrays}


def _naive(updates: list[Tensors], weights: list[int], name: str) -> np.ndarray:
    """Element by element, in Python scalars of the tensors' dtype (Flower's formula)."""
    factors = [w / sum(weights) for w in weights]
    dtype = updates[0][name].dtype.type
    flat = [u[name].reshape(-1) for u in updates]
    out = []
    for k in range(flat[0].size):
        total = dtype(flat[0][k] * dtype(factors[0]))
        for values, factor in zip(flat[1:], factors[1:], strict=True):
            total = dtype(total + dtype(values[k] * dtype(factor)))
        out.append(total)
    return np.asarray(out, dtype=dtype).reshape(updates[0][name].shape)


def _equal(a: Tensors, b: Tensors) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and np.array_equal(a[k], b[k])
        for k in a
    )


def _agree(a: Tensors, b: Tensors, updates: list[Tensors], weights: list[int]) -> bool:
    """Bit for bit on the exact path; within float rounding where BLAS accumulates.

    Each path rounds at most twice per reply (product, sum), so each is within
    ``2n`` half-ulps of the exact mean's magnitude sum, and they are within ``4n``
    of each other.
    """
    if a.keys() != b.keys():
        return False
    factors = np.asarray(weights, np.float64) / sum(weights)
    for k in a:
        if a[k].dtype != b[k].dtype or a[k].shape != b[k].shape:
            return False
        if a[k].dtype not in (np.float32, np.float64):
            if not np.array_equal(a[k], b[k]):
                return False
            continue
        magnitude = np.tensordot(
            factors, np.stack([abs(u[k].astype(np.float64)) for u in updates]), 1
        )
        bound = 4 * len(weights) * np.finfo(a[k].dtype).eps * magnitude
        if not np.all(np.abs(a[k].astype(np.float64) - b[k]) <= bound):
            return False
    return True


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shapes=SHAPES,
    weights=st.lists(st.integers(1, 10**6), min_size=1, max_size=8),
    dtype=st.sampled_from([np.float32, np.float64, np.float16, np.int64]),
)
def test_weighted_mean_is_flowers_fedavg_within_float_rounding(
    seed: int, shapes: list[tuple[int, ...]], weights: list[int], dtype: Any
) -> None:
    updates = _updates(seed, shapes, len(weights), dtype)
    replies = _replies(updates, weights)
    expected = _flower(replies)
    decoded = [numpy_arrays(r.content["arrays"]) for r in replies]  # type: ignore[arg-type]
    assert _agree(weighted_mean(decoded, weights, list(updates[0])), expected, updates, weights)
    reference = {name: np.zeros_like(t) for name, t in updates[0].items()}
    as_model = {name: value.astype(dtype) for name, value in expected.items()}
    for strategy in ("fedavg", "fedprox"):
        ours = aggregate(_job(strategy), 1, reference, replies, decoded)
        assert _agree(ours, as_model, updates, weights)
        assert _equal(aggregate(_job(strategy), 1, reference, replies), ours)
    assert _equal(_flower(replies, FedProx(proximal_mu=0.1)), expected)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    weights=st.lists(st.integers(1, 1000), min_size=1, max_size=6),
)
def test_weighted_mean_matches_the_naive_reference(seed: int, weights: list[int]) -> None:
    for dtype in (np.float16, np.float32):  # the exact path, and BLAS's
        updates = _updates(seed, [(3, 4), (5,), ()], len(weights), dtype)
        result = weighted_mean(updates, weights, list(updates[0]))
        naive = {name: _naive(updates, weights, name) for name in updates[0]}
        if dtype == np.float16:
            assert _equal(result, naive)
        else:
            assert _agree(result, naive, updates, weights)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shapes=SHAPES,
    weights=st.lists(st.integers(1, 10**6), min_size=1, max_size=8),
)
def test_weighted_mean_is_np_average_within_float32_rounding(
    seed: int, shapes: list[tuple[int, ...]], weights: list[int]
) -> None:
    updates = _updates(seed, shapes, len(weights), np.float32)
    result = weighted_mean(updates, weights, list(updates[0]))
    factors = np.asarray(weights, np.float64) / sum(weights)
    for name in updates[0]:
        stacked = np.stack([u[name].astype(np.float64) for u in updates])
        exact = np.average(stacked, axis=0, weights=weights)
        # Each product and each sum rounds once in float32: at most 2n half-ulps of the
        # sum of magnitudes.
        bound = 2 * len(weights) * np.finfo(np.float32).eps * np.tensordot(factors, abs(stacked), 1)
        assert np.all(np.abs(result[name] - exact) <= bound)
        assert result[name].dtype == np.float32


def test_golden_cases_and_mutations() -> None:
    u = {"w": np.array([[1.0, -2.0], [3.0, 0.5]], np.float32), "b": np.array([4.0], np.float32)}
    v = {"w": np.array([[3.0, 2.0], [-1.0, 1.5]], np.float32), "b": np.array([0.0], np.float32)}
    result = weighted_mean([u, v], [1, 3], ["w", "b"])
    assert np.array_equal(result["w"], np.array([[2.5, 1.0], [0.0, 1.25]], np.float32))
    assert np.array_equal(result["b"], np.array([1.0], np.float32))
    assert np.array_equal(weighted_mean([u], [7], ["w"])["w"], u["w"])  # one reply: itself
    assert not np.array_equal(weighted_mean([u, v], [3, 1], ["w"])["w"], result["w"])
    assert not np.array_equal(weighted_mean([v, u], [1, 3], ["w"])["w"], result["w"])
    assert list(weighted_mean([u, v], [1, 1], ["b", "w"])) == ["b", "w"]
    assert u["w"][0, 0] == 1.0 and v["b"][0] == 0.0  # inputs untouched


def test_bad_inputs_are_refused() -> None:
    u = {"w": np.ones(2, np.float32)}
    with pytest.raises(ValueError, match="0 updates"):
        weighted_mean([], [], ["w"])
    with pytest.raises(ValueError, match="1 updates for 2 weights"):
        weighted_mean([u], [1, 2], ["w"])
    with pytest.raises(ValueError, match="sum to zero"):
        weighted_mean([u, u], [0, 0], ["w"])
    reply = update_message(u, 1)
    metrics = reply.content["metrics"]
    assert isinstance(metrics, MetricRecord)
    metrics["num-examples"] = 0
    with pytest.raises(FederationError, match="no positive num-examples"):
        aggregate(_job(), 1, u, [reply])
    with pytest.raises(FederationError, match="no reply"):
        aggregate(_job(), 1, u, [])
    with pytest.raises(FederationError, match="2 decoded updates for 1"):
        aggregate(_job(), 1, u, [update_message(u, 1)], [u, u])


ARRAYS = [
    np.arange(12, dtype=np.float32).reshape(3, 4),
    np.asfortranarray(np.arange(12, dtype=np.float64).reshape(3, 4)),
    np.array(2.5, np.float16),
    np.zeros((3, 0), np.float32),
    np.arange(5, dtype=">f4"),
    np.array([True, False]),
    np.arange(6, dtype=np.int64).reshape(2, 1, 3),
    np.array([1 + 2j], np.complex64),
]


@pytest.mark.parametrize("value", ARRAYS, ids=lambda a: f"{a.dtype.str}{list(a.shape)}")
def test_decode_array_equals_flowers_numpy(value: np.ndarray) -> None:
    array = Array(value)
    decoded, flower = decode_array(array), array.numpy()
    assert decoded.dtype == flower.dtype and decoded.shape == flower.shape
    assert decoded.flags.f_contiguous == flower.flags.f_contiguous
    assert np.array_equal(decoded, flower) and not decoded.flags.writeable
    if value.size:
        assert np.shares_memory(decoded, np.frombuffer(array.data, np.uint8))  # no copy


def _npy(value: np.ndarray, version: tuple[int, int] = (1, 0)) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, value, version=version, allow_pickle=False)
    return buffer.getvalue()


def _raw(data: bytes, stype: str = "numpy.ndarray") -> Array:
    return Array(dtype="float32", shape=(3,), stype=stype, data=data)


def test_decode_array_reads_version_2_headers() -> None:
    value = np.arange(3, dtype=np.float32)
    assert np.array_equal(decode_array(_raw(_npy(value, (2, 0)))), value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_npy(np.arange(3, dtype=np.float32))[:-1], "needs 12"),
        (_npy(np.arange(3, dtype=np.float32)) + b"\0", "needs 12"),
        (b"\x93NUMPZ" + _npy(np.arange(3, dtype=np.float32))[6:], "not a .npy"),
        (b"\x93NUMPY\x03\x00" + _npy(np.arange(3, dtype=np.float32))[8:], "version 3.0"),
        (_npy(np.arange(3, dtype=np.float32)).replace(b"'<f4'", b"'|O8'"), "malformed|numeric"),
        (_npy(np.arange(3, dtype=np.float32)).replace(b"(3,)", b"(4,)"), "needs 16"),
        (_npy(np.arange(3, dtype=np.float32)).replace(b"'descr'", b"'dscr '"), "malformed"),
        (_npy(np.array(["ab"])), "numeric"),
        (_npy(np.zeros((1, 1), np.float32)).replace(b"(1, 1)", b"(-1, -1)"), "negative"),
        (b"", "not a .npy"),
    ],
)
def test_decode_array_refuses_malformed_bytes(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_array(_raw(data))


def test_decode_array_refuses_other_serialisations() -> None:
    with pytest.raises(TypeError, match="numpy only"):
        decode_array(_raw(_npy(np.zeros(3, np.float32)), stype="torch"))
