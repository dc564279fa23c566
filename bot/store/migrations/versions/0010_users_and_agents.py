"""Console accounts: ``users`` (role, argon2 password hash, lockout), ``agents`` (the agent
profile of a user: SIP address, weight) and ``agent_campaigns`` (the campaigns an agent
serves, by campaign name).

The agent profile is a table of its own keyed by the user's id rather than columns on
``users``: only agents have one, and the agent tables that follow (states, offers) hang off
it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLES = "'admin', 'supervisor', 'qa', 'agent'"


def _stamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=True),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("session_version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        *_stamps(),
        sa.CheckConstraint(f"role IN ({ROLES})", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "agents",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("sip_uri", sa.String(length=200), nullable=True),
        sa.Column("weight", sa.Integer(), server_default="1", nullable=False),
        *_stamps(),
        sa.CheckConstraint("weight >= 0", name=op.f("ck_agents_weight")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_agents_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_agents")),
    )
    op.create_table(
        "agent_campaigns",
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.user_id"],
                                name=op.f("fk_agent_campaigns_agent_id_agents")),
        sa.PrimaryKeyConstraint("agent_id", "campaign", name=op.f("pk_agent_campaigns")),
    )
    op.create_index(op.f("ix_agent_campaigns_campaign"), "agent_campaigns", ["campaign"])


def downgrade() -> None:
    op.drop_index(op.f("ix_agent_campaigns_campaign"), table_name="agent_campaigns")
    op.drop_table("agent_campaigns")
    op.drop_table("agents")
    op.drop_table("users")
