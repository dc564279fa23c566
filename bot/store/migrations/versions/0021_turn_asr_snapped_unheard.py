"""What a transcript turn says about how it was heard, for the automatic review flags
(bot/qa/flags.py), from the call's own events rather than constructed calls:

- ``transcript_turns.asr_snapped``: the recogniser replaced the customer's words by the
  nearest hint phrase (or repaired homophones, voice/asr/lexicon.py); null for turns written
  before this migration and for turns that were not recognised speech.
- ``transcript_turns.unheard_disclosures``: on a system note written for the voice
  gateway's ``disclosure.interrupted`` event, the disclosures the customer did not hear in
  full (talked over twice, or never said after a barge-in).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 23:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("transcript_turns", sa.Column("asr_snapped", sa.Boolean(), nullable=True))
    op.add_column("transcript_turns",
                  sa.Column("unheard_disclosures", sa.JSON(), nullable=True))


def downgrade() -> None:
    # SQLite 3.35+ drops a column in place.
    op.drop_column("transcript_turns", "unheard_disclosures")
    op.drop_column("transcript_turns", "asr_snapped")
