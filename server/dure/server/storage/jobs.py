"""Operator-signed job manifests on SQL.

:class:`SqlJobStore` verifies a job envelope against the pinned consortium
operator keys (:func:`~dure.server.federation.registry.open_job`), stores it
verbatim and re-opens it on every read.  A job id and a job digest are each
registered once: signing the same job id again with other content is a
:class:`ConflictError` (sign a new job id instead).  A job whose ``expires`` is
not after the registration time is refused (:class:`ExpiredError`, ``403
kernel.expired``), as ``dure job verify`` refuses it: nothing is stored or
ledgered.  Given the ledger store on
the same engine, :meth:`SqlJobStore.register_ledgered` stores the job and
appends its ``job_signed`` entry in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select
from sqlalchemy.exc import IntegrityError

from dure.policies.dsse import Envelope
from dure.policies.entries import JobSigned
from dure.policies.errors import DureError, ExpiredError
from dure.policies.job import JobManifest
from dure.policies.keys import VerifyKey
from dure.policies.literals import format_timestamp
from dure.policies.signed import Opened
from dure.server.federation.registry import job_signed_entry, open_job
from dure.server.ledger.sql import SqlLedgerStore
from dure.server.storage.database import Database
from dure.server.storage.errors import ConflictError, NotFoundError, StorageError
from dure.server.storage.tables import JobRow

__all__ = ["JobRecord", "SqlJobStore"]

_JOB = JobRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A registered job: the verified manifest and when it was registered."""

    opened: Opened[JobManifest]
    registered_at: str

    @property
    def job(self) -> JobManifest:
        """The manifest."""
        return self.opened.document


class SqlJobStore:
    """Jobs signed by a pinned consortium operator key.

    Parameters
    ----------
    db
        The coordinator database.
    operator_keys
        The pinned operator keys, by key id; a job signed by any other key is
        refused, and so is a stored job that no longer verifies.
    ledger
        The ledger store on the same engine, for :meth:`register_ledgered`.
    """

    def __init__(
        self,
        db: Database,
        operator_keys: Mapping[str, VerifyKey],
        ledger: SqlLedgerStore | None = None,
    ) -> None:
        self._db = db
        self._keys = dict(operator_keys)
        self._ledger = ledger

    def register(self, envelope: Envelope, now: datetime) -> tuple[JobRecord, JobSigned]:
        """Verify and store a job; return it and its ``job_signed`` entry."""
        record, entry, _ = self._register(envelope, now, ledger=None)
        return record, entry

    def register_ledgered(
        self, envelope: Envelope, now: datetime
    ) -> tuple[JobRecord, JobSigned, int]:
        """Store a job and append its ``job_signed`` entry in one transaction; return its index.

        Raises
        ------
        StorageError
            If this store was built without a ledger store.
        """
        if self._ledger is None:
            raise StorageError("this job store has no ledger store to append to")
        return self._register(envelope, now, ledger=self._ledger)

    def _register(
        self, envelope: Envelope, now: datetime, ledger: SqlLedgerStore | None
    ) -> tuple[JobRecord, JobSigned, int]:
        opened = open_job(envelope, self._keys)
        job = opened.document
        if job.expires <= now:
            raise ExpiredError(
                f"job {job.job_id!r} expired at {format_timestamp(job.expires)}, before its "
                f"registration at {format_timestamp(now)}",
                hint="Sign the job again with a later expires (dure job sign), then register it.",
            )
        registered = format_timestamp(now.replace(microsecond=0))
        entry = job_signed_entry(opened, now)

        def work(conn: Connection) -> int:
            known = conn.execute(select(_JOB.c.job_digest).where(_JOB.c.job_id == job.job_id))
            if known.first() is not None:
                raise ConflictError(
                    f"job {job.job_id!r} is already registered",
                    hint="Give a new job its own job_id; a registered job never changes.",
                )
            conn.execute(
                insert(_JOB).values(
                    job_id=job.job_id,
                    job_digest=opened.document_id,
                    envelope=envelope.to_json().decode(),
                    registered=registered,
                )
            )
            return -1 if ledger is None else ledger.append_within(conn, [entry.to_bytes()])

        try:
            index = self._db.run(work, write=True)
        except IntegrityError as exc:
            raise ConflictError(f"job {job.job_id!r} is already registered") from exc
        return JobRecord(opened, registered), entry, index

    def jobs(self) -> list[JobRecord]:
        """Every registered job, oldest first."""
        rows = self._db.run(lambda conn: list(conn.execute(select(_JOB).order_by(_JOB.c.id))))
        return [self._open(row) for row in rows]

    def job(self, job_id: str) -> JobRecord:
        """The job called ``job_id``."""
        query = select(_JOB).where(_JOB.c.job_id == job_id)
        row = self._db.run(lambda conn: conn.execute(query).first())
        if row is None:
            raise NotFoundError(f"no job {job_id[:80]!r} is registered")
        return self._open(row)

    def by_digest(self, job_digest: str) -> JobRecord | None:
        """The job whose manifest id is ``job_digest``, if registered."""
        query = select(_JOB).where(_JOB.c.job_digest == job_digest)
        row = self._db.run(lambda conn: conn.execute(query).first())
        return None if row is None else self._open(row)

    def _open(self, row: Row[Any]) -> JobRecord:
        try:
            opened = open_job(Envelope.from_json(row.envelope.encode()), self._keys)
        except DureError as exc:
            raise StorageError(f"stored job {row.job_id!r} does not verify: {exc}") from exc
        if opened.document_id != row.job_digest or opened.document.job_id != row.job_id:
            raise StorageError(f"stored job {row.job_id!r} has another id or digest")
        return JobRecord(opened, row.registered)
