"""The coordinator's services, built once from the settings and passed to the app.

:class:`Services` holds what the routes use: the database and its
repositories, the audit ledger and its checkpoint publication (the witness
quorum), the authenticator, the ledger view and the clock.
:meth:`Services.from_settings` is the one place that reads key files and opens
the database; tests build one from settings pointing at a temporary database.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dure.policies.errors import KeyFileError
from dure.policies.keys import SigningKey
from dure.server.api.auth import Authenticator
from dure.server.api.ledger_view import LedgerView
from dure.server.api.proofs import ProofReader, proof_reader
from dure.server.ledger.publication import Publication
from dure.server.ledger.service import Ledger
from dure.server.ledger.sql import SqlLedgerStore
from dure.server.settings import ServiceSettings
from dure.server.storage.auditors import SqlAuditorStore
from dure.server.storage.database import Database
from dure.server.storage.jobs import SqlJobStore
from dure.server.storage.nonces import SqlNonceStore
from dure.server.storage.registry import SqlRegistry
from dure.server.storage.retrains import SqlRetrainStore
from dure.server.storage.rounds import SqlRoundStore

__all__ = ["Services", "utc_now"]


def utc_now() -> datetime:
    """The current time, UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Services:
    """Everything the routes call (see the module docstring)."""

    settings: ServiceSettings
    db: Database
    ledger: Ledger
    registry: SqlRegistry
    jobs: SqlJobStore
    auditors: SqlAuditorStore
    rounds: SqlRoundStore
    retrains: SqlRetrainStore
    auth: Authenticator
    view: LedgerView
    proofs: ProofReader
    clock: Callable[[], datetime]
    publication: Publication

    @classmethod
    def from_settings(
        cls,
        settings: ServiceSettings,
        *,
        ledger_key: SigningKey | None = None,
        clock: Callable[[], datetime] = utc_now,
        create_schema: bool = False,
    ) -> Services:
        """Open the database and build every service.

        Parameters
        ----------
        settings
            The service settings.
        ledger_key
            The ledger's checkpoint signing key; read from ``settings.ledger_key``
            when not given.
        clock
            The coordinator's clock (tests fix it).
        create_schema
            Create missing tables (tests; deployments run ``dure coordinator db upgrade``).

        Raises
        ------
        KeyFileError
            If no ledger key is given or configured, or it cannot be read.
        """
        key = ledger_key or _ledger_key(settings)
        db = Database.from_url(settings.db_url, **_pool(settings))
        store = SqlLedgerStore(db.engine)
        if create_schema:
            db.create_all()
            store.create_schema()
        registry = SqlRegistry(db, ledger=store)  # registry rows and entries: one transaction
        auditors = SqlAuditorStore(db)
        operators = settings.operator_verify_keys()
        secret = bytes.fromhex(settings.token_secret) if settings.token_secret else None
        auth = Authenticator(
            operator_keys=operators,
            registry=registry,
            auditors=auditors,
            nonces=SqlNonceStore(db),
            window=timedelta(seconds=settings.request_window_s),
            token_secret=secret or secrets.token_bytes(32),
            token_ttl=timedelta(seconds=settings.token_ttl_s),
            clock=clock,
        )
        ledger = Ledger(store, key, settings.ledger_name)
        publication = Publication(
            db.engine, ledger, settings.witness_verifiers(), settings.witness_quorum
        )
        return cls(
            settings=settings,
            db=db,
            ledger=ledger,
            registry=registry,
            jobs=SqlJobStore(db, operators, ledger=store),
            auditors=auditors,
            rounds=SqlRoundStore(db),
            retrains=SqlRetrainStore(db),
            auth=auth,
            view=LedgerView(store),
            proofs=proof_reader(settings.db_url, store, connections=settings.pool_size),
            clock=clock,
            publication=publication,
        )

    def close(self) -> None:
        """Close the database connections (the app closes the proof reader's, async)."""
        self.db.close()


def _ledger_key(settings: ServiceSettings) -> SigningKey:
    if settings.ledger_key is None:
        raise KeyFileError(
            "no ledger signing key configured",
            hint="Pass --ledger-key PATH (or DURE_LEDGER_KEY); create one with 'dure keys new'.",
        )
    return SigningKey.load(settings.ledger_key)


def _pool(settings: ServiceSettings) -> dict[str, int]:
    if settings.db_url.startswith("sqlite"):
        return {}
    return {"pool_size": settings.pool_size, "max_overflow": settings.pool_size}
