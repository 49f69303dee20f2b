"""Aggregation with Flower's strategies and DP wrappers, chosen by the signed job.

Thin adapter over ``flwr.serverapp.strategy``: Dure builds the strategy the
job names (policies already constrained the choice at admission, through
``dure:aggregation``) and calls only its ``aggregate_train`` on the replies that
passed validation.  Sampling and messaging stay with the coordinator, which
sends only to admitted sites (so Flower's ``configure_train`` is not used).

=================  ==========================  ================================
job strategy       Flower strategy             ``aggregation.params``
=================  ==========================  ================================
``fedavg``         ``FedAvg``                  none
``fedprox``        ``FedProx`` (aggregates     ``proximal_mu`` (decimal text;
                   as FedAvg)                  the factories apply it)
``trimmed-mean``   ``FedTrimmedAvg``           ``beta`` (decimal text, [0, 0.5))
``krum``           ``Krum``                    ``num_malicious_nodes`` (int)
``multi-krum``     ``MultiKrum``               ``num_malicious_nodes``,
                                               ``num_nodes_to_select`` (ints)
``fedmedian``      ``FedMedian``               none
=================  ==========================  ================================

``fedavg`` and ``fedprox`` without DP skip the strategy object: their weighted
mean is computed by :func:`~dure.server.federation.weighted.weighted_mean`, which
is Flower's ``aggregate_arrayrecords`` arithmetic reproduced bit for bit on the
tensors validation already decoded (no second decode, no temporary per product).

Other strategies (server-side optimisers that keep state across rounds,
Bulyan) are refused before the run starts.  Replies are weighted by
``"num-examples"``, except under differential privacy: then every contributor
weighs the same (DP-FedAvg, as Flower's accounted mode requires), the job's
mode picks ``DifferentialPrivacyServerSideFixedClipping`` (the coordinator
clips each update to ``dp.clip``) or ``DifferentialPrivacyClientSideFixedClipping``
(each factory clips before signing its claim), and Gaussian noise of standard
deviation ``noise_multiplier * clip / contributors`` is added to the aggregate.
DP is allowed with ``fedavg`` and ``fedprox`` only (the noise calibration
assumes a mean); adaptive clipping modes are refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy.typing as npt
from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import (
    DifferentialPrivacyClientSideFixedClipping,
    DifferentialPrivacyServerSideFixedClipping,
    FedAvg,
    FedMedian,
    FedProx,
    FedTrimmedAvg,
    Krum,
    MultiKrum,
    Strategy,
)

from dure.policies.job import JobManifest
from dure.server.federation.errors import FederationError
from dure.server.federation.secagg import check_secure_supported
from dure.server.federation.weighted import weighted_mean
from dure.server.federation.wire import TRAIN, array_record, numpy_arrays

__all__ = [
    "STRATEGIES",
    "aggregate",
    "build_strategy",
    "check_job_supported",
    "proximal_mu",
    "update_message",
]

_UNIFORM = "dure-weight"
_PARAMS: dict[str, frozenset[str]] = {
    "fedavg": frozenset(),
    "fedprox": frozenset({"proximal_mu"}),
    "trimmed-mean": frozenset({"beta"}),
    "krum": frozenset({"num_malicious_nodes"}),
    "multi-krum": frozenset({"num_malicious_nodes", "num_nodes_to_select"}),
    "fedmedian": frozenset(),
}
_MEAN = frozenset({"fedavg", "fedprox"})
STRATEGIES = frozenset(_PARAMS)
"""The job strategies this coordinator runs."""


def check_job_supported(job: JobManifest) -> None:
    """Raise :class:`FederationError` unless this coordinator can run ``job`` as signed."""
    spec = job.aggregation
    if spec.strategy not in _PARAMS:
        raise FederationError(
            f"job {job.job_id}: strategy {spec.strategy!r} is not supported "
            f"(supported: {sorted(STRATEGIES)})"
        )
    unknown = sorted(set(spec.params) - _PARAMS[spec.strategy])
    if unknown:
        raise FederationError(f"job {job.job_id}: unknown {spec.strategy} params {unknown}")
    if spec.secure:
        check_secure_supported(job)  # SecAgg+: fedavg/fedprox, no DP
    if job.dp is not None:
        if spec.strategy not in ("fedavg", "fedprox"):
            raise FederationError(f"job {job.job_id}: DP needs fedavg or fedprox")
        if job.dp.mode not in ("server-fixed", "client-fixed"):
            raise FederationError(f"job {job.job_id}: DP mode {job.dp.mode} is not supported")
    build_strategy(job)


def proximal_mu(job: JobManifest) -> float:
    """The FedProx proximal term the factories apply (0 unless the job is ``fedprox``)."""
    if job.aggregation.strategy != "fedprox":
        return 0.0
    return _number(job, "proximal_mu", "0")


def build_strategy(job: JobManifest, contributors: int = 1) -> Strategy:
    """Return the Flower strategy (DP-wrapped if the job says so) for ``contributors`` replies."""
    weight = _UNIFORM if job.dp is not None else "num-examples"
    builders: dict[str, Callable[[], Strategy]] = {
        "fedavg": lambda: FedAvg(weighted_by_key=weight),
        "fedprox": lambda: FedProx(weighted_by_key=weight, proximal_mu=proximal_mu(job)),
        "trimmed-mean": lambda: FedTrimmedAvg(beta=_number(job, "beta", "0.2")),
        "krum": lambda: Krum(num_malicious_nodes=_integer(job, "num_malicious_nodes")),
        "multi-krum": lambda: MultiKrum(
            num_malicious_nodes=_integer(job, "num_malicious_nodes"),
            num_nodes_to_select=_integer(job, "num_nodes_to_select", 1),
        ),
        "fedmedian": FedMedian,
    }
    try:
        inner = builders[job.aggregation.strategy]()
    except ValueError as exc:
        raise FederationError(f"job {job.job_id}: {exc}") from exc
    if job.dp is None:
        return inner
    wrapper = (
        DifferentialPrivacyServerSideFixedClipping
        if job.dp.mode == "server-fixed"
        else DifferentialPrivacyClientSideFixedClipping
    )
    return wrapper(
        inner,
        noise_multiplier=float(job.dp.noise_multiplier_value),
        clipping_norm=float(job.dp.clip_value),
        num_sampled_clients=max(1, contributors),
    )


def aggregate(
    job: JobManifest,
    round: int,
    reference: Mapping[str, npt.NDArray[Any]],
    replies: Sequence[Message],
    decoded: Sequence[Mapping[str, npt.NDArray[Any]]] | None = None,
) -> dict[str, npt.NDArray[Any]]:
    """Aggregate validated train replies into the next global model.

    ``reference`` is the round's global model (DP clips ``update - reference``).
    ``replies`` are the Messages as received (each with one ``"arrays"`` and one
    ``"metrics"`` record); Flower's strategies may edit them in place (clipping,
    trimmed mean's ``pop``), so the caller must have read what it needs first.
    ``decoded`` are the replies' tensors as validation decoded them, in the same
    order; the weighted mean (``fedavg``, ``fedprox`` without DP) uses them
    instead of decoding the replies again.

    Raises
    ------
    FederationError
        If the strategy produced no aggregate.
    """
    if job.dp is None and job.aggregation.strategy in _MEAN:
        return _mean(round, reference, replies, decoded)
    strategy = build_strategy(job, len(replies))
    if isinstance(strategy, DifferentialPrivacyServerSideFixedClipping):
        strategy.current_arrays = array_record(reference)
    if job.dp is not None:
        for reply in replies:
            metrics = reply.content["metrics"]
            if isinstance(metrics, MetricRecord):
                metrics[_UNIFORM] = 1
    arrays, _ = strategy.aggregate_train(round, list(replies))
    if arrays is None:
        raise FederationError(f"round {round}: {type(strategy).__name__} returned no aggregate")
    result = numpy_arrays(arrays)
    return {name: result[name].astype(value.dtype) for name, value in reference.items()}


def _mean(
    round: int,
    reference: Mapping[str, npt.NDArray[Any]],
    replies: Sequence[Message],
    decoded: Sequence[Mapping[str, npt.NDArray[Any]]] | None,
) -> dict[str, npt.NDArray[Any]]:
    """FedAvg's weighted mean, as Flower computes it, on the decoded tensors."""
    if not replies:
        raise FederationError(f"round {round}: no reply to aggregate")
    weights: list[Any] = []
    for reply in replies:
        metrics = reply.content["metrics"]
        weight = metrics.get("num-examples") if isinstance(metrics, MetricRecord) else None
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
            raise FederationError(f"round {round}: a reply has no positive num-examples")
        weights.append(weight)
    if decoded is None:
        decoded = [_tensors(round, reply) for reply in replies]
    if len(decoded) != len(replies):
        raise FederationError(f"round {round}: {len(decoded)} decoded updates for {len(replies)}")
    result = weighted_mean(decoded, weights, list(reference))
    return {name: result[name].astype(value.dtype, copy=False) for name, value in reference.items()}


def _tensors(round: int, reply: Message) -> dict[str, npt.NDArray[Any]]:
    arrays = reply.content["arrays"]
    if not isinstance(arrays, ArrayRecord):
        raise FederationError(f"round {round}: a reply carries no arrays record")
    return numpy_arrays(arrays)


def update_message(tensors: Mapping[str, npt.NDArray[Any]], examples: int) -> Message:
    """Build a train reply carrying ``tensors`` (for callers without a received Message)."""
    metrics = MetricRecord({"num-examples": examples})
    content = RecordDict({"arrays": array_record(tensors), "metrics": metrics})
    return Message(content, dst_node_id=0, message_type=TRAIN)


def _number(job: JobManifest, name: str, default: str) -> float:
    value = job.aggregation.params.get(name, default)
    try:
        return float(Decimal(str(value)))
    except InvalidOperation as exc:
        raise FederationError(f"job {job.job_id}: {name} {value!r} is not a decimal") from exc


def _integer(job: JobManifest, name: str, default: int = 0) -> int:
    value = job.aggregation.params.get(name, default)
    if not isinstance(value, int):
        raise FederationError(f"job {job.job_id}: {name} {value!r} must be an integer")
    return value
