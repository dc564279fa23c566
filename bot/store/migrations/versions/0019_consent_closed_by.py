"""Who closed a sale the bot confirmed: ``consents.closed_by`` (issue 14 item 4).

An agent who took an escalated call can hand it back to the bot, which reads the sale back
and asks the customer's explicit confirmation (actions/flowhandback.py).  The consent is
then the bot's, under the bot's rules, and its ledger entry names the agent who closed the
sale: ``agent:USERNAME``.  NULL for the bot's own sales and every earlier entry.

The column is hashed into a signed entry only when it is set (bot/store/ledger.py), so
every entry written before keeps its hash.  A nullable column is added in place on SQLite
and PostgreSQL alike (no table copy, which the ledger's triggers would refuse).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 01:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("consents", sa.Column("closed_by", sa.String(length=120), nullable=True))


def downgrade() -> None:
    # SQLite 3.35+ drops a column in place; the ledger's entries that name an agent lose
    # the name (and no longer verify), which is what going back before 0019 means.
    op.drop_column("consents", "closed_by")
