"""Checkpoint publication: witness cosignatures and the checkpoints that reached the quorum.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

__all__ = ["branch_labels", "depends_on", "down_revision", "downgrade", "revision", "upgrade"]

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``dure_ledger_cosignature`` and ``dure_ledger_published``."""
    op.create_table(
        "dure_ledger_cosignature",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("witness", sa.Text(), nullable=False),
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("received", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("size", "witness", "key_id", name="uq_dure_ledger_cosignature"),
    )
    op.create_index(
        op.f("ix_dure_ledger_cosignature_size"), "dure_ledger_cosignature", ["size"], unique=False
    )
    op.create_table(
        "dure_ledger_published",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("published", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("size"),
    )


def downgrade() -> None:
    """Drop both tables (published checkpoints and cosignatures are lost)."""
    op.drop_table("dure_ledger_published")
    op.drop_index(op.f("ix_dure_ledger_cosignature_size"), table_name="dure_ledger_cosignature")
    op.drop_table("dure_ledger_cosignature")
