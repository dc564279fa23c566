"""Indexes on when attempts and calls started: the reports count a period's attempts by
``call_attempts.started_at`` (bot/reports/period.py, weekly.py), and the QA population reads
a campaign's calls of a day by ``calls.campaign_id`` and ``calls.started_at``
(bot/qa/population.py); both scanned the whole table before.

The uniqueness of a QA sample per campaign, kind and period, on which concurrent scheduled
draws rely (bot/qa/schedule.py), is migration 0013's
``uq_qa_samples_campaign_id_kind_period_start``.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 02:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_call_attempts_started_at"), "call_attempts", ["started_at"])
    op.create_index(op.f("ix_calls_campaign_id_started_at"), "calls",
                    ["campaign_id", "started_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_calls_campaign_id_started_at"), table_name="calls")
    op.drop_index(op.f("ix_call_attempts_started_at"), table_name="call_attempts")
