"""QA claims: a reviewer holds a sampled call while scoring it (issue 15 item 4).

- ``qa_claims``: one row per call at most; who holds it, since when and until when.  A claim
  past ``expires_at`` is free for anybody (the console takes it over); submitting the
  review deletes it.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 18:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "qa_claims",
        sa.Column("call_id", sa.String(length=36), nullable=False),
        sa.Column("reviewer", sa.String(length=100), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"],
                                name=op.f("fk_qa_claims_call_id_calls")),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_qa_claims")),
    )


def downgrade() -> None:
    op.drop_table("qa_claims")
