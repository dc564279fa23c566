"""Phone locks lose their own expiry: the attempt's lease is the one record of a live call.

``phone_locks.expires_at`` was renewed with the lease and never read.  A lock row now only
guards a number against a second live call; it is inserted and deleted in the units of work
that grant and end its attempt's lease (``call_attempts.lease_expires_at``).  The column is
dropped in place (``recreate="never"``; SQLite drops a column that is in no index or
constraint).  The downgrade restores it from the attempts' leases.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 15:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index(op.f("ix_phone_locks_expires_at"), table_name="phone_locks")
    with op.batch_alter_table("phone_locks", recreate="never") as batch:
        batch.drop_column("expires_at")


def downgrade() -> None:
    with op.batch_alter_table("phone_locks", recreate="never") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    # A lock whose attempt has no lease any more cannot exist (they end together); the lock's
    # own creation time stands in should one be found.
    op.execute(
        "UPDATE phone_locks SET expires_at = COALESCE("
        "(SELECT lease_expires_at FROM call_attempts"
        " WHERE call_attempts.call_id = phone_locks.call_id), created_at)"
    )
    # NOT NULL needs a copy of the table on SQLite; nothing references phone_locks.
    with op.batch_alter_table("phone_locks") as batch:
        batch.alter_column("expires_at", existing_type=sa.DateTime(timezone=True),
                           nullable=False)
    op.create_index(op.f("ix_phone_locks_expires_at"), "phone_locks", ["expires_at"])
