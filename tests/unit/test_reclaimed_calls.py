"""Reclaimed calls stay dead: once another gateway has taken an attempt's lease back, the
old gateway's session (still somehow alive) can record no outcome, flow state, intent,
transcript turn, end or consent.  On SQLite and PostgreSQL (the `db` fixture)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot import callrecord, events
from bot.campaigns.dialer import Dialer
from bot.events import InProcessBus
from bot.store import CallRepo, Database
from bot.store.models import Call, Consent
from bot.transcript import TranscriptSink
from tests.unit.campaigns.test_dialer import NOW, add_campaign, add_contacts, phones
from tests.unit.test_actions import Conversation
from tests.unit.test_actions import db as actions_db  # noqa: F401  (the fixture, by name)


def _answered_and_reclaimed(db: Database) -> str:
    """A call the old gateway answered and started, then lost to a reclaim."""
    campaign_id = add_campaign(db)
    add_contacts(db, campaign_id, phones(1))
    [job] = Dialer(db, "gw-old", lease_s=6).claim(NOW, capacity=1)
    with db.session() as session:
        callrecord.record_dial_result(session, job.call_id, "answered", NOW)
        call = session.get(Call, job.call_id)
        assert call is not None
        callrecord.start_flow(session, call, {"stage": "pitch"}, stage="pitch",
                              clock_offset_s=0.0)
        assert not callrecord.lease_taken_back(session, job.call_id)
    assert Dialer(db, "gw-new", lease_s=6).reclaim_expired(NOW + timedelta(seconds=7)) == 1
    return job.call_id


def _snapshot(db: Database, call_id: str) -> tuple[object, ...]:
    with db.session() as session:
        call = session.get(Call, call_id)
        assert call is not None
        turns = [(t.speaker, t.text, t.intent) for t in CallRepo(session).turns(call_id)]
        return (call.outcome, call.stage, call.flow_state, call.ended_at, call.summary,
                call.verified, tuple(turns))


def test_the_old_sessions_writes_change_nothing(db: Database,
                                                caplog: pytest.LogCaptureFixture) -> None:
    call_id = _answered_and_reclaimed(db)
    before = _snapshot(db, call_id)
    assert before[0] == "failed"  # the reclaim's verdict: a system failure
    later = NOW + timedelta(seconds=30)
    with db.session() as session:
        assert callrecord.lease_taken_back(session, call_id)
        call = session.get(Call, call_id)
        assert call is not None
        callrecord.save_flow(session, call, {"stage": "ended"}, stage="ended", verified=True,
                             pitched=True, summary={"objections": {"price": 1}})
        callrecord.record_outcome(session, call_id, "consented", confirmation_result="yes")
        callrecord.note_intent(session, call_id, "agree", 0.99)
        callrecord.close(session, call_id, ended_at=later, ended_by="caller")
        callrecord.close(session, call_id, ended_at=later, ended_by="bot",
                         recording_path="/rec/old.wav", recording_sha256="b" * 64)
    assert _snapshot(db, call_id) == before
    with db.session() as session:
        call = session.get(Call, call_id)
        assert call is not None  # the audio is evidence: still linked
        assert (call.recording_path, call.recording_sha256) == ("/rec/old.wav", "b" * 64)
    refused = [r.getMessage() for r in caplog.records if "call.write_refused" in r.getMessage()]
    assert len(refused) == 5 and all(call_id in line for line in refused)


async def test_the_old_sessions_transcript_turns_are_refused(db: Database) -> None:
    call_id = _answered_and_reclaimed(db)
    bus = InProcessBus()
    sink = TranscriptSink(db, call_id).attach(bus)
    bus.publish(events.call_event(events.TURN_CUSTOMER, call_id, NOW, 1000, text="好的我同意",
                                  input_mode="speech", asr_confidence=0.9))
    await asyncio.wait_for(sink.close(), 10)
    assert sink.failures == 0
    with db.session() as session:
        assert CallRepo(session).turns(call_id) == []


def test_a_live_attempt_still_takes_its_writes(db: Database) -> None:
    campaign_id = add_campaign(db)
    add_contacts(db, campaign_id, phones(1))
    [job] = Dialer(db, "gw", lease_s=6).claim(NOW, capacity=1)
    with db.session() as session:
        callrecord.record_dial_result(session, job.call_id, "answered", NOW)
        callrecord.record_outcome(session, job.call_id, "declined", "not_needed")
    with db.session() as session:
        call = session.get(Call, job.call_id)
        assert call is not None and call.outcome == "declined"


def test_a_consent_confirmed_after_the_reclaim_is_not_recorded(
        actions_db: Database) -> None:  # noqa: F811
    """The actions ask the same owner (`callrecord.lease_taken_back`)."""
    conv = Conversation(actions_db, "marketing")
    conv.start()
    conv.say("affirm", "是我")
    conv.say("affirm", "可以")
    conv.say("agree", "好的我同意")
    assert conv.slots["question"] == "readback"
    with actions_db.session() as session:  # the old gateway held it under a lease …
        attempt = CallRepo(session).get_attempt(conv.call_id)
        assert attempt is not None
        attempt.gateway, attempt.lease_expires_at = "gw-old", NOW
    # … and stopped renewing: another gateway takes it back.
    assert Dialer(actions_db, "gw-new").reclaim_expired(NOW + timedelta(seconds=1)) == 1
    conv.say("agree", "确认", metadata={"input_mode": "speech", "asr_confidence": 0.93})
    with actions_db.session() as session:
        assert session.scalars(select(Consent)).all() == []
    assert conv.call().outcome == "failed"
