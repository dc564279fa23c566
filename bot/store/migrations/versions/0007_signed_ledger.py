"""The consent ledger is signed, binds its evidence, and only grows at its head.

New columns on ``consents`` (see ``bot.store.ledger``): ``kind`` (``consent`` or
``recording_seal``), ``key_id`` and ``signature`` (Ed25519 over the entry hash, with a key
the database does not hold), ``phone_hash`` (keyed), the consenting audio's span on the
call's clock, the transcript turn (``turn_seq``, ``turn_text``), and for a seal the
recording's ``recording_sha256`` and ``recording_ms``.  A seal has no product, script,
utterance or input mode, so those become nullable (SQLite copies the table for that; the
old rows keep their values and hashes: they verify as legacy, unsigned entries).

A trigger refuses an insert that is not at the head of the chain: its ``prev_hash`` must be
the ``entry_hash`` of the entry with the greatest id (the genesis hash when there is none),
its id must be greater than every other, and on SQLite it must not collide with an
existing id or hash — ``INSERT OR REPLACE`` deletes the row it collides with *before* the
insert, without firing the delete trigger unless ``recursive_triggers`` is on, so the
collision itself is refused.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 16:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64
NOT_HEAD = "consents: an entry may only be appended at the head of the chain"
APPEND_ONLY = "consents is append-only"  # as in 0001

_HEAD = f"COALESCE((SELECT entry_hash FROM consents ORDER BY id DESC LIMIT 1), '{GENESIS}')"

# NEW.id is -1 in a SQLite BEFORE INSERT trigger when the id is left to the database; the
# AFTER trigger sees the real one (and aborts the statement, undoing a REPLACE's delete).
_SQLITE = [
    f"""CREATE TRIGGER consents_at_head BEFORE INSERT ON consents
    WHEN NEW.prev_hash IS NOT {_HEAD}
      OR EXISTS (SELECT 1 FROM consents WHERE id = NEW.id OR entry_hash = NEW.entry_hash
                 OR prev_hash = NEW.prev_hash)
    BEGIN SELECT RAISE(ABORT, '{NOT_HEAD}'); END""",
    f"""CREATE TRIGGER consents_id_at_head AFTER INSERT ON consents
    WHEN NEW.id < (SELECT max(id) FROM consents)
    BEGIN SELECT RAISE(ABORT, '{NOT_HEAD}'); END""",
]
_SQLITE_APPEND_ONLY = [
    f"""CREATE TRIGGER consents_no_{event.lower()} BEFORE {event} ON consents
    BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"""
    for event in ("UPDATE", "DELETE")
]
_POSTGRES = [
    f"""CREATE FUNCTION consents_at_head() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.prev_hash IS DISTINCT FROM {_HEAD}
           OR NEW.id <= (SELECT max(id) FROM consents) THEN
            RAISE EXCEPTION '{NOT_HEAD}' USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER consents_at_head BEFORE INSERT ON consents
    FOR EACH ROW EXECUTE FUNCTION consents_at_head()""",
]

_NULLABLE_FOR_SEALS: list[tuple[str, sa.types.TypeEngine[Any]]] = [
    ("product", sa.String(length=200)),
    ("script_hash", sa.String(length=64)),
    ("disclosures", sa.JSON()),
    ("utterance", sa.Text()),
    ("input_mode", sa.String(length=10)),
]


def _new_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("kind", sa.String(length=20), server_default="consent", nullable=False),
        sa.Column("key_id", sa.String(length=40), nullable=True),
        sa.Column("signature", sa.String(length=128), nullable=True),
        sa.Column("phone_hash", sa.String(length=64), nullable=True),
        sa.Column("audio_start_ms", sa.Integer(), nullable=True),
        sa.Column("audio_end_ms", sa.Integer(), nullable=True),
        sa.Column("turn_seq", sa.Integer(), nullable=True),
        sa.Column("turn_text", sa.Text(), nullable=True),
        sa.Column("recording_sha256", sa.String(length=64), nullable=True),
        sa.Column("recording_ms", sa.Integer(), nullable=True),
    ]


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # SQLite copies the table (its triggers go with the old copy and are made again below).
    with op.batch_alter_table("consents", recreate="always" if sqlite else "auto") as batch:
        for column in _new_columns():
            batch.add_column(column)
        for name, type_ in _NULLABLE_FOR_SEALS:
            batch.alter_column(name, existing_type=type_, nullable=True)
        batch.create_check_constraint(op.f("ck_consents_kind"),
                                      "kind IN ('consent', 'recording_seal')")
    op.create_index(op.f("ix_consents_call_id"), "consents", ["call_id"])
    for statement in (_SQLITE_APPEND_ONLY + _SQLITE) if sqlite else _POSTGRES:
        op.execute(statement)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        for name in ("consents_at_head", "consents_id_at_head", "consents_no_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    else:
        op.execute("DROP TRIGGER IF EXISTS consents_at_head ON consents")
        op.execute("DROP FUNCTION IF EXISTS consents_at_head()")
        op.execute("ALTER TABLE consents DISABLE TRIGGER consents_append_only")
    # The old schema has no place for recording seals: they go (the chain then no longer
    # verifies past the first of them, as the old code cannot check signatures anyway).
    op.execute("DELETE FROM consents WHERE kind = 'recording_seal'")
    if not sqlite:
        op.execute("ALTER TABLE consents ENABLE TRIGGER consents_append_only")
    op.drop_index(op.f("ix_consents_call_id"), table_name="consents")
    with op.batch_alter_table("consents", recreate="always" if sqlite else "auto") as batch:
        batch.drop_constraint(op.f("ck_consents_kind"), type_="check")
        for name, type_ in _NULLABLE_FOR_SEALS:
            batch.alter_column(name, existing_type=type_, nullable=False)
        for column in reversed(_new_columns()):
            batch.drop_column(column.name)
    if sqlite:
        op.execute("DROP TRIGGER IF EXISTS consents_no_update")
        for statement in _SQLITE_APPEND_ONLY:
            op.execute(statement)
