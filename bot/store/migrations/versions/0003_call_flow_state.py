"""Calls keep their call-flow state: the server's, not the one a request claims.

``calls.flow_state`` (JSON, null until ``/call_started``) is the flow's stage, counters
and consent facts; the actions read it from here and write it back in the same unit of
work as the effects it led to.  The Rasa ``flow`` slot is only a mirror of it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 11:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls", recreate="never") as batch:
        batch.add_column(sa.Column("flow_state", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls", recreate="never") as batch:
        batch.drop_column("flow_state")
