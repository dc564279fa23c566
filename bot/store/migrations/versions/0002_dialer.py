"""Dialer: attempt leases and kinds, phone locks, QA reviews.

``call_attempts`` gains ``kind``, ``callback_id`` and ``completed_at`` (and an index on
``lease_expires_at``).  They are added and dropped in place (``recreate="never"``): a batch
*re-creation* of ``call_attempts`` on SQLite would drop a table that ``calls`` references,
which fails with foreign keys on as soon as there is data.  So the new columns carry no
foreign key, and the CHECK on ``kind`` is a column constraint (SQLite accepts those in
``ADD COLUMN`` and drops them with the column).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ATTEMPT_KINDS = "'first', 'retry', 'callback', 'second_confirmation', 'trial_extension', " \
    "'qa_followup'"


def upgrade() -> None:
    with op.batch_alter_table("call_attempts", recreate="never") as batch:
        batch.add_column(
            sa.Column(
                "kind",
                sa.String(length=30),
                sa.CheckConstraint(f"kind IN ({ATTEMPT_KINDS})", name="ck_call_attempts_kind"),
                server_default="first",
                nullable=False,
            )
        )
        batch.add_column(sa.Column("callback_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index(
            op.f("ix_call_attempts_lease_expires_at"), ["lease_expires_at"], unique=False
        )
    op.create_table(
        "phone_locks",
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("call_id", sa.String(length=36), nullable=False),
        sa.Column("gateway", sa.String(length=100), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["call_attempts.call_id"],
            name=op.f("fk_phone_locks_call_id_call_attempts"),
        ),
        sa.PrimaryKeyConstraint("phone", name=op.f("pk_phone_locks")),
        sa.UniqueConstraint("call_id", name=op.f("uq_phone_locks_call_id")),
    )
    op.create_index(op.f("ix_phone_locks_expires_at"), "phone_locks", ["expires_at"])
    op.create_table(
        "qa_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=36), nullable=False),
        sa.Column("reviewer", sa.String(length=100), nullable=False),
        sa.Column("compliant", sa.Boolean(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_qa_reviews_call_id_calls")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_reviews")),
    )
    op.create_index(op.f("ix_qa_reviews_call_id"), "qa_reviews", ["call_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_qa_reviews_call_id"), table_name="qa_reviews")
    op.drop_table("qa_reviews")
    op.drop_index(op.f("ix_phone_locks_expires_at"), table_name="phone_locks")
    op.drop_table("phone_locks")
    with op.batch_alter_table("call_attempts", recreate="never") as batch:
        batch.drop_index(op.f("ix_call_attempts_lease_expires_at"))
        batch.drop_column("completed_at")
        batch.drop_column("callback_id")
        batch.drop_column("kind")
