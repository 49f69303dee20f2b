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
``fedprox``        ``FedProx`` (aggregates     ``proximal_mu`` (the factories
                   as FedAvg)                  apply it)
``fedavgm``        ``FedAvgM``                 ``server_learning_rate``,
                                               ``server_momentum``
``fedadam``        ``FedAdam``                 ``eta``, ``beta_1``, ``beta_2``,
                                               ``tau``
``fedyogi``        ``FedYogi``                 ``eta``, ``beta_1``, ``beta_2``,
                                               ``tau``
``fedadagrad``     ``FedAdagrad``              ``eta``, ``tau``
``trimmed-mean``   ``FedTrimmedAvg``           ``beta`` ([0, 0.5))
``krum``           ``Krum``                    ``num_malicious_nodes`` (int)
``multi-krum``     ``MultiKrum``               ``num_malicious_nodes``,
                                               ``num_nodes_to_select`` (ints)
``fedmedian``      ``FedMedian``               none
=================  ==========================  ================================

Params, their ranges and defaults are declared once, in
:data:`dure.policies.job.STRATEGY_PARAMS` (closed world: the manifest refuses
any other); Bulyan and the adaptive DP modes are refused before the run starts.

``fedavg`` and ``fedprox`` without DP skip the strategy object: their weighted
mean is computed by :func:`~dure.server.federation.weighted.weighted_mean`, which
is Flower's ``aggregate_arrayrecords`` arithmetic reproduced bit for bit on the
tensors validation already decoded (no second decode, no temporary per product).

**Server optimisers keep state** (FedAvgM's momentum, FedAdam's, FedYogi's and
FedAdagrad's moments) from round to round, so their strategy is built once per
run (:func:`build_strategy`, kept in ``RunState.optimiser``) and passed to every
:func:`aggregate`; a missing one is an error, never a silent reset.  Before each
aggregation the strategy is pointed at the round's global model (what Flower's
``configure_train`` would do).  The state lives in the coordinator's memory
only: a restarted coordinator does not resume such a job
(:data:`dure.server.federation.resume.OPTIMISER_STOP`).

Replies are weighted by ``"num-examples"``, except under differential privacy:
then every contributor weighs the same (DP-FedAvg, as Flower's accounted mode
requires), the job's mode picks ``DifferentialPrivacyServerSideFixedClipping``
(the coordinator clips each update to ``dp.clip``) or
``DifferentialPrivacyClientSideFixedClipping`` (each factory clips before
signing its claim), and Gaussian noise of standard deviation
``noise_multiplier * clip / contributors`` is added to the aggregate.  DP and
secure aggregation run only with ``fedavg`` and ``fedprox``
(:func:`check_job_supported`, called by ``dure job sign``, ``job verify``,
``run-job`` and the coordinator before admission).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy.typing as npt
from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import (
    DifferentialPrivacyClientSideFixedClipping,
    DifferentialPrivacyServerSideFixedClipping,
    FedAdagrad,
    FedAdam,
    FedAvg,
    FedAvgM,
    FedMedian,
    FedProx,
    FedTrimmedAvg,
    FedYogi,
    Krum,
    MultiKrum,
    Strategy,
)
from flwr.serverapp.strategy.fedopt import FedOpt

from dure.policies.job import MEAN_STRATEGIES, SERVER_OPTIMISERS, STRATEGY_PARAMS, JobManifest
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
    "stateful",
    "update_message",
]

_UNIFORM = "dure-weight"
_PARAMS: dict[str, frozenset[str]] = {
    name: frozenset(STRATEGY_PARAMS[name])
    for name in (
        "fedavg",
        "fedprox",
        "fedavgm",
        "fedadam",
        "fedyogi",
        "fedadagrad",
        "trimmed-mean",
        "krum",
        "multi-krum",
        "fedmedian",
    )
}
STRATEGIES = frozenset(_PARAMS)
"""The job strategies this coordinator runs."""


def stateful(job: JobManifest) -> bool:
    """Whether ``job``'s strategy keeps optimiser state across rounds (a server optimiser)."""
    return job.aggregation.strategy in SERVER_OPTIMISERS


def check_job_supported(job: JobManifest) -> None:
    """Raise :class:`FederationError` unless this coordinator can run ``job`` as signed.

    The manifest itself already refused params, ranges and combinations that no
    coordinator can meet; this adds what this coordinator does not run.
    """
    spec = job.aggregation
    if spec.strategy not in _PARAMS:
        raise FederationError(
            f"job {job.job_id}: strategy {spec.strategy!r} is not supported "
            f"(supported: {sorted(STRATEGIES)})",
            hint="Sign the job with one of the supported strategies.",
        )
    unknown = sorted(set(spec.params) - _PARAMS[spec.strategy])
    if unknown:
        raise FederationError(
            f"job {job.job_id}: unknown {spec.strategy} params {unknown}",
            hint=f"Use only {sorted(_PARAMS[spec.strategy]) or 'no params'}.",
        )
    kind = "a server optimiser" if stateful(job) else "a robust aggregator"
    if spec.secure:
        check_secure_supported(job)  # SecAgg+: fedavg/fedprox, no DP
    if job.dp is not None:
        if spec.strategy not in MEAN_STRATEGIES:
            raise FederationError(
                f"job {job.job_id}: DP needs fedavg or fedprox, not {spec.strategy} ({kind}): "
                "the noise is calibrated to a mean of clipped updates, and a server "
                "optimiser would carry un-noised state into later rounds",
                hint="Sign the job with strategy fedavg or fedprox, or without dp.",
            )
        if job.dp.mode not in ("server-fixed", "client-fixed"):
            raise FederationError(
                f"job {job.job_id}: DP mode {job.dp.mode} is not supported",
                hint="Sign the job with dp.mode server-fixed or client-fixed.",
            )
    build_strategy(job)


def proximal_mu(job: JobManifest) -> float:
    """The FedProx proximal term the factories apply (0 unless the job is ``fedprox``)."""
    if job.aggregation.strategy != "fedprox":
        return 0.0
    return _number(job, "proximal_mu")


def build_strategy(job: JobManifest, contributors: int = 1) -> Strategy:
    """Return the Flower strategy (DP-wrapped if the job says so) for ``contributors`` replies.

    A server optimiser's strategy holds its state: build it once per run.
    """
    weight = _UNIFORM if job.dp is not None else "num-examples"
    builders: dict[str, Callable[[], Strategy]] = {
        "fedavg": lambda: FedAvg(weighted_by_key=weight),
        "fedprox": lambda: FedProx(weighted_by_key=weight, proximal_mu=proximal_mu(job)),
        "fedavgm": lambda: FedAvgM(
            server_learning_rate=_number(job, "server_learning_rate"),
            server_momentum=_number(job, "server_momentum"),
        ),
        "fedadam": lambda: FedAdam(
            eta=_number(job, "eta"),
            beta_1=_number(job, "beta_1"),
            beta_2=_number(job, "beta_2"),
            tau=_number(job, "tau"),
        ),
        "fedyogi": lambda: FedYogi(
            eta=_number(job, "eta"),
            beta_1=_number(job, "beta_1"),
            beta_2=_number(job, "beta_2"),
            tau=_number(job, "tau"),
        ),
        "fedadagrad": lambda: FedAdagrad(eta=_number(job, "eta"), tau=_number(job, "tau")),
        "trimmed-mean": lambda: FedTrimmedAvg(beta=_number(job, "beta")),
        "krum": lambda: Krum(num_malicious_nodes=_integer(job, "num_malicious_nodes")),
        "multi-krum": lambda: MultiKrum(
            num_malicious_nodes=_integer(job, "num_malicious_nodes"),
            num_nodes_to_select=_integer(job, "num_nodes_to_select"),
        ),
        "fedmedian": FedMedian,
    }
    try:
        inner = builders[job.aggregation.strategy]()
    except (KeyError, ValueError) as exc:
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
    optimiser: Strategy | None = None,
) -> dict[str, npt.NDArray[Any]]:
    """Aggregate validated train replies into the next global model.

    ``reference`` is the round's global model (DP clips ``update - reference``;
    a server optimiser steps from it).  ``replies`` are the Messages as received
    (each with one ``"arrays"`` and one ``"metrics"`` record); Flower's
    strategies may edit them in place (clipping, trimmed mean's ``pop``), so the
    caller must have read what it needs first.  ``decoded`` are the replies'
    tensors as validation decoded them, in the same order; the weighted mean
    (``fedavg``, ``fedprox`` without DP) uses them instead of decoding the
    replies again.  ``optimiser`` is the run's server-optimiser strategy
    (:func:`build_strategy`, built once per run), required when :func:`stateful`.

    Raises
    ------
    FederationError
        If the strategy produced no aggregate, or a server optimiser's strategy
        was not passed (its state would silently restart).
    """
    if job.dp is None and job.aggregation.strategy in MEAN_STRATEGIES:
        return _mean(round, reference, replies, decoded)
    if stateful(job):
        if optimiser is None:
            raise FederationError(
                f"round {round}: {job.aggregation.strategy} keeps state across rounds but "
                "no strategy was passed",
                hint="Build it once per run with build_strategy and pass it to every round.",
            )
        strategy = optimiser
        _point_at(strategy, reference)
    else:
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


def _point_at(strategy: Strategy, reference: Mapping[str, npt.NDArray[Any]]) -> None:
    """Give a server optimiser the round's global model (Flower's ``configure_train`` does)."""
    if isinstance(strategy, FedAvgM):
        strategy.current_arrays = array_record(reference)
    elif isinstance(strategy, FedOpt):
        strategy.current_arrays = {name: value.copy() for name, value in reference.items()}
    else:
        raise FederationError(f"{type(strategy).__name__} is not a server optimiser")


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


def _number(job: JobManifest, name: str) -> float:
    try:
        return float(job.aggregation.param(name))
    except ValueError as exc:
        raise FederationError(f"job {job.job_id}: aggregation.params.{name} {exc}") from exc


def _integer(job: JobManifest, name: str) -> int:
    return int(_number(job, name))
