"""Ledger test material: sample entries of every kind, and throwaway PostgreSQL schemas.

PostgreSQL runs on 127.0.0.1:5432 (trust auth, database ``test``); override with
``DURE_TEST_POSTGRES``.  Each test gets its own schema and a URL whose connections
use it (``options=-csearch_path=…``); the schema is dropped afterwards.  If the
server is unreachable the test fails: CI has it, so a silent skip would hide a gap.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

from dure.policies.entries import (
    AggregateCommitted,
    ContributionAccepted,
    ContributionRejected,
    JobSigned,
    LedgerEntry,
    ModelReleased,
    PolicyRegistered,
    PolicyRevoked,
    RoundOpened,
    SiteAdmitted,
    SiteRefused,
    SiteRegistered,
)
from dure.server.ledger.engine import normalise_url

__all__ = ["POSTGRES_URL", "hexd", "postgres_schema", "sample_entries"]

POSTGRES_URL = os.environ.get("DURE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
T = "2026-03-01T12:00:00Z"


def hexd(n: int) -> str:
    """A distinct 64-hex digest for ``n``."""
    return f"{n:064x}"


@contextmanager
def postgres_schema() -> Iterator[str]:
    """Create a fresh schema and yield a ledger URL bound to it; drop it afterwards."""
    schema = f"t_{uuid.uuid4().hex}"
    admin = create_engine(normalise_url(POSTGRES_URL))
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except OperationalError as exc:
        admin.dispose()
        pytest.fail(
            f"PostgreSQL is unreachable at {POSTGRES_URL} ({exc.orig}); the ledger's "
            "PostgreSQL tests need it (CI runs it). Start it or set DURE_TEST_POSTGRES.",
            pytrace=False,
        )
    try:
        sep = "&" if "?" in POSTGRES_URL else "?"
        yield f"{POSTGRES_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def sample_entries() -> list[LedgerEntry]:
    """One entry of every kind, as a round would ledger them."""
    a, b = "urn:dure:site:factory-a", "urn:dure:site:factory-b"
    return [
        SiteRegistered(
            time=T,
            site=a,
            identity_id=hexd(1),
            signing_key_id=hexd(2),
            supernode_key_sha256=hexd(3),
        ),
        PolicyRegistered(time=T, site=a, policy_id=hexd(4), expires="2027-01-01T00:00:00Z"),
        JobSigned(
            time=T,
            job_id="pick-place-1",
            job_digest=hexd(5),
            operator_key_id=hexd(6),
            purpose="urn:dure:purpose:manipulation-research:v1",
        ),
        SiteAdmitted(time=T, job_id="pick-place-1", site=a, policy_id=hexd(4)),
        SiteRefused(
            time=T,
            job_id="pick-place-1",
            site=b,
            policy_id=None,
            reasons=("purpose urn:dure:purpose:manipulation-research:v1 is forbidden",),
        ),
        RoundOpened(time=T, job_id="pick-place-1", round=1, sites=(a,), parent_model=None),
        ContributionAccepted(
            time=T,
            job_id="pick-place-1",
            round=1,
            site=a,
            update_digest=hexd(7),
            examples=1200,
            episodes_root=hexd(8),
            policy_id=hexd(4),
            claim_id=hexd(9),
            secure=False,
        ),
        ContributionRejected(
            time=T, job_id="pick-place-1", round=1, site=b, reasons=("update is not finite",)
        ),
        AggregateCommitted(
            time=T,
            job_id="pick-place-1",
            round=1,
            model_digest=hexd(10),
            parent_model=None,
            contributors=(a,),
            epsilon_spent="0.75",
            strategy="fedavg",
        ),
        ModelReleased(time=T, model_digest=hexd(10), recipients=("urn:dure:consortium:c1", a)),
        PolicyRevoked(
            time=T, site=a, policy_id=hexd(4), revocation_id=hexd(11), mode="exclude-future"
        ),
    ]
