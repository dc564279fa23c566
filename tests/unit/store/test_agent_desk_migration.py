"""Migration 0011: the agent desk's tables, and the desk's escalation statuses, on tables
with data.

On SQLite the status list of `escalations` is changed in the table's stored definition (as
0008 does for `calls`): a re-creation would drop a table that offers and dispositions
reference.  This runs it with an escalation present, both ways."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, update
from sqlalchemy.exc import IntegrityError

from bot.store import Database, EscalationRepo
from bot.store.models import Escalation
from tests.conftest import seed_call

DESK_TABLES = {"agent_state_changes", "escalation_offers", "dispositions"}


def _set_status(db: Database, escalation_id: int, status: str) -> None:
    with db.session() as session:  # raw: the repository would refuse it before the database
        session.execute(update(Escalation).where(Escalation.id == escalation_id)
                        .values(status=status))


def test_the_desk_statuses_and_tables_come_with_0011_and_go_without(fresh_db: Database) -> None:
    fresh_db.downgrade("0010")
    assert not DESK_TABLES & set(inspect(fresh_db.engine).get_table_names())
    call = seed_call(fresh_db)
    with fresh_db.session() as session:
        escalation_id = EscalationRepo(session).add(call.id, call.campaign_id, call.contact_id,
                                                    "request_human", {"k": "v"}).id
    with pytest.raises(IntegrityError):
        _set_status(fresh_db, escalation_id, "bridged")

    fresh_db.upgrade()
    assert set(inspect(fresh_db.engine).get_table_names()) >= DESK_TABLES
    _set_status(fresh_db, escalation_id, "bridged")
    with pytest.raises(IntegrityError):
        _set_status(fresh_db, escalation_id, "no_such_status")
    with fresh_db.session() as session:
        row = session.get(Escalation, escalation_id)
        assert row is not None and row.context == {"k": "v"}

    fresh_db.downgrade("0010")  # the desk's statuses become failed ones
    assert not DESK_TABLES & set(inspect(fresh_db.engine).get_table_names())
    with fresh_db.session() as session:
        row = session.get(Escalation, escalation_id)
        assert row is not None and row.status == "failed"
    fresh_db.upgrade()
