"""The state and the record of one federated run (plain data, no behaviour).

:class:`RunSettings` are the coordinator's knobs (not signed: what the job
signs is in the manifest); :class:`Services` what a run writes to;
:class:`RunState` what changes from round to round; :class:`RoundReport` and
:class:`RunReport` what happened, for the caller (the ledger is the record that
counts).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import numpy.typing as npt

from dure.policies.encoding import HexDigest
from dure.policies.job import JobManifest
from dure.policies.signed import Opened
from dure.server.federation.binding import NodeDirectory
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
    "round_lr",
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
    local_steps, lr, batch_size, seed
        Local training sent to the factories each round (the seed is ``seed + round``).
    lr_schedule, lr_floor
        ``constant``, or ``cosine``: round *r* of *R* trains with
        ``lr * (floor + (1 - floor) * (1 + cos(pi * (r - 1) / R)) / 2)``, the decay of
        :func:`dure.client.training.local.round_learning_rate`.
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
    local_steps: int = 50
    lr: float = 1e-3
    batch_size: int = 256
    seed: int = 0
    lr_schedule: Literal["constant", "cosine"] = "constant"
    lr_floor: float = 0.0
    round_timeout: float = 600.0
    query_timeout: float = 120.0
    connect_wait: float = 30.0
    poll: float = 0.05


def round_lr(settings: RunSettings, round: int, rounds: int) -> float:
    """The learning rate the factories use in ``round`` of ``rounds``."""
    if settings.lr_schedule == "constant":
        return settings.lr
    progress = min(max(round - 1, 0) / max(rounds, 1), 1.0)
    floor = settings.lr_floor
    return settings.lr * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress)))


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
