"""SQLModel tables of checkpoint publication: witness cosignatures and published checkpoints.

* ``dure_ledger_cosignature``: one row per valid witness cosignature the
  coordinator accepted, for the checkpoint of tree size ``size`` (the log never
  signs two checkpoints of one size, so the size names the checkpoint); the
  row keeps the exact C2SP signature line, re-verified when it is served.
* ``dure_ledger_published``: the checkpoints that reached the consortium's
  witness quorum (newest is served at ``GET /v1/ledger/checkpoint``), as the
  log signed them; their cosignature lines are appended when served.

The coordinator's pending checkpoint is the newest row of
``dure_ledger_checkpoint`` (:mod:`dure.server.ledger.tables`).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, Table, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = ["WITNESS_TABLES", "LedgerCosignatureRow", "LedgerPublishedRow"]


class LedgerCosignatureRow(SQLModel, table=True):
    """A witness cosignature accepted for the checkpoint of one tree size."""

    __tablename__ = "dure_ledger_cosignature"
    __table_args__ = (
        UniqueConstraint("size", "witness", "key_id", name="uq_dure_ledger_cosignature"),
    )

    id: int | None = Field(default=None, sa_column=Column("id", Integer, primary_key=True))
    size: int = Field(sa_column=Column("size", BigInteger, nullable=False, index=True))
    witness: str = Field(sa_column=Column("witness", Text, nullable=False))
    key_id: str = Field(sa_column=Column("key_id", Text, nullable=False))
    line: str = Field(sa_column=Column("line", Text, nullable=False))
    timestamp: int = Field(sa_column=Column("timestamp", BigInteger, nullable=False))
    received: str = Field(sa_column=Column("received", Text, nullable=False))


class LedgerPublishedRow(SQLModel, table=True):
    """A checkpoint that reached the witness quorum, as the log signed it."""

    __tablename__ = "dure_ledger_published"

    size: int = Field(sa_column=Column("size", BigInteger, primary_key=True, autoincrement=False))
    note: str = Field(sa_column=Column("note", Text, nullable=False))
    published: str = Field(sa_column=Column("published", Text, nullable=False))


def _table(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


WITNESS_TABLES: tuple[Table, ...] = (_table(LedgerCosignatureRow), _table(LedgerPublishedRow))
"""The publication tables, for ``metadata.create_all(engine, tables=WITNESS_TABLES)``."""
