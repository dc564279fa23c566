"""A call that fails through no fault of the customer has its own outcome: ``failed``.

Rasa, the action server or the database down, or a bug: such a call used to end as
``hung_up_early`` (and its contact was not called again). ``calls.outcome`` gains the value
``failed`` (bot/store/vocab.py); the dialer retries the contact per the campaign's policy for
``failed``.

Only the CHECK constraint ``ck_calls_outcome`` changes. PostgreSQL drops and re-creates it.
SQLite cannot alter a constraint, and a batch re-creation of ``calls`` would drop a table that
transcript turns, consents and more reference (it fails with foreign keys on as soon as there
is data), so the table's stored definition is edited in place, the procedure SQLite documents
for changes that leave the stored rows valid ("Making Other Kinds Of Table Schema Changes":
``writable_schema``, bump ``schema_version``, ``integrity_check``): every row that passed the
old list passes the longer one. The downgrade turns ``failed`` calls back into unfinished
ones (outcome NULL, ``summary.interrupted`` kept) before it narrows the list again.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 14:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = ("'consented', 'declined', 'notified', 'survey_completed', 'survey_partial', "
          "'wrong_person', 'verification_failed', 'callback_requested', 'escalated', "
          "'complaint', 'do_not_call', 'hung_up_early', 'no_response'")
AFTER = f"{BEFORE}, 'failed'"


def upgrade() -> None:
    _outcomes(BEFORE, AFTER)


def downgrade() -> None:
    op.execute("UPDATE calls SET outcome = NULL WHERE outcome = 'failed'")
    _outcomes(AFTER, BEFORE)


def _outcomes(old: str, new: str) -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f("ck_calls_outcome"), "calls", type_="check")
        op.create_check_constraint(op.f("ck_calls_outcome"), "calls", f"outcome IN ({new})")
        return
    bind = op.get_bind()
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'calls'").scalar_one()
    needle = f"outcome IN ({old})"
    if sql.count(needle) != 1:
        raise RuntimeError(f"calls: the outcome CHECK is not the expected one: {sql}")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    try:
        bind.exec_driver_sql(
            "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'calls'",
            (sql.replace(needle, f"outcome IN ({new})"),))
        bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    finally:
        bind.exec_driver_sql("PRAGMA writable_schema = OFF")
    problems = bind.exec_driver_sql("PRAGMA integrity_check").scalars().all()
    if problems != ["ok"]:
        raise RuntimeError(f"calls: integrity check after the outcome change: {problems}")
