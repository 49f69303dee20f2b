"""Retrain-without requests: rebuild a model without a revoked site's data.

When a site revokes its policy with ``retrain-without``, every model whose
lineage contains its contributions must be rebuilt from the last model that did
not contain them.  The API works out that parent from the ledger and records
the request here; the training itself runs through the federation, whose new
``aggregate_committed`` entries name that parent, so the lineage of the new
model shows it was rebuilt without the site.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from dure.policies.literals import format_timestamp
from dure.server.storage.database import Database
from dure.server.storage.tables import RetrainRow

__all__ = ["RetrainRecord", "SqlRetrainStore"]

_RETRAIN = RetrainRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class RetrainRecord:
    """One retrain-without request.

    ``parent_model`` is the model to start from (``None``: from a fresh initial
    model); ``replaces`` the models that contain the site's contributions.
    """

    id: int
    model_digest: str
    site: str
    parent_model: str | None
    replaces: tuple[str, ...]
    requested_by: str
    requested: str


class SqlRetrainStore:
    """Retrain requests in the coordinator database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self,
        *,
        model_digest: str,
        site: str,
        parent_model: str | None,
        replaces: tuple[str, ...],
        requested_by: str,
        now: datetime,
    ) -> RetrainRecord:
        """Record a request and return it with its id."""
        values = {
            "model_digest": model_digest,
            "site": site,
            "parent_model": parent_model,
            "replaces": json.dumps(list(replaces)),
            "requested_by": requested_by,
            "requested": format_timestamp(now.replace(microsecond=0)),
        }

        def work(conn: Connection) -> int:
            result = conn.execute(insert(_RETRAIN).values(**values).returning(_RETRAIN.c.id))
            return int(result.scalar_one())

        identifier = self._db.run(work, write=True)
        return _record({"id": identifier, **values})

    def requests(self, *, model_digest: str | None = None) -> list[RetrainRecord]:
        """Every request (for ``model_digest`` when given), oldest first."""
        query = select(_RETRAIN).order_by(_RETRAIN.c.id)
        if model_digest is not None:
            query = query.where(_RETRAIN.c.model_digest == model_digest)
        rows = self._db.run(lambda conn: list(conn.execute(query)))
        return [_record(row._mapping) for row in rows]


def _record(values: Any) -> RetrainRecord:
    return RetrainRecord(
        id=int(values["id"]),
        model_digest=str(values["model_digest"]),
        site=str(values["site"]),
        parent_model=values["parent_model"],
        replaces=tuple(json.loads(values["replaces"])),
        requested_by=str(values["requested_by"]),
        requested=str(values["requested"]),
    )
