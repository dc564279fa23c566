"""The desk's units of work behind the pages, on SQLite and PostgreSQL: a disposition with
its callback and its change, the watcher's expiry, every agent's presence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.agents import desk
from bot.agents.presence import PresenceEvent
from bot.console import desk_state, dispositions
from bot.store import AuditRepo, Database, DncRepo
from bot.store.models import Callback, Contact
from tests.unit.agents.seeding import add_agent
from tests.unit.console.desk_helpers import CAMPAIGN, add_trial_campaign, take_call

T0 = datetime(2030, 5, 6, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai, a calling window
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def agent_id(db: Database) -> int:
    add_trial_campaign(db, wrap_up_max_s=60)
    with db.session() as session:
        agent = add_agent(session, "alice", (CAMPAIGN,))
        desk.change_presence(session, agent, PresenceEvent("log_in"), T0)
    return agent


def _form(escalation_id: int, disposition: str, callback_at: str = "",
          notes: str = "") -> dispositions.DispositionForm:
    return dispositions.parse_form({"escalation_id": str(escalation_id),
                                    "disposition": disposition, "callback_at": callback_at,
                                    "notes": notes}, SHANGHAI)


def test_a_callback_and_its_change(db: Database, agent_id: int) -> None:
    taken = take_call(db, agent_id, T0 + timedelta(seconds=10))  # wrap-up from +75 s
    saved = dispositions.save(db, agent_id, "alice",
                              _form(taken.escalation_id, "callback", "2030-05-06T10:30"),
                              T0 + timedelta(seconds=90))
    assert (saved.disposition, saved.changed) == ("callback", False)
    assert saved.callback_due == datetime(2030, 5, 6, 2, 30, tzinfo=UTC)  # in the window
    assert saved.presence is not None and saved.presence["state"] == "available"
    with db.session() as session:
        callback = session.scalar(select(Callback))
        contact = session.scalar(select(Contact))
        assert callback is not None and contact is not None
        assert (callback.kind, callback.status) == ("customer_request", "pending")
        assert contact.status == "pending" and contact.next_attempt_at == saved.callback_due

    moved = dispositions.save(db, agent_id, "alice",
                              _form(taken.escalation_id, "callback", "2030-05-07T15:00"),
                              T0 + timedelta(minutes=5))
    assert moved.changed and moved.presence is not None
    with db.session() as session:
        rows = session.execute(select(Callback.status, Callback.due_at)
                               .order_by(Callback.id)).all()
        assert [tuple(r) for r in rows] == [
            ("cancelled", datetime(2030, 5, 6, 2, 30, tzinfo=UTC)),
            ("pending", datetime(2030, 5, 7, 7, 0, tzinfo=UTC))]
        changed = AuditRepo(session).entries(action="disposition.changed")
    assert [e.detail["before"]["callback_at"] for e in changed] == [
        "2030-05-06T02:30:00+00:00"]

    again = dispositions.save(db, agent_id, "alice",  # the same form sent twice
                              _form(taken.escalation_id, "callback", "2030-05-07T15:00"),
                              T0 + timedelta(minutes=6))
    assert again.changed and again.callback_due is None
    with db.session() as session:
        assert len(AuditRepo(session).entries(action="disposition.changed")) == 1
        assert session.scalar(select(func.count()).select_from(Callback)) == 2


def test_no_callback_to_a_number_on_the_do_not_call_list(db: Database, agent_id: int) -> None:
    taken = take_call(db, agent_id, T0 + timedelta(seconds=10))
    with db.session() as session:
        DncRepo(session).add("13812345678", "do_not_call", "别再打了", "customer",
                             added_by="test")
    with pytest.raises(desk.DeskRefused, match="do-not-call"):
        dispositions.save(db, agent_id, "alice",
                          _form(taken.escalation_id, "callback", "2030-05-06T10:30"),
                          T0 + timedelta(seconds=90))
    with db.session() as session:  # nothing of it was kept
        assert session.scalar(select(Callback)) is None
        assert desk.presence_of(session, agent_id).state == "wrap_up"
        assert AuditRepo(session).entries(action="disposition.recorded") == []


def test_the_watcher_expires_only_what_is_due(db: Database, agent_id: int) -> None:
    take_call(db, agent_id, T0 + timedelta(seconds=10))  # wrap-up from +75 s, 60 s cap
    assert desk_state.expire_due(db, T0 + timedelta(seconds=134)) == []
    assert desk_state.expire_due(db, T0 + timedelta(seconds=135)) == [agent_id]
    assert desk_state.expire_due(db, T0 + timedelta(seconds=136)) == []
    with db.session() as session:
        [message] = desk_state.every_presence(session)
    # log in, offer, accept, call ended, wrap-up expired
    assert (message["username"], message["state"], message["seq"]) == ("alice", "available",
                                                                       5)
