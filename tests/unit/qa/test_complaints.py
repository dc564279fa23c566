"""Complaints (issue 15 item 5): the handling deadlines in working days, the status machine,
the blacklist decision under both campaign settings (immediately, on_decision), one record
per call whoever records it (the bot's complaint flow, the agent's disposition), and
`waihu qa complaints`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from actions import actions as act
from actions import runtime
from bot.cli import main
from bot.qa import complaints
from bot.qa.complaints import ComplaintRefused, decision_effect
from bot.store import AuditRepo, Database, DncRepo
from bot.store.models import Campaign, Complaint, Contact, DncEntry
from tests.unit.campaigns.test_qa import consented_call
from tests.unit.test_actions import Conversation

SH = ZoneInfo("Asia/Shanghai")
FRI_3PM = datetime(2030, 5, 10, 15, 0, tzinfo=SH)  # a Friday
AT = datetime(2030, 5, 6, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai


# --- rules ----------------------------------------------------------------------------------

def test_deadlines_count_working_days_in_the_campaign_zone() -> None:
    contact_by, resolve_by = complaints.deadlines(FRI_3PM, SH)
    assert contact_by == datetime(2030, 5, 13, 15, 0, tzinfo=SH)  # Monday, same hour
    assert resolve_by == datetime(2030, 5, 17, 15, 0, tzinfo=SH)  # five working days on
    saturday = datetime(2030, 5, 11, 10, 0, tzinfo=SH)
    assert complaints.add_working_days(saturday, 1, SH) == datetime(2030, 5, 13, 10, 0,
                                                                     tzinfo=SH)
    # Friday 23:30 in Shanghai is still Friday 15:30 UTC: counted from the local day
    late = datetime(2030, 5, 10, 15, 30, tzinfo=UTC)
    assert complaints.add_working_days(late, 1, SH) == datetime(2030, 5, 13, 15, 30,
                                                                 tzinfo=UTC)
    assert (complaints.CONTACT_WITHIN_WORKING_DAYS,
            complaints.RESOLVE_WITHIN_WORKING_DAYS) == (1, 5)


def test_overdue_step() -> None:
    contact_by, resolve_by = complaints.deadlines(FRI_3PM, SH)
    late = contact_by + timedelta(minutes=1)
    assert complaints.overdue_step("new", contact_by, resolve_by, contact_by) is None
    assert complaints.overdue_step("new", contact_by, resolve_by, late) == "contact"
    assert complaints.overdue_step("contacted", contact_by, resolve_by, late) is None
    after = resolve_by + timedelta(seconds=1)
    assert complaints.overdue_step("contacted", contact_by, resolve_by, after) == "resolve"
    assert complaints.overdue_step("new", contact_by, resolve_by, after) == "contact"
    assert complaints.overdue_step("resolved", contact_by, resolve_by, after) is None


def test_status_machine() -> None:
    complaints.check_step("new", "contacted", None, None)
    complaints.check_step("contacted", "resolved", "已为您取消并致歉", "people")
    for status, to in (("new", "resolved"), ("contacted", "contacted"), ("resolved", "new"),
                       ("resolved", "contacted"), ("new", "new")):
        with pytest.raises(ComplaintRefused):
            complaints.check_step(status, to, "answer", "value")
    with pytest.raises(ComplaintRefused, match="answer"):
        complaints.check_step("contacted", "resolved", "  ", "value")
    with pytest.raises(ComplaintRefused, match="root cause"):
        complaints.check_step("contacted", "resolved", "answer", "weather")


def test_decision_effects() -> None:
    assert decision_effect("serious", listed=False, only_ours=False) == "blacklisted"
    assert decision_effect("serious", listed=True, only_ours=True) == "already_listed"
    assert decision_effect("not_serious", listed=False, only_ours=False) == "none"
    assert decision_effect("not_serious", listed=True, only_ours=True) == "lifted"
    assert decision_effect("not_serious", listed=True, only_ours=False) == "kept"
    with pytest.raises(ComplaintRefused):
        decision_effect("maybe", listed=True, only_ours=True)


# --- in the database -----------------------------------------------------------------------

def set_policy(db: Database, campaign_id: int, policy: str) -> None:
    with db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        campaign.definition = {**campaign.definition, "complaints": {"blacklist": policy}}


def bot_complaint(db: Database, policy: str | None = None, said: str = "我要投诉你们"
                  ) -> tuple[int, str]:
    """(complaint id, call id) of a complaint the bot heard on a call."""
    from bot.store.models import Call
    _, call_id = consented_call(db)
    with db.session() as session:
        call = session.get(Call, call_id)
        assert call is not None
        if policy is not None:
            set_policy(db, call.campaign_id, policy)
    with db.session() as session:
        call = session.get(Call, call_id)
        assert call is not None
        contact = session.get(Contact, call.contact_id)
        assert contact is not None
        recorded = complaints.record_call_complaint(session, call, contact, said, AT)
        return recorded.complaint.id, call_id


def blacklist(db: Database) -> list[DncEntry]:
    with db.session() as session:
        return [e for e in session.scalars(select(DncEntry).order_by(DncEntry.id))
                if e.kind == "blacklist"]


def complaint(db: Database, complaint_id: int) -> Complaint:
    with db.session() as session:
        found = session.get(Complaint, complaint_id)
        assert found is not None
        session.expunge(found)
        return found


def test_by_default_a_complaint_blacklists_at_once_and_not_serious_lifts_it(
        db: Database) -> None:
    complaint_id, call_id = bot_complaint(db)
    [entry] = blacklist(db)
    assert (entry.source, entry.added_by, entry.call_id, entry.removed_at) == (
        "complaint", "bot", call_id, None)
    recorded = complaint(db, complaint_id)
    assert (recorded.status, recorded.blacklist_policy, recorded.blacklist_entry_id,
            recorded.words, recorded.source) == ("new", "immediately", entry.id,
                                                  "我要投诉你们", "call")
    assert recorded.contact_due_at == AT + timedelta(days=1)  # Monday -> Tuesday
    with db.session() as session:
        assert complaints.decide(session, complaint_id, "not_serious", "lead", AT) == "lifted"
    [lifted] = blacklist(db)
    assert (lifted.removed_by, lifted.removed_at) == ("lead", AT)
    assert "not serious" in (lifted.remove_reason or "")
    decided = complaint(db, complaint_id)
    assert (decided.decision, decided.decided_by, decided.decided_at) == (
        "not_serious", "lead", AT)
    with db.session() as session:
        [audit] = AuditRepo(session).entries(action="complaint.decided")
        assert (audit.actor, audit.detail["effect"], audit.detail["phone"]) == (
            "user:lead", "lifted", "138****5678")
        # changing one's mind: serious blacklists again through the DNC owner
        assert complaints.decide(session, complaint_id, "serious", "lead", AT) == "blacklisted"
        assert DncRepo(session).is_blocked("13812345678")


def test_on_decision_waits_for_the_supervisor(db: Database) -> None:
    first, _ = bot_complaint(db, "on_decision")
    assert blacklist(db) == []
    assert complaint(db, first).blacklist_policy == "on_decision"
    with db.session() as session:
        assert complaints.decide(session, first, "not_serious", "lead", AT) == "none"
        assert not DncRepo(session).is_blocked("13812345678")
    assert (complaint(db, first).decision, complaint(db, first).decided_by) == (
        "not_serious", "lead")
    with db.session() as session:
        assert complaints.decide(session, first, "serious", "boss", AT) == "blacklisted"
    [entry] = blacklist(db)
    assert (entry.source, entry.added_by, entry.removed_at) == ("complaint", "boss", None)
    assert complaint(db, first).blacklist_entry_id == entry.id


def test_not_serious_keeps_a_blacklist_entry_with_another_source(db: Database) -> None:
    _, call_id = consented_call(db)
    with db.session() as session:
        DncRepo(session).add("13812345678", "blacklist", "fraud", "operator", "ops")
    complaint_id, _ = bot_complaint_on(db, call_id)
    with db.session() as session:
        assert complaints.decide(session, complaint_id, "not_serious", "lead", AT) == "kept"
    [entry] = blacklist(db)
    assert (entry.source, entry.removed_at) == ("operator", None)


def bot_complaint_on(db: Database, call_id: str) -> tuple[int, str]:
    from bot.store.models import Call
    with db.session() as session:
        call = session.get(Call, call_id)
        assert call is not None
        contact = session.get(Contact, call.contact_id)
        assert contact is not None
        recorded = complaints.record_call_complaint(session, call, contact, "", AT)
        return recorded.complaint.id, call_id


def test_one_record_per_call_and_the_handling_steps(db: Database) -> None:
    complaint_id, call_id = bot_complaint(db)
    assert bot_complaint_on(db, call_id)[0] == complaint_id  # recorded again: the same one
    with db.session() as session:
        assert len(session.scalars(select(Complaint)).all()) == 1
        with pytest.raises(ComplaintRefused):
            complaints.advance(session, complaint_id, "resolved", "lead", AT,
                               answer="x", root_cause="value")
    later = AT + timedelta(days=2)  # past the contact deadline
    with db.session() as session:
        complaints.advance(session, complaint_id, "contacted", "lead", later, answer="已致歉")
        complaints.advance(session, complaint_id, "resolved", "boss", later,
                           root_cause="system")
        complaints.set_severity(session, complaint_id, "high", "boss", later)
    done = complaint(db, complaint_id)
    assert (done.status, done.contacted_by, done.resolved_by, done.answer, done.root_cause,
            done.severity) == ("resolved", "lead", "boss", "已致歉", "system", "high")
    with db.session() as session:
        actions = [e.action for e in AuditRepo(session).entries(
            subject=f"complaint:{complaint_id}")]
        assert actions == ["complaint.recorded", "complaint.contacted", "complaint.resolved",
                           "complaint.severity"]
        [contacted] = AuditRepo(session).entries(action="complaint.contacted")
        assert contacted.detail["late"] == "contact"


def test_the_words_come_from_the_transcript(db: Database) -> None:
    from bot.store.models import Call, TranscriptTurn
    _, call_id = consented_call(db)
    with db.session() as session:
        for seq, (speaker, text) in enumerate((("customer", "你们天天打电话我要投诉"),
                                               ("bot", "您是要投诉吗？"),
                                               ("customer", "是的")), 1):
            session.add(TranscriptTurn(call_id=call_id, seq=seq, speaker=speaker, text=text))
    complaint_id, _ = bot_complaint_on(db, call_id)
    assert complaint(db, complaint_id).words == "你们天天打电话我要投诉"
    with db.session() as session:
        call = session.get(Call, call_id)
        assert call is not None
        assert complaints.complaint_words(session, "no-turns", "算了") == "算了"


# --- the hooks: the bot's complaint flow and the agent's disposition ------------------------

@pytest.fixture
def actions_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """The database the actions open (actions.runtime), as in tests/unit/test_actions.py."""
    monkeypatch.setenv("WAIHU_DATABASE_URL", f"sqlite:///{tmp_path / 'actions.db'}")
    runtime.database.cache_clear()
    database = runtime.database()
    database.upgrade()
    yield database
    database.dispose()
    runtime.database.cache_clear()


@pytest.mark.parametrize("policy", ["immediately", "on_decision"])
def test_the_bot_s_complaint_is_recorded(actions_db: Database, policy: str) -> None:
    conv = Conversation(actions_db, "marketing")
    set_policy(actions_db, conv.campaign_id, policy)
    conv.start()
    conv.run(act.ActionEscalate(), "complain", "我要投诉")
    assert conv.call().outcome == "complaint"
    with actions_db.session() as session:
        [made] = session.scalars(select(Complaint)).all()
        assert (made.call_id, made.source, made.words, made.created_by) == (
            conv.call_id, "call", "我要投诉", "bot")
        assert DncRepo(session).is_blocked("13812345678") is (policy == "immediately")


def test_cli_lists_complaints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    db = Database(url)
    db.upgrade()
    complaint_id, _ = bot_complaint(db)
    assert main(["--database", url, "qa", "complaints", "--status", "new", "--json"]) == 0
    rows: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["phone"], r["status"]) for r in rows] == [
        (complaint_id, "138****5678", "new")]
    assert main(["--database", url, "qa", "complaints", "--status", "resolved",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
