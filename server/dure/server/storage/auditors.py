"""Auditor keys a site names: who besides the site may read its usage report.

A site registers an auditor's Ed25519 public key (with a display name) through
a request it signs; requests signed by that key may then read the site's usage
report, and nothing else that is the site's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from dure.policies.encoding import b64decode, b64encode
from dure.policies.keys import VerifyKey
from dure.policies.literals import format_timestamp
from dure.server.storage.database import Database
from dure.server.storage.errors import ConflictError
from dure.server.storage.tables import AuditorRow

__all__ = ["AuditorRecord", "SqlAuditorStore"]

_AUDITOR = AuditorRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class AuditorRecord:
    """An auditor key named by ``site``."""

    site: str
    name: str
    key: VerifyKey
    registered: str


class SqlAuditorStore:
    """Auditor keys in the coordinator database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, site: str, name: str, key: VerifyKey, now: datetime) -> AuditorRecord:
        """Let ``key`` read ``site``'s usage report; a key is named once per site."""
        registered = format_timestamp(now.replace(microsecond=0))
        values = {
            "site": site,
            "key_id": key.key_id,
            "key": b64encode(key.raw),
            "name": name,
            "registered": registered,
        }

        def work(conn: Connection) -> None:
            conn.execute(insert(_AUDITOR).values(**values))

        try:
            self._db.run(work, write=True)
        except IntegrityError as exc:
            raise ConflictError(f"key {key.key_id[:16]}… already audits {site}") from exc
        return AuditorRecord(site, name, key, registered)

    def auditors(self, site: str) -> list[AuditorRecord]:
        """The auditors ``site`` named, oldest first."""
        query = select(_AUDITOR).where(_AUDITOR.c.site == site).order_by(_AUDITOR.c.id)
        return [_record(row._mapping) for row in self._db.run(lambda c: list(c.execute(query)))]

    def by_key(self, key_id: str) -> list[AuditorRecord]:
        """Every site that named the key ``key_id`` as its auditor."""
        query = select(_AUDITOR).where(_AUDITOR.c.key_id == key_id).order_by(_AUDITOR.c.id)
        return [_record(row._mapping) for row in self._db.run(lambda c: list(c.execute(query)))]


def _record(values: Any) -> AuditorRecord:
    return AuditorRecord(
        site=str(values["site"]),
        name=str(values["name"]),
        key=VerifyKey(b64decode(str(values["key"]))),
        registered=str(values["registered"]),
    )
