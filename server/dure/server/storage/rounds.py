"""The state of federated rounds, written by the federation, read by the API.

The ledger records what a round *did* (``round_opened``, contributions,
``aggregate_committed``); it has no entry for a round that was stopped before
opening, nor for the reason an open round was aborted.  :class:`SqlRoundStore`
keeps that state: the federation calls :meth:`SqlRoundStore.record` after each
round (from its ``RoundReport``), and the API lists it beside what the ledger
shows.  Recording the same ``(job_id, round)`` again replaces the record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, delete, insert, select

from dure.policies.literals import format_timestamp
from dure.server.storage.database import Database
from dure.server.storage.tables import RoundRow

__all__ = ["ROUND_STATUSES", "RoundRecord", "RoundStatusText", "SqlRoundStore"]

_ROUND = RoundRow.__table__  # type: ignore[attr-defined]

RoundStatusText = Literal["open", "committed", "aborted", "stopped"]
ROUND_STATUSES: tuple[str, ...] = ("open", "committed", "aborted", "stopped")
"""``open``: ledgered ``round_opened``, no outcome yet; the other three as the federation's
``RoundReport.status``."""


@dataclass(frozen=True, slots=True)
class RoundRecord:
    """One round of one job as the federation reports it."""

    job_id: str
    round: int
    status: RoundStatusText
    sampled: tuple[str, ...] = ()
    contributors: tuple[str, ...] = ()
    model_digest: str | None = None
    epsilon: str | None = None
    reason: str | None = None
    updated: str = ""

    def __post_init__(self) -> None:
        if self.status not in ROUND_STATUSES:
            raise ValueError(f"round status {self.status!r} is not one of {ROUND_STATUSES}")
        if self.round < 1:
            raise ValueError("rounds are numbered from 1")


class SqlRoundStore:
    """Round records in the coordinator database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record(self, record: RoundRecord, now: datetime) -> RoundRecord:
        """Store ``record`` (replacing any record of the same job and round); return it."""
        values = {
            "job_id": record.job_id,
            "round": record.round,
            "status": record.status,
            "sampled": json.dumps(list(record.sampled)),
            "contributors": json.dumps(list(record.contributors)),
            "model_digest": record.model_digest,
            "epsilon": record.epsilon,
            "reason": record.reason,
            "updated": format_timestamp(now.replace(microsecond=0)),
        }

        def work(conn: Connection) -> None:
            key = (_ROUND.c.job_id == record.job_id) & (_ROUND.c.round == record.round)
            conn.execute(delete(_ROUND).where(key))
            conn.execute(insert(_ROUND).values(**values))

        self._db.run(work, write=True)
        return _record(values)

    def rounds(self, job_id: str | None = None) -> list[RoundRecord]:
        """Every recorded round (of ``job_id`` when given), by job then round."""
        query = select(_ROUND).order_by(_ROUND.c.job_id, _ROUND.c.round)
        if job_id is not None:
            query = query.where(_ROUND.c.job_id == job_id)
        rows = self._db.run(lambda conn: list(conn.execute(query)))
        return [_record(row._mapping) for row in rows]


def _record(values: Any) -> RoundRecord:
    return RoundRecord(
        job_id=str(values["job_id"]),
        round=int(values["round"]),
        status=values["status"],
        sampled=tuple(json.loads(values["sampled"])),
        contributors=tuple(json.loads(values["contributors"])),
        model_digest=values["model_digest"],
        epsilon=values["epsilon"],
        reason=values["reason"],
        updated=str(values["updated"]),
    )
