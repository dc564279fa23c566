"""Repositories on real databases: constraints, numbering, validation, upserts, DNC."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot import keys, privacy
from bot.store import (
    OUTCOMES,
    Call,
    CallbackRepo,
    CallRepo,
    CampaignRepo,
    Contact,
    ContactRepo,
    Database,
    DncRepo,
    EscalationRepo,
    NotFound,
    SurveyAnswer,
    SurveyRepo,
)


def test_campaign_add_list_and_upsert(db: Database) -> None:
    with db.session() as session:
        repo = CampaignRepo(session)
        first = repo.add("notice", "notification", {"deadline": "2030-01-01"}, "1" * 64)
        with pytest.raises(ValueError, match="campaign type"):
            repo.add("bad", "spam", {}, "1" * 64)
    with db.session() as session:
        repo = CampaignRepo(session)
        updated = repo.upsert_definition(
            "notice", "notification", {"deadline": "2030-02-01"}, "2" * 64
        )
        created = repo.upsert_definition("survey", "survey", {"questions": ["q1"]}, "3" * 64)
        assert updated.id == first.id and created.id != first.id
        assert updated.updated_at >= first.updated_at
    with db.session() as session:
        repo = CampaignRepo(session)
        assert [c.name for c in repo.list()] == ["notice", "survey"]
        notice = repo.by_name("notice")
        assert notice is not None
        assert notice.definition == {"deadline": "2030-02-01"} and notice.wording_hash == "2" * 64
        assert repo.by_name("nope") is None


def test_contact_phone_is_unique_per_campaign(db: Database) -> None:
    with db.session() as session:
        campaigns = CampaignRepo(session)
        a = campaigns.add("a", "survey", {}, "0" * 64)
        b = campaigns.add("b", "survey", {}, "0" * 64)
        contacts = ContactRepo(session)
        contacts.add(a.id, "13812345678", fields={"course": "数学"})
        contacts.add(b.id, "13812345678")  # same number, other campaign: fine
        ids = (a.id, b.id)
    with pytest.raises(IntegrityError), db.session() as session:
        ContactRepo(session).add(ids[0], "13812345678")
    with db.session() as session:
        contacts = ContactRepo(session)
        assert len(contacts.list(ids[0])) == 1 and len(contacts.list(ids[1])) == 1
        contact = contacts.by_phone(ids[0], "13812345678")
        assert contact is not None and contact.fields == {"course": "数学"}
        assert contact.status == "pending" and contact.attempts == 0


def test_contact_id_digits_are_only_stored_hashed(db: Database) -> None:
    with db.session() as session:
        campaign = CampaignRepo(session).add("a", "marketing", {}, "0" * 64)
        contacts = ContactRepo(session)
        with_id = contacts.add(campaign.id, "13800000001", id_last4="123x")
        without = contacts.add(campaign.id, "13800000002")
        assert with_id.id_last4_hash and with_id.id_salt
        # a 64-hex-digit hash keyed by the row's salt; "123" may occur in random hex, so check
        # that the value is the keyed hash, not the digits or an unkeyed digest of them
        assert re.fullmatch(r"[0-9a-f]{64}", with_id.id_last4_hash)
        ring = keys.load(keys.ID_HASH)
        assert with_id.id_hash_key == ring.current.id and without.id_hash_key is None
        assert with_id.id_last4_hash == privacy.keyed_hash("123X", with_id.id_salt, ring.current)
        assert with_id.id_last4_hash != hashlib.sha256(b"123X").hexdigest()
        assert contacts.check_id_last4(with_id, "123X") is True
        assert contacts.check_id_last4(with_id, "1234") is False
        assert contacts.check_id_last4(without, "1234") is None
        with pytest.raises(ValueError, match="digits"):
            contacts.add(campaign.id, "+86 138 0000 0003")


def test_attempts_are_numbered_per_contact(db: Database) -> None:
    with db.session() as session:
        campaign = CampaignRepo(session).add("a", "notification", {}, "0" * 64)
        contacts = ContactRepo(session)
        one, two = (
            contacts.add(campaign.id, "13800000001"),
            contacts.add(campaign.id, "13800000002"),
        )
        calls = CallRepo(session)
        numbers = [calls.start_attempt(campaign.id, one.id).attempt_no for _ in range(3)]
        other = calls.start_attempt(campaign.id, two.id, call_id="fixed-id", gateway="gw1")
        ids = (one.id, two.id)
    assert numbers == [1, 2, 3]
    assert other.attempt_no == 1 and other.call_id == "fixed-id" and other.gateway == "gw1"
    with db.session() as session:
        first, second = session.get(Contact, ids[0]), session.get(Contact, ids[1])
        assert first is not None and first.attempts == 3
        assert second is not None and second.attempts == 1
        with pytest.raises(NotFound):
            CallRepo(session).start_attempt(campaign.id, 4242)
        with pytest.raises(ValueError, match="belongs to campaign"):
            CallRepo(session).start_attempt(campaign.id + 1, ids[0])


def test_dial_results_and_open_call(db: Database) -> None:
    with db.session() as session:
        campaign = CampaignRepo(session).add("a", "notification", {}, "0" * 64)
        contact = ContactRepo(session).add(campaign.id, "13800000001")
        calls = CallRepo(session)
        busy = calls.start_attempt(campaign.id, contact.id)
        uuid.UUID(busy.call_id)  # a real uuid4 string
        calls.set_dial_result(busy.call_id, "busy")
        assert busy.dial_result == "busy" and busy.ended_at is not None
        with pytest.raises(ValueError, match="dial result"):
            calls.set_dial_result(busy.call_id, "engaged")
        answered = calls.start_attempt(campaign.id, contact.id)
        calls.set_dial_result(answered.call_id, "answered")
        assert answered.answered_at is not None and answered.ended_at is None
        call = calls.open_call(answered.call_id)
        assert calls.open_call(answered.call_id) is call  # idempotent
        assert (call.campaign_id, call.contact_id, call.attempt_id) == (
            campaign.id,
            contact.id,
            answered.id,
        )
        assert call.started_at == answered.answered_at
        assert call.summary == {} and call.verified is False
        with pytest.raises(NotFound):
            calls.open_call("no-such-call")


def test_record_outcome_validates_and_sets_flags(db: Database, call: Call) -> None:
    with db.session() as session:
        calls = CallRepo(session)
        with pytest.raises(ValueError, match="outcome"):
            calls.record_outcome(call.id, "sold")
        with pytest.raises(ValueError, match="decline reason"):
            calls.record_outcome(call.id, "declined", decline_reason="rude")
        with pytest.raises(ValueError, match="unknown call field"):
            calls.record_outcome(call.id, "declined", colour="red")  # type: ignore[call-arg]  # the point of the test
        with pytest.raises(ValueError, match="confirmation result"):
            calls.record_outcome(call.id, "notified", confirmation_result="maybe")
        calls.update_call(call.id, stage="pitch", verified=True, recording_path="/r/1.wav")
        finished = calls.record_outcome(
            call.id,
            "declined",
            decline_reason="too_expensive",
            pitched=True,
            script_completed=True,
            summary={"turns": 7},
        )
        assert finished.outcome == "declined"
    with db.session() as session:
        calls = CallRepo(session)
        stored = calls.get_call(call.id)
        assert stored is not None
        assert (stored.outcome, stored.decline_reason, stored.stage) == (
            "declined",
            "too_expensive",
            "pitch",
        )
        assert stored.verified and stored.pitched and stored.script_completed
        assert stored.summary == {"turns": 7} and stored.recording_path == "/r/1.wav"
        assert stored.ended_at is None  # the call record sets it when the call closes
        with pytest.raises(NotFound):
            calls.record_outcome("nope", "notified")
    assert "consented" in OUTCOMES and "failed" in OUTCOMES and len(OUTCOMES) == 14


def test_transcript_turns_are_sequenced(db: Database, call: Call) -> None:
    with db.session() as session:
        calls = CallRepo(session)
        calls.add_turn(call.id, "bot", "您好，请问是张先生吗？")
        calls.add_turn(
            call.id,
            "customer",
            "是的",
            intent="affirm",
            intent_confidence=0.97,
            input_mode="speech",
            asr_confidence=0.88,
        )
        with pytest.raises(ValueError, match="speaker"):
            calls.add_turn(call.id, "robot", "?")  # "agent" is one since 0014
    with db.session() as session:
        CallRepo(session).add_turn(call.id, "customer", "1", input_mode="dtmf")
    with db.session() as session:
        turns = CallRepo(session).turns(call.id)
        assert [(t.seq, t.speaker, t.text) for t in turns] == [
            (1, "bot", "您好，请问是张先生吗？"),
            (2, "customer", "是的"),
            (3, "customer", "1"),
        ]
        assert turns[1].intent == "affirm" and turns[1].asr_confidence == pytest.approx(0.88)


def test_survey_answers_upsert_by_question(db: Database, call: Call) -> None:
    with db.session() as session:
        survey = SurveyRepo(session)
        survey.save_answer(call.id, "teacher", "您对老师满意吗？", score=2)
        survey.save_answer(call.id, "open", "还有什么建议？", answer_text="多布置作业")
        with pytest.raises(ValueError, match="score"):
            survey.save_answer(call.id, "teacher", "您对老师满意吗？", score=6)
    with db.session() as session:
        SurveyRepo(session).save_answer(call.id, "teacher", "您对老师满意吗？", score=4)
    with db.session() as session:
        answers = session.scalars(select(SurveyAnswer).where(SurveyAnswer.call_id == call.id)
                                  .order_by(SurveyAnswer.id)).all()
        assert [(a.question_key, a.score, a.answer_text) for a in answers] == [
            ("teacher", 4, None),
            ("open", None, "多布置作业"),
        ]
        assert answers[0].contact_id == call.contact_id
        assert answers[0].campaign_id == call.campaign_id


def test_dnc_add_is_idempotent_and_blacklist_blocks(db: Database) -> None:
    with db.session() as session:
        dnc = DncRepo(session)
        assert not dnc.is_blocked("13800000001")
        first = dnc.add("13800000001", "do_not_call", "别再打了", "customer", "bot", call_id="c1")
        again = dnc.add("13800000001", "do_not_call", "again", "customer", "bot")
        assert again.id == first.id
        dnc.add("13900000002", "blacklist", "投诉", "complaint", "supervisor")
        with pytest.raises(ValueError, match="DNC kind"):
            dnc.add("13900000003", "maybe", "", "customer", "bot")
    with db.session() as session:
        dnc = DncRepo(session)
        assert dnc.is_blocked("13800000001") and dnc.is_blocked("13900000002")
        assert [e.phone for e in dnc.active()] == ["13800000001", "13900000002"]
        # a blacklist entry on a number that also asked not to be called: both count
        dnc.add("13800000001", "blacklist", "投诉", "complaint", "supervisor")
        assert (
            dnc.remove("13800000001", "operator", "customer asked again", kind="do_not_call") == 1
        )
        assert dnc.is_blocked("13800000001")  # still blacklisted
        assert dnc.remove("13800000001", "operator", "complaint withdrawn") == 1
        assert not dnc.is_blocked("13800000001")
        assert dnc.remove("13800000001", "operator", "nothing left") == 0
    with db.session() as session:
        dnc = DncRepo(session)
        assert [e.phone for e in dnc.active()] == ["13900000002"]
        readded = dnc.add("13800000001", "do_not_call", "别再打了", "customer", "bot")
        assert readded.id != first.id and dnc.is_blocked("13800000001")


def test_callback_schedule_checks_the_kind(db: Database, call: Call) -> None:
    due = datetime(2030, 3, 1, 10, tzinfo=UTC)
    with db.session() as session:
        callbacks = CallbackRepo(session)
        callback = callbacks.schedule(call.campaign_id, call.contact_id, due, "customer_request",
                                      call_id=call.id, requested_text="明天下午")
        assert (callback.status, callback.due_at, callback.requested_text) == (
            "pending", due, "明天下午")
        with pytest.raises(ValueError, match="callback kind"):
            callbacks.schedule(call.campaign_id, call.contact_id, due, "whenever")


def test_escalation_mark_for_call_sets_the_latest_pending(
    db: Database, seeder: Callable[..., Call]
) -> None:
    first = seeder(db, "13800000001")
    second = seeder(db, "13800000002")
    with db.session() as session:
        escalations = EscalationRepo(session)
        older = escalations.add(
            first.id,
            first.campaign_id,
            first.contact_id,
            "request_human",
            {"stage": "pitch", "last_utterance": "转人工"},
        )
        latest = escalations.add(first.id, first.campaign_id, first.contact_id, "complain", {})
        with pytest.raises(ValueError, match="escalation status"):
            escalations.mark_for_call(first.id, "maybe")
        assert escalations.mark_for_call(first.id, "connected") is latest
        assert (older.status, latest.status) == ("pending", "connected")
        assert escalations.mark_for_call(second.id, "failed") is None
