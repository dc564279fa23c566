"""Migration 0008: `calls.outcome` takes `failed` (a system failure), on tables with data.

On SQLite the table's stored definition is edited in place (a batch re-creation of `calls`
would drop a table that transcript turns reference); this runs it with such rows present."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError

from bot.store import CallRepo, Database
from bot.store.models import Call, TranscriptTurn
from tests.conftest import seed_call


def _set_outcome(db: Database, call_id: str, outcome: str) -> None:
    with db.session() as session:  # raw: the repository would refuse it before the database
        session.execute(update(Call).where(Call.id == call_id).values(outcome=outcome))


def test_failed_is_accepted_after_0008_and_refused_before(fresh_db: Database) -> None:
    fresh_db.downgrade("0007")
    call = seed_call(fresh_db)
    with fresh_db.session() as session:  # a row that references calls (raw: the model has
        # columns of later migrations)
        session.execute(insert(TranscriptTurn).values(call_id=call.id, seq=1,
                                                      speaker="customer", text="喂"))
    with pytest.raises(IntegrityError):
        _set_outcome(fresh_db, call.id, "failed")

    fresh_db.upgrade()
    _set_outcome(fresh_db, call.id, "failed")
    with pytest.raises(IntegrityError):
        _set_outcome(fresh_db, call.id, "no_such_outcome")
    with fresh_db.session() as session:
        assert [t.text for t in CallRepo(session).turns(call.id)] == ["喂"]

    fresh_db.downgrade("0007")  # failed calls become unfinished ones again
    with fresh_db.session() as session:
        row = session.get(Call, call.id)
        assert row is not None and row.outcome is None
    fresh_db.upgrade()
