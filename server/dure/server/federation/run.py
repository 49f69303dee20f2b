"""The state and the record of one federated run (plain data, no behaviour).

:class:`RunSettings` are the coordinator's knobs (not signed: what the job
signs is in the manifest); :class:`Services` what a run writes to;
:class:`RunState` what changes from round to round; :class:`RoundReport` and
:class:`RunReport` what happened, for the caller (the ledger is the record that
counts).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import numpy.typing as npt
from flwr.serverapp.strategy import Strategy

from dure.policies.encoding import HexDigest
from dure.policies.job import JobManifest
from dure.policies.signed import Opened
from dure.server.federation.binding import NodeDirectory
from dure.server.federation.errors import FederationError
from dure.server.federation.models import ModelStore
from dure.server.federation.outbox import ReceiptOutbox
from dure.server.federation.privacy import PrivacyAccounting
from dure.server.federation.registry import RegisteredSite, SiteRegistry
from dure.server.federation.statistics import ConsortiumStats
from dure.server.ledger.service import Ledger

__all__ = [
    "RoundReport",
    "RoundStatus",
    "RunReport",
    "RunSettings",
    "RunState",
    "Services",
    "check_settings",
    "utc_now",
]

RoundStatus = Literal["committed", "aborted", "stopped"]
"""``committed``: an aggregate was ledgered; ``aborted``: the round was opened but
too few valid contributions arrived; ``stopped``: the round was not opened."""


def utc_now() -> datetime:
    """The current time, UTC, whole seconds."""
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True, slots=True)
class RunSettings:
    """How the coordinator runs jobs.

    Parameters
    ----------
    consortium
        The coordinator's consortium URN (``RoundContext.consortium``).
    seed
        The factories' training seed is ``seed + round``.
    local_steps, lr, batch_size, lr_schedule, lr_floor
        Deprecated: the signed job's ``training`` section decides local training
        (:class:`dure.policies.job.TrainingSpec`).  ``None`` (the default) leaves
        it to the job; a value given must equal the job's, or
        :func:`check_settings` refuses the run (an unsigned knob never overrides
        what the sites' policies judged).
    round_timeout
        Seconds to wait for the train replies of a round.
    query_timeout
        Seconds to wait for identification, statistics and receipt replies.
    connect_wait
        Seconds to wait for admitted sites' nodes to connect before round 1.
    poll
        Seconds between pulls for replies.
    """

    consortium: str
    local_steps: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    seed: int = 0
    lr_schedule: Literal["constant", "cosine"] | None = None
    lr_floor: float | None = None
    round_timeout: float = 600.0
    query_timeout: float = 120.0
    connect_wait: float = 30.0
    poll: float = 0.05


def check_settings(settings: RunSettings, job: JobManifest) -> None:
    """Refuse deprecated ``settings`` training knobs that contradict the signed ``job``.

    Raises
    ------
    FederationError
        Naming each knob, the value given and the job's.
    """
    training = job.training
    signed: dict[str, object] = {
        "local_steps": training.local_steps,
        "lr": float(training.lr_value),
        "batch_size": training.batch_size,
        "lr_schedule": training.schedule.kind,
        "lr_floor": float(training.schedule.floor),
    }
    given = {name: getattr(settings, name) for name in signed}
    differ = [
        f"{name}={value!r} (the job says {signed[name]!r})"
        for name, value in given.items()
        if value is not None and value != signed[name]
    ]
    if differ:
        raise FederationError(
            f"job {job.job_id}: the coordinator's settings contradict the signed job: "
            + ", ".join(differ),
            hint="Local training comes from the job's training section: sign a job with "
            "these values, or leave the coordinator's settings unset.",
        )


@dataclass(frozen=True, slots=True)
class Services:
    """What a run reads and writes: registry, ledger, model store, clock."""

    registry: SiteRegistry
    ledger: Ledger
    models: ModelStore
    clock: Callable[[], datetime] = utc_now


@dataclass(frozen=True, slots=True)
class RoundReport:
    """What one round did (the ledger holds the same, signed)."""

    round: int
    status: RoundStatus
    sampled: tuple[str, ...] = ()
    contributors: tuple[str, ...] = ()
    rejected: dict[str, tuple[str, ...]] = field(default_factory=dict)
    refused: dict[str, tuple[str, ...]] = field(default_factory=dict)
    model_digest: HexDigest | None = None
    epsilon: str | None = None
    reason: str | None = None


@dataclass
class RunState:
    """What a run carries from round to round."""

    job: Opened[JobManifest]
    job_json: bytes
    sites: dict[str, RegisteredSite]
    nodes: NodeDirectory
    stats: ConsortiumStats
    model: dict[str, npt.NDArray[Any]]
    model_digest: HexDigest
    outbox: ReceiptOutbox
    spent: dict[str, Decimal]
    privacy: PrivacyAccounting | None = None
    initial_model: HexDigest | None = None
    rounds: list[RoundReport] = field(default_factory=list)
    stopped: str | None = None
    first_round: int = 1
    """The round to play first: after a restart, the one after the last opened."""
    optimiser: Strategy | None = None
    """A server optimiser's Flower strategy, built once per run: it keeps the
    momentum or moments from round to round (``aggregation.build_strategy``)."""


@dataclass(frozen=True, slots=True)
class RunReport:
    """The outcome of a run."""

    job_id: str
    admitted: tuple[str, ...]
    refused: dict[str, tuple[str, ...]]
    rounds: tuple[RoundReport, ...]
    initial_model: HexDigest | None
    final_model: HexDigest | None
    stopped: str | None
    ledger_size: int
    checkpoint: str
