"""Supervisors monitoring live calls: listen, whisper, barge (issue 15 item 2).

- ``monitor_sessions``: a supervisor's request to monitor a call through their SIP phone,
  its mode (changed while it lasts), its state (``requested`` → ``dialling`` → ``active`` →
  ``ended``), who hears the supervisor, when it was asked for, started and ended, and why it
  ended.  At most one open session per call (a partial unique index).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 01:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MODES = "'listen', 'whisper', 'barge'"
STATES = "'requested', 'dialling', 'active', 'ended'"
OPEN = sa.text("state <> 'ended'")


def _when(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "monitor_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=36), nullable=False),
        sa.Column("supervisor_id", sa.Integer(), nullable=False),
        sa.Column("sip_uri", sa.String(length=200), nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("heard_by", sa.String(length=20), nullable=True),
        _when("requested_at"),
        _when("started_at", nullable=True),
        _when("ended_at", nullable=True),
        sa.Column("end_reason", sa.String(length=40), nullable=True),
        sa.CheckConstraint(f"mode IN ({MODES})", name=op.f("ck_monitor_sessions_mode")),
        sa.CheckConstraint(f"state IN ({STATES})", name=op.f("ck_monitor_sessions_state")),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"],
                                name=op.f("fk_monitor_sessions_call_id_calls")),
        sa.ForeignKeyConstraint(["supervisor_id"], ["users.id"],
                                name=op.f("fk_monitor_sessions_supervisor_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_sessions")),
    )
    op.create_index(op.f("ix_monitor_sessions_supervisor_id_requested_at"),
                    "monitor_sessions", ["supervisor_id", "requested_at"])
    op.create_index("ix_monitor_sessions_open_call", "monitor_sessions", ["call_id"],
                    unique=True, sqlite_where=OPEN, postgresql_where=OPEN)


def downgrade() -> None:
    op.drop_table("monitor_sessions")
