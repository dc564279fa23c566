"""The agent's words in the transcript: ``transcript_turns.speaker`` takes ``agent``.

While a customer is bridged to an agent, the agent's side is transcribed and stored as
turns of speaker ``agent`` (voice/call/agent_side.py, bot/transcript.py); the CHECK
constraint ``ck_transcript_turns_speaker`` allowed only ``bot``, ``customer``, ``system``.

PostgreSQL drops and re-creates the constraint.  SQLite cannot alter a constraint: the table
is copied (``batch_alter_table``, ``recreate="always"``), which is safe here because no
table references ``transcript_turns`` and it has no triggers (unlike ``calls``, which 0008
edits in place for that reason).  The copy keeps the rows, the other constraints and the
ids.  The downgrade keeps the agent's turns as ``system`` turns prefixed ``坐席：`` rather
than losing them, then narrows the list again.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-12 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = "'bot', 'customer', 'system'"
AFTER = f"{BEFORE}, 'agent'"
AGENT_PREFIX = "坐席："  # marks a former agent turn after a downgrade


def upgrade() -> None:
    _speakers(AFTER)


def downgrade() -> None:
    op.execute(f"UPDATE transcript_turns SET speaker = 'system', "
               f"text = '{AGENT_PREFIX}' || text WHERE speaker = 'agent'")
    _speakers(BEFORE)


def _speakers(allowed: str) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("transcript_turns",
                              recreate="always" if sqlite else "auto") as batch:
        batch.drop_constraint(op.f("ck_transcript_turns_speaker"), type_="check")
        batch.create_check_constraint(op.f("ck_transcript_turns_speaker"),
                                      f"speaker IN ({allowed})")
