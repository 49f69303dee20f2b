"""Coordinator tables: the audit ledger's and the registry's, and the ledger's head row.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

__all__ = ["branch_labels", "depends_on", "down_revision", "downgrade", "revision", "upgrade"]

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create every table, then the ledger's head row (size 0)."""
    op.create_table(
        "dure_auditor",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("site", sa.Text(), nullable=False),
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("registered", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("site", "key_id", name="uq_dure_auditor_site_key"),
    )
    op.create_index(op.f("ix_dure_auditor_key_id"), "dure_auditor", ["key_id"], unique=False)
    op.create_index(op.f("ix_dure_auditor_site"), "dure_auditor", ["site"], unique=False)
    op.create_table(
        "dure_job",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("job_id", sa.Text(), nullable=False),
        sa.Column("job_digest", sa.Text(), nullable=False),
        sa.Column("envelope", sa.Text(), nullable=False),
        sa.Column("registered", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_digest"),
        sa.UniqueConstraint("job_id"),
    )
    op.create_table(
        "dure_ledger_checkpoint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("verifier_key", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "dure_ledger_entry",
        sa.Column("idx", _ID, autoincrement=False, nullable=False),
        sa.Column("leaf", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("idx"),
    )
    op.create_table(
        "dure_ledger_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "dure_ledger_node",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx"),
    )
    op.create_table(
        "dure_nonce",
        sa.Column("nonce", sa.Text(), nullable=False),
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("expires", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("nonce"),
    )
    op.create_index(op.f("ix_dure_nonce_expires"), "dure_nonce", ["expires"], unique=False)
    op.create_table(
        "dure_policy",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("policy_id", sa.Text(), nullable=False),
        sa.Column("site", sa.Text(), nullable=False),
        sa.Column("envelope", sa.Text(), nullable=False),
        sa.Column("registered", sa.Text(), nullable=False),
        sa.Column("revocation", sa.Text(), nullable=True),
        sa.Column("revoked", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("policy_id"),
    )
    op.create_index(op.f("ix_dure_policy_site"), "dure_policy", ["site"], unique=False)
    op.create_table(
        "dure_retrain",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("model_digest", sa.Text(), nullable=False),
        sa.Column("site", sa.Text(), nullable=False),
        sa.Column("parent_model", sa.Text(), nullable=True),
        sa.Column("replaces", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column("requested", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_dure_retrain_model_digest"), "dure_retrain", ["model_digest"], unique=False
    )
    op.create_index(op.f("ix_dure_retrain_site"), "dure_retrain", ["site"], unique=False)
    op.create_table(
        "dure_round",
        sa.Column("job_id", sa.Text(), nullable=False),
        sa.Column("round", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("sampled", sa.Text(), nullable=False),
        sa.Column("contributors", sa.Text(), nullable=False),
        sa.Column("model_digest", sa.Text(), nullable=True),
        sa.Column("epsilon", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("updated", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "round"),
    )
    op.create_table(
        "dure_site",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("identity", sa.Text(), nullable=False),
        sa.Column("registered", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_id"),
        sa.UniqueConstraint("name"),
    )
    head = sa.table(
        "dure_ledger_head", sa.column("id", sa.Integer), sa.column("size", sa.BigInteger)
    )
    op.bulk_insert(head, [{"id": 1, "size": 0}])


def downgrade() -> None:
    """Drop every table (the ledger with them: only for throwaway databases)."""
    op.drop_table("dure_site")
    op.drop_table("dure_round")
    op.drop_index(op.f("ix_dure_retrain_site"), table_name="dure_retrain")
    op.drop_index(op.f("ix_dure_retrain_model_digest"), table_name="dure_retrain")
    op.drop_table("dure_retrain")
    op.drop_index(op.f("ix_dure_policy_site"), table_name="dure_policy")
    op.drop_table("dure_policy")
    op.drop_index(op.f("ix_dure_nonce_expires"), table_name="dure_nonce")
    op.drop_table("dure_nonce")
    op.drop_table("dure_ledger_node")
    op.drop_table("dure_ledger_head")
    op.drop_table("dure_ledger_entry")
    op.drop_table("dure_ledger_checkpoint")
    op.drop_table("dure_job")
    op.drop_index(op.f("ix_dure_auditor_site"), table_name="dure_auditor")
    op.drop_index(op.f("ix_dure_auditor_key_id"), table_name="dure_auditor")
    op.drop_table("dure_auditor")
