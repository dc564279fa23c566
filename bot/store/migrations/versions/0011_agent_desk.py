"""The agent desk's records: presence changes, offers and dispositions; the desk's
escalation statuses.

- ``agent_state_changes``: every change of an agent's presence with its time (the agent
  figures are computed from them); ``seq`` per agent, unique, so two concurrent changes of
  one agent collide.
- ``escalation_offers``: each offer of an escalated call to one agent, with the strategy,
  the reason in words and the team snapshot the choice was made from; at most one ringing
  offer (no outcome yet) per escalation and per agent (partial unique indexes).
- ``dispositions``: one per escalation, by the agent who took it.
- ``escalations.status`` gains the desk's statuses (DESIGN.md): waiting, offered, listening,
  bridged, declined, timed_out, abandoned, callback, returned_to_bot.  ``pending``,
  ``connected`` and ``failed`` stay (the gateway's blind transfer writes them).  As in 0008,
  SQLite's stored table definition is edited in place (rows valid before stay valid); the
  downgrade first turns the new statuses back into ``failed``.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = "'pending', 'connected', 'failed'"
DESK = ("'waiting', 'offered', 'listening', 'bridged', 'declined', 'timed_out', "
        "'abandoned', 'callback', 'returned_to_bot'")
AFTER = f"{BEFORE}, {DESK}"
STATES = "'offline', 'available', 'offered', 'on_call', 'wrap_up', 'away'"
EVENTS = ("'log_in', 'log_out', 'offer', 'accept', 'decline', 'offer_timed_out', "
          "'offer_withdrawn', 'call_ended', 'wrap_up_done', 'wrap_up_expired', 'go_away', "
          "'come_back'")
AWAY_REASONS = "'break', 'meal', 'meeting', 'training', 'other', 'missed_offer'"
OFFER_OUTCOMES = "'accepted', 'declined', 'timed_out', 'withdrawn'"
STRATEGIES = "'equal_share', 'equal_results', 'weight'"
DISPOSITIONS = "'resolved', 'sale', 'callback', 'complaint', 'wrong_person', 'other'"
RINGING = sa.text("outcome IS NULL")


def _when(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "agent_state_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        _when("at"),
        sa.Column("from_state", sa.String(length=20), nullable=False),
        sa.Column("to_state", sa.String(length=20), nullable=False),
        sa.Column("event", sa.String(length=30), nullable=False),
        sa.Column("reason", sa.String(length=30), nullable=True),
        sa.Column("call_id", sa.String(length=36), nullable=True),
        sa.CheckConstraint(f"from_state IN ({STATES})",
                           name=op.f("ck_agent_state_changes_from_state")),
        sa.CheckConstraint(f"to_state IN ({STATES})",
                           name=op.f("ck_agent_state_changes_to_state")),
        sa.CheckConstraint(f"event IN ({EVENTS})", name=op.f("ck_agent_state_changes_event")),
        sa.CheckConstraint(f"reason IN ({AWAY_REASONS})",
                           name=op.f("ck_agent_state_changes_reason")),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.user_id"],
                                name=op.f("fk_agent_state_changes_agent_id_agents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_state_changes")),
        sa.UniqueConstraint("agent_id", "seq", name=op.f("uq_agent_state_changes_agent_id_seq")),
    )
    op.create_index(op.f("ix_agent_state_changes_at"), "agent_state_changes", ["at"])

    op.create_table(
        "escalation_offers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("escalation_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        _when("offered_at"),
        _when("listened_at", nullable=True),
        _when("answered_at", nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("strategy", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.CheckConstraint(f"outcome IN ({OFFER_OUTCOMES})",
                           name=op.f("ck_escalation_offers_outcome")),
        sa.CheckConstraint(f"strategy IN ({STRATEGIES})",
                           name=op.f("ck_escalation_offers_strategy")),
        sa.CheckConstraint("(outcome IS NULL) = (answered_at IS NULL)",
                           name=op.f("ck_escalation_offers_answered")),
        sa.ForeignKeyConstraint(["escalation_id"], ["escalations.id"],
                                name=op.f("fk_escalation_offers_escalation_id_escalations")),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.user_id"],
                                name=op.f("fk_escalation_offers_agent_id_agents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation_offers")),
    )
    op.create_index(op.f("ix_escalation_offers_agent_id_offered_at"), "escalation_offers",
                    ["agent_id", "offered_at"])
    op.create_index("ix_escalation_offers_ringing_escalation", "escalation_offers",
                    ["escalation_id"], unique=True, sqlite_where=RINGING,
                    postgresql_where=RINGING)
    op.create_index("ix_escalation_offers_ringing_agent", "escalation_offers", ["agent_id"],
                    unique=True, sqlite_where=RINGING, postgresql_where=RINGING)

    op.create_table(
        "dispositions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("escalation_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=36), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("disposition", sa.String(length=20), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        _when("callback_at", nullable=True),
        sa.Column("wrap_up_s", sa.Float(), nullable=False),
        _when("at"),
        _when("updated_at", nullable=True),
        sa.CheckConstraint(f"disposition IN ({DISPOSITIONS})",
                           name=op.f("ck_dispositions_disposition")),
        sa.CheckConstraint("(disposition = 'callback') = (callback_at IS NOT NULL)",
                           name=op.f("ck_dispositions_callback_at")),
        sa.CheckConstraint("wrap_up_s >= 0", name=op.f("ck_dispositions_wrap_up_s")),
        sa.ForeignKeyConstraint(["escalation_id"], ["escalations.id"],
                                name=op.f("fk_dispositions_escalation_id_escalations")),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"],
                                name=op.f("fk_dispositions_call_id_calls")),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.user_id"],
                                name=op.f("fk_dispositions_agent_id_agents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispositions")),
        sa.UniqueConstraint("escalation_id", name=op.f("uq_dispositions_escalation_id")),
    )
    op.create_index(op.f("ix_dispositions_call_id"), "dispositions", ["call_id"])
    op.create_index(op.f("ix_dispositions_agent_id"), "dispositions", ["agent_id"])

    _statuses(BEFORE, AFTER)


def downgrade() -> None:
    op.execute(f"UPDATE escalations SET status = 'failed' WHERE status IN ({DESK})")
    _statuses(AFTER, BEFORE)
    op.drop_table("dispositions")
    op.drop_table("escalation_offers")
    op.drop_table("agent_state_changes")


def _statuses(old: str, new: str) -> None:
    """Change the list of ``escalations.status`` values (see 0008 for the SQLite way)."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.drop_constraint(op.f("ck_escalations_status"), "escalations", type_="check")
        op.create_check_constraint(op.f("ck_escalations_status"), "escalations",
                                   f"status IN ({new})")
        return
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'escalations'"
    ).scalar_one()
    needle = f"status IN ({old})"
    if sql.count(needle) != 1:
        raise RuntimeError(f"escalations: the status CHECK is not the expected one: {sql}")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    try:
        bind.exec_driver_sql(
            "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'escalations'",
            (sql.replace(needle, f"status IN ({new})"),))
        bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    finally:
        bind.exec_driver_sql("PRAGMA writable_schema = OFF")
    problems = bind.exec_driver_sql("PRAGMA integrity_check").scalars().all()
    if problems != ["ok"]:
        raise RuntimeError(f"escalations: integrity check after the status change: {problems}")
