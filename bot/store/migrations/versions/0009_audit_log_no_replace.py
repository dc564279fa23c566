"""The audit log refuses SQLite's INSERT OR REPLACE from any client.

REPLACE deletes the row it collides with before inserting, and fires the delete trigger
that refuses it only when the connection turned `recursive_triggers` on.  bot.store's
connections do; a foreign client (the sqlite3 shell, a script) does not, and could rewrite
an entry.  An insert trigger that refuses a colliding id closes that, as migration 0007
does for the consent ledger.  PostgreSQL has no REPLACE: nothing to do there.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 15:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE = """CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log
    WHEN EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id)
    BEGIN SELECT RAISE(ABORT, 'audit_log is insert-only'); END"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(_SQLITE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_replace")
