"""Complaints: each customer complaint and its handling (issue 15 item 5, bot/qa/complaints.py).

- ``complaints``: one per call at most (and any number entered without a call): the
  customer's words, severity, status ``new`` -> ``contacted`` -> ``resolved`` with the
  deadlines set when it was recorded and who did each step, the answer given, the root
  cause (``value``/``system``/``people``), the campaign's blacklist policy at the time, the
  blacklist entry applied, and the supervisor's decision (serious or not) with who and when.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 21:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECKS = {
    "status": "'new', 'contacted', 'resolved'",
    "source": "'call', 'agent', 'supervisor'",
    "severity": "'low', 'medium', 'high'",
    "root_cause": "'value', 'system', 'people'",
    "decision": "'serious', 'not_serious'",
    "blacklist_policy": "'immediately', 'on_decision'",
}
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "complaints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=36), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("words", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("contact_due_at", WHEN, nullable=False),
        sa.Column("resolve_due_at", WHEN, nullable=False),
        sa.Column("contacted_at", WHEN, nullable=True),
        sa.Column("contacted_by", sa.String(length=100), nullable=True),
        sa.Column("resolved_at", WHEN, nullable=True),
        sa.Column("resolved_by", sa.String(length=100), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("root_cause", sa.String(length=10), nullable=True),
        sa.Column("blacklist_policy", sa.String(length=20), nullable=False),
        sa.Column("blacklist_entry_id", sa.Integer(), nullable=True),
        sa.Column("decision", sa.String(length=20), nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decided_at", WHEN, nullable=True),
        *(sa.CheckConstraint(f"{column} IN ({values})", name=op.f(f"ck_complaints_{column}"))
          for column, values in CHECKS.items()),
        sa.CheckConstraint("(decision IS NULL) = (decided_at IS NULL)",
                           name=op.f("ck_complaints_decided")),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"],
                                name=op.f("fk_complaints_call_id_calls")),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"],
                                name=op.f("fk_complaints_campaign_id_campaigns")),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"],
                                name=op.f("fk_complaints_contact_id_contacts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaints")),
        sa.UniqueConstraint("call_id", name=op.f("uq_complaints_call_id")),
    )
    op.create_index(op.f("ix_complaints_contact_id"), "complaints", ["contact_id"])
    op.create_index(op.f("ix_complaints_status_created_at"), "complaints",
                    ["status", "created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_complaints_status_created_at"), table_name="complaints")
    op.drop_index(op.f("ix_complaints_contact_id"), table_name="complaints")
    op.drop_table("complaints")
