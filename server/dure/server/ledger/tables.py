"""SQLModel tables of the audit ledger (the only ``table=True`` classes of the ledger).

* ``dure_ledger_entry``: one row per entry: index, exact leaf bytes, leaf hash.
* ``dure_ledger_node``: one row per complete perfect subtree ``(level, index)``
  and its hash (level 0 holds the leaf hashes), as :func:`dure.policies.tree.integrate`
  returns them; fewer than ``2n`` rows for ``n`` entries.
* ``dure_ledger_head``: a single row (``id = 1``) with the tree size; appends lock
  it (``SELECT … FOR UPDATE`` on PostgreSQL) so writers queue one behind another.
* ``dure_ledger_checkpoint``: every checkpoint ever stored, newest last.

Primary keys on ``(index)`` and ``(level, index)`` are the last line of defence:
even a broken lock could not store two entries at one index.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, LargeBinary, SmallInteger, Table, Text
from sqlmodel import Field, SQLModel

__all__ = [
    "LEDGER_TABLES",
    "LedgerCheckpointRow",
    "LedgerEntryRow",
    "LedgerHeadRow",
    "LedgerNodeRow",
]

# SQLite makes an INTEGER PRIMARY KEY the rowid (no separate index); elsewhere 64 bits.
_INDEX = BigInteger().with_variant(Integer(), "sqlite")


class LedgerEntryRow(SQLModel, table=True):
    """One ledger entry: its index, its exact leaf bytes and its leaf hash."""

    __tablename__ = "dure_ledger_entry"

    idx: int = Field(sa_column=Column("idx", _INDEX, primary_key=True, autoincrement=False))
    leaf: bytes = Field(sa_column=Column("leaf", LargeBinary, nullable=False))
    leaf_hash: bytes = Field(sa_column=Column("leaf_hash", LargeBinary(32), nullable=False))


class LedgerNodeRow(SQLModel, table=True):
    """The hash of one complete perfect subtree ``(level, idx)``."""

    __tablename__ = "dure_ledger_node"

    level: int = Field(
        sa_column=Column("level", SmallInteger, primary_key=True, autoincrement=False)
    )
    idx: int = Field(sa_column=Column("idx", BigInteger, primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_column=Column("hash", LargeBinary(32), nullable=False))


class LedgerHeadRow(SQLModel, table=True):
    """The log's size; the row appends lock."""

    __tablename__ = "dure_ledger_head"

    id: int = Field(sa_column=Column("id", Integer, primary_key=True, autoincrement=False))
    size: int = Field(sa_column=Column("size", BigInteger, nullable=False))


class LedgerCheckpointRow(SQLModel, table=True):
    """A stored signed checkpoint and the verifier key it was checked with."""

    __tablename__ = "dure_ledger_checkpoint"

    id: int | None = Field(default=None, sa_column=Column("id", Integer, primary_key=True))
    size: int = Field(sa_column=Column("size", BigInteger, nullable=False))
    note: str = Field(sa_column=Column("note", Text, nullable=False))
    verifier_key: str = Field(sa_column=Column("verifier_key", Text, nullable=False))


def _table(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


LEDGER_TABLES: tuple[Table, ...] = tuple(
    _table(model) for model in (LedgerEntryRow, LedgerNodeRow, LedgerHeadRow, LedgerCheckpointRow)
)
"""The ledger's tables, for ``metadata.create_all(engine, tables=LEDGER_TABLES)``."""
