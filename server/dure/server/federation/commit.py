"""The ledger entries of a committed round, shared by plain and SecAgg+ rounds.

:func:`commit_round` stores the round's model, returns one
``contribution_accepted`` per contributor and the ``aggregate_committed`` that
closes the round, and moves the run's state to the new model.  The callers keep
what differs: the update digest each contributor is ledgered with (the plain
update's for a plain round, the masked vector's for a secure one) and the
privacy spent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy.typing as npt

from dure.policies.contribution import ContributionClaim
from dure.policies.encoding import HexDigest
from dure.policies.entries import AggregateCommitted, ContributionAccepted, LedgerEntry
from dure.policies.signed import Opened
from dure.server.federation.run import RunState, Services

__all__ = ["Contribution", "commit_round"]

Contribution = tuple[str, Opened[ContributionClaim], HexDigest]
"""A contributor: its site, its signed claim, the update digest its entry records."""


def commit_round(
    services: Services,
    state: RunState,
    round: int,
    contributions: Sequence[Contribution],
    model: dict[str, npt.NDArray[Any]],
    *,
    now: datetime,
    secure: bool,
    epsilon: str | None,
) -> list[LedgerEntry]:
    """Store ``model`` for ``round``; return its entries; make it the run's model."""
    job = state.job.document
    sites = tuple(site for site, _, _ in contributions)
    record = services.models.put(
        model, parent=state.model_digest, job_id=job.job_id, round=round, contributors=sites
    )
    entries: list[LedgerEntry] = [
        ContributionAccepted(
            time=now,
            job_id=job.job_id,
            round=round,
            site=site,
            update_digest=digest,
            examples=claim.document.examples,
            episodes_root=claim.document.episodes_root,
            policy_id=claim.document.policy_id,
            claim_id=claim.document_id,
            secure=secure,
        )
        for site, claim, digest in contributions
    ]
    entries.append(
        AggregateCommitted(
            time=now,
            job_id=job.job_id,
            round=round,
            model_digest=record.digest,
            parent_model=state.model_digest,
            contributors=sites,
            epsilon_spent=epsilon,
            strategy=job.aggregation.strategy,
        )
    )
    state.model, state.model_digest = model, record.digest
    return entries
