"""Migration 0014: `transcript_turns.speaker` takes `agent`, on a table with rows, on SQLite
(the table is copied) and PostgreSQL (the constraint is re-created)."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from bot.store import CallRepo, Database
from bot.store.models import TranscriptTurn
from tests.conftest import seed_call


def _raw_turn(db: Database, call_id: str, seq: int, speaker: str,
              input_mode: str | None = None, text: str = "您好") -> None:
    """Raw: the repository would refuse it before the database, and the model has columns
    of later migrations."""
    with db.session() as session:
        session.execute(insert(TranscriptTurn).values(
            call_id=call_id, seq=seq, speaker=speaker, text=text, input_mode=input_mode))


def _turns(db: Database, call_id: str) -> list[tuple[int, int, str, str]]:
    with db.session() as session:
        return [(row.id, row.seq, row.speaker, row.text) for row in session.execute(
            select(TranscriptTurn.id, TranscriptTurn.seq, TranscriptTurn.speaker,
                   TranscriptTurn.text).where(TranscriptTurn.call_id == call_id)
            .order_by(TranscriptTurn.seq))]


def test_agent_is_a_speaker_after_0014_and_refused_before(fresh_db: Database) -> None:
    fresh_db.downgrade("0013")
    call = seed_call(fresh_db)
    _raw_turn(fresh_db, call.id, 1, "customer", text="我要转人工")
    with pytest.raises(IntegrityError):
        _raw_turn(fresh_db, call.id, 2, "agent")
    before = _turns(fresh_db, call.id)

    fresh_db.upgrade()
    assert _turns(fresh_db, call.id) == before  # rows and ids kept by the copy
    with fresh_db.session() as session:
        CallRepo(session).add_turn(call.id, "agent", "您好，我是客服王芳",
                                   input_mode="speech", asr_confidence=0.9)
    for speaker, mode in (("robot", None), ("agent", "telepathy")):  # both checks still hold
        with pytest.raises(IntegrityError):
            _raw_turn(fresh_db, call.id, 9, speaker, mode)
    with pytest.raises(IntegrityError):  # and the unique (call, seq)
        _raw_turn(fresh_db, call.id, 2, "agent")
    assert [t[2] for t in _turns(fresh_db, call.id)] == ["customer", "agent"]

    fresh_db.downgrade("0013")  # the agent's words are kept, as marked system turns
    assert [(t[2], t[3]) for t in _turns(fresh_db, call.id)] == [
        ("customer", "我要转人工"), ("system", "坐席：您好，我是客服王芳")]
    fresh_db.upgrade()
