"""QA samples: the daily and weekly draws of a campaign's calls for review, and the calls
drawn with the reason for each (bot/qa/sampling.py).

- ``qa_samples``: one per campaign, kind (``daily``/``weekly``) and period; the rule, the
  population's size and digest, the nonce and the seed an auditor draws it again from.
- ``qa_sample_calls``: the drawn calls in draw order, each with why it was drawn.

Revision ID: 0013
Revises: 0011 (0012 is reserved for another change: whichever lands second chains after the
other)
Create Date: 2026-12-10 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = "'daily', 'weekly'"
REASONS = ("'random', 'always:consent', 'always:complaint', 'always:escalated', "
           "'always:do_not_call', 'min_per_agent'")


def upgrade() -> None:
    op.create_table(
        "qa_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("timezone", sa.String(length=60), nullable=False),
        sa.Column("rule", sa.JSON(), nullable=False),
        sa.Column("population_size", sa.Integer(), nullable=False),
        sa.Column("eligible_size", sa.Integer(), nullable=False),
        sa.Column("population_sha256", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("seed", sa.String(length=64), nullable=False),
        sa.Column("drawn_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("drawn_by", sa.String(length=100), nullable=False),
        sa.CheckConstraint(f"kind IN ({KINDS})", name=op.f("ck_qa_samples_kind")),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"],
                                name=op.f("fk_qa_samples_campaign_id_campaigns")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_samples")),
        sa.UniqueConstraint("campaign_id", "kind", "period_start",
                            name=op.f("uq_qa_samples_campaign_id_kind_period_start")),
    )
    op.create_table(
        "qa_sample_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=30), nullable=False),
        sa.CheckConstraint(f"reason IN ({REASONS})", name=op.f("ck_qa_sample_calls_reason")),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"],
                                name=op.f("fk_qa_sample_calls_call_id_calls")),
        sa.ForeignKeyConstraint(["sample_id"], ["qa_samples.id"],
                                name=op.f("fk_qa_sample_calls_sample_id_qa_samples")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_sample_calls")),
        sa.UniqueConstraint("sample_id", "call_id",
                            name=op.f("uq_qa_sample_calls_sample_id_call_id")),
        sa.UniqueConstraint("sample_id", "position",
                            name=op.f("uq_qa_sample_calls_sample_id_position")),
    )
    op.create_index(op.f("ix_qa_sample_calls_call_id"), "qa_sample_calls", ["call_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_qa_sample_calls_call_id"), table_name="qa_sample_calls")
    op.drop_table("qa_sample_calls")
    op.drop_table("qa_samples")
