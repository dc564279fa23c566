"""QA results by rule and the recording library (issue 15 items 6 and 7).

- ``qa_rule_results``: one row per rule of a review's scorecard (passed, points), so the
  weekly summary counts QA results by rule with a query.  Until now the scorecard was kept
  only in the audit log (``qa.reviewed``, its detail's ``scorecard``); the rules of those
  reviews are copied from there (``failed_rules``; the audit kept no points per rule).
- ``library_entries`` / ``library_tags``: calls marked exemplary or as a problem, with a
  note and tags, for training.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 21:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RULES = ("right_person", "understood", "approved_script", "explicit_consent")


def upgrade() -> None:
    listed = ", ".join(f"'{r}'" for r in RULES)
    rule_results = op.create_table(
        "qa_rule_results",
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=30), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=True),
        sa.Column("max_points", sa.Integer(), nullable=True),
        sa.CheckConstraint(f"rule IN ({listed})", name=op.f("ck_qa_rule_results_rule")),
        sa.ForeignKeyConstraint(["review_id"], ["qa_reviews.id"],
                                name=op.f("fk_qa_rule_results_review_id_qa_reviews")),
        sa.PrimaryKeyConstraint("review_id", "rule", name=op.f("pk_qa_rule_results")),
    )
    op.create_table(
        "library_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("marked_by", sa.String(length=100), nullable=False),
        sa.Column("marked_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('exemplary', 'problem')",
                           name=op.f("ck_library_entries_kind")),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"],
                                name=op.f("fk_library_entries_call_id_calls")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_library_entries")),
        sa.UniqueConstraint("call_id", name=op.f("uq_library_entries_call_id")),
    )
    op.create_table(
        "library_tags",
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["library_entries.id"],
                                name=op.f("fk_library_tags_entry_id_library_entries")),
        sa.PrimaryKeyConstraint("entry_id", "tag", name=op.f("pk_library_tags")),
    )
    op.create_index(op.f("ix_library_tags_tag"), "library_tags", ["tag"])
    op.bulk_insert(rule_results, _rules_from_audit())


def _rules_from_audit() -> list[dict[str, Any]]:
    """The rules of the reviews made before this revision, from their ``qa.reviewed``
    audit entries (the latest entry of a review wins; one per review in practice)."""
    audit = sa.table("audit_log", sa.column("id", sa.Integer()),
                     sa.column("action", sa.String()), sa.column("detail", sa.JSON()))
    reviews = sa.table("qa_reviews", sa.column("id", sa.Integer()))
    bind = op.get_bind()
    known = set(bind.scalars(sa.select(reviews.c.id)))
    failed: dict[int, list[str]] = {}
    for detail in bind.scalars(sa.select(audit.c.detail).where(audit.c.action == "qa.reviewed")
                               .order_by(audit.c.id)):
        card = (detail or {}).get("scorecard")
        review_id = (detail or {}).get("review_id")
        if isinstance(card, dict) and isinstance(review_id, int) and review_id in known:
            failed[review_id] = [str(r) for r in card.get("failed_rules") or []]
    return [{"review_id": review_id, "rule": rule, "passed": rule not in rules,
             "points": None, "max_points": None}
            for review_id, rules in sorted(failed.items()) for rule in RULES]


def downgrade() -> None:
    op.drop_index(op.f("ix_library_tags_tag"), table_name="library_tags")
    op.drop_table("library_tags")
    op.drop_table("library_entries")
    op.drop_table("qa_rule_results")
