"""SQLModel tables of the coordinator's registry (``table=True`` classes live only here).

The registry stores what members sent, verbatim: signed envelopes (identities,
policies, revocations, jobs) as their canonical DSSE JSON, and re-opens them on
every read, so a row edited in the database fails verification instead of being
trusted.  The few extra columns are look-up keys (names, ids, key ids) and times.

* ``dure_site``: one row per registered site (its identity envelope).
* ``dure_policy``: every policy ever registered; a site's current policy is its
  newest row; a revocation is stored on the policy it revokes.
* ``dure_job``: operator-signed job manifests.
* ``dure_auditor``: auditor keys a site named (they may read its usage report).
* ``dure_nonce``: nonces of signed requests, kept until their window has passed.
* ``dure_round``: the federation's view of each round (status, sampled sites…).
* ``dure_retrain``: retrain-without requests, for lineage.

Times are UTC text ``YYYY-MM-DDTHH:MM:SSZ``; lists are JSON text.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, Table, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = [
    "REGISTRY_TABLES",
    "AuditorRow",
    "JobRow",
    "NonceRow",
    "PolicyRow",
    "RetrainRow",
    "RoundRow",
    "SiteRow",
]

_ID = BigInteger().with_variant(Integer(), "sqlite")


def _id() -> Column[int]:
    return Column("id", _ID, primary_key=True, autoincrement=True)


def _text(
    name: str, *, nullable: bool = False, index: bool = False, unique: bool = False
) -> Column[str]:
    return Column(name, Text, nullable=nullable, index=index, unique=unique)


class SiteRow(SQLModel, table=True):
    """A registered site: its name, signing key id and self-signed identity envelope."""

    __tablename__ = "dure_site"

    id: int | None = Field(default=None, sa_column=_id())
    name: str = Field(sa_column=_text("name", unique=True))
    key_id: str = Field(sa_column=_text("key_id", unique=True))
    identity: str = Field(sa_column=_text("identity"))
    registered: str = Field(sa_column=_text("registered"))


class PolicyRow(SQLModel, table=True):
    """A registered policy envelope and, once revoked, the revocation envelope."""

    __tablename__ = "dure_policy"

    id: int | None = Field(default=None, sa_column=_id())
    policy_id: str = Field(sa_column=_text("policy_id", unique=True))
    site: str = Field(sa_column=_text("site", index=True))
    envelope: str = Field(sa_column=_text("envelope"))
    registered: str = Field(sa_column=_text("registered"))
    revocation: str | None = Field(default=None, sa_column=_text("revocation", nullable=True))
    revoked: str | None = Field(default=None, sa_column=_text("revoked", nullable=True))


class JobRow(SQLModel, table=True):
    """An operator-signed job manifest."""

    __tablename__ = "dure_job"

    id: int | None = Field(default=None, sa_column=_id())
    job_id: str = Field(sa_column=_text("job_id", unique=True))
    job_digest: str = Field(sa_column=_text("job_digest", unique=True))
    envelope: str = Field(sa_column=_text("envelope"))
    registered: str = Field(sa_column=_text("registered"))


class AuditorRow(SQLModel, table=True):
    """An auditor key a site named: it may read that site's usage report."""

    __tablename__ = "dure_auditor"
    __table_args__ = (UniqueConstraint("site", "key_id", name="uq_dure_auditor_site_key"),)

    id: int | None = Field(default=None, sa_column=_id())
    site: str = Field(sa_column=_text("site", index=True))
    key_id: str = Field(sa_column=_text("key_id", index=True))
    key: str = Field(sa_column=_text("key"))
    name: str = Field(sa_column=_text("name"))
    registered: str = Field(sa_column=_text("registered"))


class NonceRow(SQLModel, table=True):
    """A nonce seen in a signed request, kept until ``expires`` (Unix seconds)."""

    __tablename__ = "dure_nonce"

    nonce: str = Field(sa_column=Column("nonce", Text, primary_key=True))
    key_id: str = Field(sa_column=_text("key_id"))
    expires: int = Field(sa_column=Column("expires", BigInteger, nullable=False, index=True))


class RoundRow(SQLModel, table=True):
    """The state of one round of one job, as the federation reports it."""

    __tablename__ = "dure_round"

    job_id: str = Field(sa_column=Column("job_id", Text, primary_key=True))
    round: int = Field(sa_column=Column("round", Integer, primary_key=True, autoincrement=False))
    status: str = Field(sa_column=_text("status"))
    sampled: str = Field(sa_column=_text("sampled"))
    contributors: str = Field(sa_column=_text("contributors"))
    model_digest: str | None = Field(default=None, sa_column=_text("model_digest", nullable=True))
    epsilon: str | None = Field(default=None, sa_column=_text("epsilon", nullable=True))
    reason: str | None = Field(default=None, sa_column=_text("reason", nullable=True))
    updated: str = Field(sa_column=_text("updated"))


class RetrainRow(SQLModel, table=True):
    """A request to rebuild a model without a revoked site's contributions."""

    __tablename__ = "dure_retrain"

    id: int | None = Field(default=None, sa_column=_id())
    model_digest: str = Field(sa_column=_text("model_digest", index=True))
    site: str = Field(sa_column=_text("site", index=True))
    parent_model: str | None = Field(default=None, sa_column=_text("parent_model", nullable=True))
    replaces: str = Field(sa_column=_text("replaces"))
    requested_by: str = Field(sa_column=_text("requested_by"))
    requested: str = Field(sa_column=_text("requested"))


def _table(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


REGISTRY_TABLES: tuple[Table, ...] = tuple(
    _table(model)
    for model in (SiteRow, PolicyRow, JobRow, AuditorRow, NonceRow, RoundRow, RetrainRow)
)
"""The registry's tables, in creation order."""
