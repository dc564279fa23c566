"""Contacts record which server key their ID-digits hash was keyed with.

``contacts.id_hash_key`` is the key id (bot.keys, keyring ``id-hash``) of the pepper that
keyed ``id_last4_hash``; NULL for hashes made before keying, with the per-row salt alone.
Keeping the id beside the hash is what lets the key rotate: new hashes use the current key,
older ones are still checked with the key they were made with.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 14:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contacts", recreate="never") as batch:
        batch.add_column(sa.Column("id_hash_key", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contacts", recreate="never") as batch:
        batch.drop_column("id_hash_key")
