"""Running a job again after the coordinator stopped mid-run (killed, crashed, restarted).

The ledger is the only state a coordinator keeps between runs of a job (the
model registry keeps the models by digest).  When the same signed job is run
again, :class:`~dure.server.federation.coordinator.Coordinator` reads this
job's entries and:

1. **closes every interrupted round**: a ``round_opened`` without an
   ``aggregate_committed`` whose sampled sites do not all have a verdict gets a
   ``contribution_rejected`` for each site without one, reason
   :data:`RESTARTED`: the round is recorded as aborted, never left open, and
   the updates its factories may have sent are discarded (rejections and a
   commit are appended in one batch, so a round is either committed, aborted
   or open, never half of one);
2. **does not ledger the same decision twice**: an admission (``site_admitted``
   / ``site_refused``) or a ``statistics_shared`` identical, but for its time,
   to the latest one of the same job and site is not appended again; a changed
   decision (a policy revoked or renewed since, other statistics) is new and is
   ledgered (:func:`unrecorded`); ``job_signed`` is ledgered once per job
   digest as before;
3. **resumes** at the round after the last round opened, from the last
   committed model of the job (the job's rounds count the aborted round, as
   they count any aborted round), or **ends cleanly** without playing a round
   when every round was opened already, or when the job uses differential
   privacy (its ε accounting lives in the run that stopped; :data:`DP_STOP`) or a
   server optimiser (FedAvgM's momentum, FedAdam's/FedYogi's/FedAdagrad's moments
   live in the memory of the run that stopped, and restarting them from zero
   would silently change the method the sites' policies judged;
   :data:`OPTIMISER_STOP`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dure.policies.encoding import HexDigest
from dure.policies.entries import (
    AggregateCommitted,
    ContributionAccepted,
    ContributionRejected,
    LedgerEntry,
    RoundOpened,
    SiteAdmitted,
    SiteRefused,
    StatisticsShared,
)
from dure.policies.job import SERVER_OPTIMISERS
from dure.server.federation.outbox import ReceiptOutbox
from dure.server.federation.run import RunState, Services

__all__ = [
    "DP_STOP",
    "OPTIMISER_STOP",
    "RESTARTED",
    "Resumption",
    "close_interrupted",
    "interrupted",
    "resume_state",
    "resumption",
    "unrecorded",
]

RESTARTED = (
    "the coordinator restarted while this round was open: the round is aborted "
    "and any update sent for it is discarded"
)
"""The reason recorded for each site of a round the coordinator did not finish."""

DP_STOP = (
    "the coordinator restarted a differentially private job: its privacy accounting "
    "is not resumed, so no further round is played (sign a new job to continue)"
)
"""Why a resumed DP job ends without playing a round."""

OPTIMISER_STOP = (
    "the coordinator restarted a job with a server optimiser: its momentum and moments "
    "are not resumed, so no further round is played (sign a new job to continue, from "
    "the last committed model)"
)
"""Why a resumed job with a stateful server optimiser ends without playing a round."""

_FAMILIES: dict[type[LedgerEntry], str] = {
    SiteAdmitted: "admission",
    SiteRefused: "admission",
    StatisticsShared: "statistics",
}


@dataclass(frozen=True, slots=True)
class Resumption:
    """Where a job stands in the ledger: the round to play next and the model to play it from."""

    first_round: int
    model_digest: HexDigest | None
    closed: tuple[int, ...] = ()


def _of_job(entries: Sequence[LedgerEntry], job_id: str) -> list[LedgerEntry]:
    return [e for e in entries if getattr(e, "job_id", None) == job_id]


def interrupted(entries: Sequence[LedgerEntry], job_id: str) -> dict[int, tuple[str, ...]]:
    """Rounds of ``job_id`` opened, neither committed nor aborted: the sites without a verdict."""
    mine = _of_job(entries, job_id)
    committed = {e.round for e in mine if isinstance(e, AggregateCommitted)}
    verdicts = {
        (e.round, e.site)
        for e in mine
        if isinstance(e, ContributionAccepted | ContributionRejected)
    }
    open_rounds: dict[int, tuple[str, ...]] = {}
    for entry in mine:
        if isinstance(entry, RoundOpened) and entry.round not in committed:
            missing = tuple(s for s in entry.sites if (entry.round, s) not in verdicts)
            if missing:
                open_rounds[entry.round] = missing
    return open_rounds


def close_interrupted(
    services: Services, job_id: str, entries: Sequence[LedgerEntry], outbox: ReceiptOutbox
) -> tuple[int, ...]:
    """Record each interrupted round of ``job_id`` as aborted (module docstring, step 1).

    Returns the rounds closed; signs a checkpoint when there were any.
    """
    rounds = interrupted(entries, job_id)
    now = services.clock()
    closing: list[LedgerEntry] = [
        ContributionRejected(time=now, job_id=job_id, round=r, site=site, reasons=(RESTARTED,))
        for r, sites in sorted(rounds.items())
        for site in sites
    ]
    if closing:
        outbox.record(services.ledger.append_all(closing), closing)
        services.ledger.checkpoint()
    return tuple(sorted(rounds))


def resumption(
    entries: Sequence[LedgerEntry], job_id: str, closed: tuple[int, ...] = ()
) -> Resumption:
    """The next round of ``job_id`` and the last model it committed (module docstring, step 3)."""
    mine = _of_job(entries, job_id)
    opened = [e.round for e in mine if isinstance(e, RoundOpened)]
    commits = [e for e in mine if isinstance(e, AggregateCommitted)]
    last = max(commits, key=lambda e: e.round).model_digest if commits else None
    return Resumption(max(opened, default=0) + 1, last, closed)


def resume_state(services: Services, state: RunState, resumption: Resumption) -> None:
    """Point ``state`` at the resumption's round and model (nothing to do on a first run)."""
    state.first_round = resumption.first_round
    if resumption.first_round == 1:
        return
    if resumption.model_digest is not None:
        state.model = services.models.get(resumption.model_digest)
        state.model_digest = resumption.model_digest
    if state.job.document.dp is not None:
        state.first_round = state.job.document.rounds + 1
        state.stopped = DP_STOP
    elif state.job.document.aggregation.strategy in SERVER_OPTIMISERS:
        state.first_round = state.job.document.rounds + 1
        state.stopped = OPTIMISER_STOP


def unrecorded(
    entries: Sequence[LedgerEntry], candidates: Sequence[LedgerEntry]
) -> list[LedgerEntry]:
    """``candidates`` less those the ledger already holds as the latest decision (step 2)."""
    latest: dict[tuple[str, str, str], LedgerEntry] = {}
    for entry in entries:
        family = _FAMILIES.get(type(entry))
        if family is not None:
            latest[(family, getattr(entry, "job_id", ""), getattr(entry, "site", ""))] = entry
    fresh: list[LedgerEntry] = []
    for entry in candidates:
        family = _FAMILIES.get(type(entry))
        key = (family or "", getattr(entry, "job_id", ""), getattr(entry, "site", ""))
        previous = latest.get(key) if family is not None else None
        if previous is None or _without_time(previous) != _without_time(entry):
            fresh.append(entry)
    return fresh


def _without_time(entry: LedgerEntry) -> dict[str, object]:
    value: dict[str, object] = dict(entry.to_json_value())
    value.pop("time", None)
    return value
