"""Aggregating 8 updates of a 1,000,000-parameter model: Dure's path against numpy and Flower.

Target (issue 6): Dure's FedAvg within 2x of numpy's weighted sum over pre-stacked
arrays, against Flower's own ``FedAvg.aggregate_train``.  Figures, each
``[wall median, wall best, CPU median]`` of ``REPEATS`` runs, in milliseconds:

* ``numpy_prestacked_ms``: ``np.tensordot(weights, stacked, 1)`` over one
  ``(8, N)`` float32 array built beforehand (the floor: no decoding, no copy);
* ``dure_end_to_end_ms``: from the 8 reply Messages to the new global model as
  the round runs it: decode each reply's ``ArrayRecord`` (what validation does,
  :func:`~dure.server.federation.wire.numpy_arrays`), then
  :func:`~dure.server.federation.aggregation.aggregate` on the decoded tensors;
* ``dure_aggregate_only_ms``: the ``aggregate`` call alone (validation has decoded);
* ``flower_fedavg_ms``: ``FedAvg().aggregate_train`` on the same Messages (it
  decodes with ``Array.numpy``);
* ``before_ms``: Dure before this change: ``Array.numpy`` decoding in validation,
  then Flower's ``aggregate_train``.

The 1-minute load average before and after is printed: the machine is shared.
BLAS threads follow the environment (``OPENBLAS_NUM_THREADS``; set it to 1 for
comparable CPU times); the tensordot floor and Dure's float32 accumulation
(``axpy``) use BLAS.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, Message
from flwr.serverapp.strategy import FedAvg
from flwr.supercore.task_identity import TaskIdentity

from dure.policies.examples import example_job_value
from dure.policies.job import JobManifest
from dure.server.federation.aggregation import aggregate, update_message
from dure.server.federation.wire import numpy_arrays

REPLIES = 8
REPEATS = 31
# An MLP of about 1,000,000 parameters, as the model registry would hold it.
SHAPES = {
    "fc1.weight": (1024, 784),
    "fc1.bias": (1024,),
    "fc2.weight": (192, 1024),
    "fc2.bias": (192,),
    "head.weight": (10, 192),
    "head.bias": (10,),
}


def _median_ms(call: Callable[[], object]) -> list[float]:
    """Wall median, wall best and CPU-time median of ``REPEATS`` runs, in ms.

    On a shared machine the wall median includes time the process waited for a
    core; the CPU time of the calling thread does not (with one BLAS thread it is
    the whole cost of every figure here).
    """
    call()  # warm-up
    walls, cpus = [], []
    for _ in range(REPEATS):
        started, cpu = time.perf_counter(), time.thread_time()
        call()
        cpus.append(time.thread_time() - cpu)
        walls.append(time.perf_counter() - started)
    return [
        round(x * 1e3, 2) for x in (statistics.median(walls), min(walls), statistics.median(cpus))
    ]


def _setup() -> tuple[JobManifest, dict[str, Any], list[Message], list[int]]:
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 7, 0
    logging.getLogger("flwr").setLevel(logging.WARNING)
    value = example_job_value(dp=False)
    value["aggregation"] = {"strategy": "fedavg", "secure": False, "norm_bound": "1000000.0"}
    rng = np.random.default_rng(6)
    reference = {name: np.zeros(shape, np.float32) for name, shape in SHAPES.items()}
    weights = [int(w) for w in rng.integers(100, 5000, REPLIES)]
    replies = [
        update_message(
            {name: rng.standard_normal(shape).astype(np.float32) for name, shape in SHAPES.items()},
            weight,
        )
        for weight in weights
    ]
    return JobManifest.from_value(value), reference, replies, weights


def _records(replies: list[Message]) -> list[ArrayRecord]:
    records = [reply.content["arrays"] for reply in replies]
    assert all(isinstance(record, ArrayRecord) for record in records)
    return records  # type: ignore[return-value]


def main() -> dict[str, Any]:
    """Measure and print the figures (see the module docstring)."""
    job, reference, replies, weights = _setup()
    records = _records(replies)
    parameters = sum(int(np.prod(shape)) for shape in SHAPES.values())
    decoded = [numpy_arrays(record) for record in records]
    stacked = np.stack([np.concatenate([d[n].ravel() for n in SHAPES]) for d in decoded])
    factors = np.asarray(weights, np.float32) / np.float32(sum(weights))
    flower = FedAvg()

    def end_to_end() -> object:
        return aggregate(job, 1, reference, replies, [numpy_arrays(r) for r in records])

    def before() -> object:
        [{name: record[name].numpy() for name in record} for record in records]  # validation
        return flower.aggregate_train(1, replies)

    load_before = os.getloadavg()[0]
    figures: dict[str, Any] = {
        "replies": REPLIES,
        "parameters": parameters,
        "numpy_prestacked_ms": _median_ms(lambda: np.tensordot(factors, stacked, 1)),
        "dure_end_to_end_ms": _median_ms(end_to_end),
        "dure_aggregate_only_ms": _median_ms(
            lambda: aggregate(job, 1, reference, replies, decoded)
        ),
        "flower_fedavg_ms": _median_ms(lambda: flower.aggregate_train(1, replies)),
        "before_ms": _median_ms(before),
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "cpus": os.cpu_count(),
    }
    figures["dure_vs_numpy"] = [
        round(ours / floor, 2)
        for ours, floor in zip(
            figures["dure_end_to_end_ms"], figures["numpy_prestacked_ms"], strict=True
        )
    ]
    _check(job, reference, replies, decoded)
    for name, value in figures.items():
        print(f"{name:>24}: {value}")
    return figures


def _check(
    job: JobManifest, reference: dict[str, Any], replies: list[Message], decoded: Any
) -> None:
    """Dure's aggregate is Flower's within float32 rounding (the same thing is measured)."""
    arrays, _ = FedAvg().aggregate_train(1, replies)
    assert arrays is not None
    ours = aggregate(job, 1, reference, replies, decoded)
    for name in SHAPES:
        np.testing.assert_allclose(ours[name], arrays[name].numpy(), rtol=1e-5, atol=1e-6)


if __name__ == "__main__":
    main()
