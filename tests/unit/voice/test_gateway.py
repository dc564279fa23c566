"""Gateway.place_call on the real-time fake telephony: carrier announcements as dial results,
whether they come as early media or after a 200 OK, and what the dialer makes of them."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.events import CallEvent, InProcessBus
from bot.store import CallRepo, Database
from bot.store.models import Call, Contact, TranscriptTurn
from tests.unit.campaigns.test_dialer import NOW, add_campaign, add_contacts
from tests.unit.voice.test_session import (
    ScriptedAsr,
    ScriptedRasa,
    ToneSpeech,
    listen,
    said,
    tone,
)
from voice.asr.base import AsrWorker
from voice.gateway import CallReport, Gateway, GatewayConfig
from voice.session import SessionConfig
from voice.telephony.fake import FakeTelephony, FarEnd

BUSY = "您拨打的电话正在通话中，请稍后再拨"


async def place(db: Database, far: FarEnd, asr: ScriptedAsr, tmp_path: Path,
                rasa: ScriptedRasa | None = None, bus: InProcessBus | None = None
                ) -> tuple[CallReport, int]:
    """One contact of a running marketing campaign, dialled once through the gateway."""
    campaign_id = add_campaign(db, name="gw")
    contact_id, = add_contacts(db, campaign_id, ["13800001234"])
    telephony = FakeTelephony()
    await telephony.start()
    telephony.prepare(far)
    gateway = Gateway(db, telephony, AsrWorker(asr), ToneSpeech(),
                      rasa or ScriptedRasa([{"text": "您好"}, listen(timeout_s=5)]),
                      GatewayConfig(gateway_id="gw-test", ring_timeout_s=5,
                                    session=SessionConfig(recordings_dir=tmp_path)),
                      clock=lambda: NOW, events=bus)
    job, = gateway.dialer.claim(NOW, 1)
    report = await asyncio.wait_for(gateway.place_call(job, NOW), 20)
    return report, contact_id


def contact_of(db: Database, contact_id: int) -> Contact:
    with db.session() as s:
        contact = s.get(Contact, contact_id)
        assert contact is not None
        return contact


async def test_busy_announcement_after_the_answer_is_a_busy_dial_retried_in_30_min(
        sqlite_db: Database, tmp_path: Path) -> None:
    far = FarEnd(answer_after_ms=100)
    far.say(tone(1500))  # the exchange answers and plays its recording
    rasa = ScriptedRasa([{"text": "您好"}, listen(timeout_s=5)])
    report, contact_id = await place(sqlite_db, far, ScriptedAsr(said(BUSY)), tmp_path, rasa)

    assert (report.dial_result, report.sip_status, report.announcement) == ("busy", 200, BUSY)
    assert report.session is not None and report.session.ended_by == "announcement"
    assert report.as_json()["dial_result"] == "busy"
    assert [m for m, _ in rasa.sent] == ["/call_started"]
    with sqlite_db.session() as s:
        attempt = CallRepo(s).get_attempt(report.call_id)
        assert attempt is not None
        assert (attempt.dial_result, attempt.answered_at) == ("busy", None)
        assert attempt.ended_at is not None and attempt.completed_at is not None
        # No conversation took place: no call, no transcript (reports count no connection).
        assert s.get(Call, report.call_id) is None
        assert not s.scalar(select(func.count()).select_from(TranscriptTurn)
                            .where(TranscriptTurn.call_id == report.call_id))
    contact = contact_of(sqlite_db, contact_id)
    assert (contact.status, contact.last_result) == ("pending", "busy")
    assert contact.next_attempt_at is not None
    due = contact.next_attempt_at.replace(tzinfo=NOW.tzinfo) if \
        contact.next_attempt_at.tzinfo is None else contact.next_attempt_at
    assert timedelta(minutes=30) <= due - NOW <= timedelta(minutes=31)


async def test_empty_number_announcement_after_the_answer_is_never_called_again(
        sqlite_db: Database, tmp_path: Path) -> None:
    far = FarEnd(answer_after_ms=100)
    far.say(tone(1500))
    report, contact_id = await place(sqlite_db, far,
                                     ScriptedAsr(said("您拨打的号码是空号，请查证后再拨")),
                                     tmp_path)
    assert report.dial_result == "invalid_number"
    contact = contact_of(sqlite_db, contact_id)
    assert (contact.status, contact.next_attempt_at, contact.last_result) == (
        "failed", None, "invalid_number")


async def test_a_person_answering_stays_an_answered_call(sqlite_db: Database,
                                                         tmp_path: Path) -> None:
    far = FarEnd(answer_after_ms=100)
    far.say(tone(500))
    rasa = ScriptedRasa([{"text": "您好"}, listen(timeout_s=5)], [{"text": "再见"},
                                                                  {"custom": {"hangup": True}}])
    report, _ = await place(sqlite_db, far, ScriptedAsr(said("我手机快关机了")), tmp_path, rasa)
    assert report.dial_result == "answered" and report.announcement is None
    assert [m for m, _ in rasa.sent] == ["/call_started", "我手机快关机了"]
    with sqlite_db.session() as s:
        assert s.get(Call, report.call_id) is not None


async def test_busy_announcement_as_early_media_is_busy(sqlite_db: Database,
                                                        tmp_path: Path) -> None:
    far = FarEnd(answer_after_ms=100, fail=480, reason="Temporarily Unavailable",
                 early_media=tone(1500))
    report, contact_id = await place(sqlite_db, far, ScriptedAsr(said(BUSY)), tmp_path)
    assert (report.dial_result, report.sip_status, report.announcement) == ("busy", 480, BUSY)
    assert report.session is None
    assert contact_of(sqlite_db, contact_id).last_result == "busy"


async def test_every_call_is_a_stream_of_events(sqlite_db: Database, tmp_path: Path) -> None:
    """Dialled, answered, the turns with the classifier's verdict, ended with the outcome;
    all in order, with the call id and offsets on the call's timeline."""
    bus = InProcessBus()
    seen: list[CallEvent] = []
    bus.subscribe(seen.append)
    far = FarEnd(answer_after_ms=100)
    far.say(tone(500))
    rasa = ScriptedRasa([{"text": "您好"}, listen(timeout_s=5)],
                        [{"custom": {"classified": {"intent": "affirm", "confidence": 0.9}}},
                         {"text": "再见"}, {"custom": {"hangup": True}}])
    report, _ = await place(sqlite_db, far, ScriptedAsr(said("是我")), tmp_path, rasa, bus)
    names = [e.name for e in seen]
    # the campaign's greeting at the answer, Rasa's 您好, the customer, the goodbye
    assert names == ["call.dialled", "call.answered", "turn.bot", "turn.bot", "turn.customer",
                     "turn.classified", "turn.bot", "call.ended"], names
    assert {e.call_id for e in seen} == {report.call_id}
    customer = seen[4]
    assert customer.data["text"] == "是我" and customer.data["input_mode"] == "speech"
    assert seen[5].data == {"intent": "affirm", "confidence": 0.9}
    offsets = [e.offset_ms for e in seen[4:7]]
    assert offsets == sorted(offsets)
    ended = seen[-1].data
    assert (ended["dial_result"], ended["ended_by"]) == ("answered", "bot")
    assert "13800001234" not in str(seen[0].data) and seen[0].data["phone"].endswith("1234")


async def test_a_trunk_password_variable_that_is_not_set_refuses_the_dial(
        sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WAIHU_TEST_TRUNK_PASSWORD", raising=False)
    campaign_id = add_campaign(sqlite_db, name="gw-auth", trunk={
        "uri": "sip:{number}@127.0.0.1:5999", "username": "waihu",
        "password_env": "WAIHU_TEST_TRUNK_PASSWORD"})
    add_contacts(sqlite_db, campaign_id, ["13800001234"])
    telephony = FakeTelephony()
    await telephony.start()
    gateway = Gateway(sqlite_db, telephony, AsrWorker(ScriptedAsr()), ToneSpeech(),
                      ScriptedRasa([]), GatewayConfig(gateway_id="gw-test"),
                      clock=lambda: NOW)
    job, = gateway.dialer.claim(NOW, 1)
    report = await asyncio.wait_for(gateway.place_call(job, NOW), 20)
    assert report.dial_result == "failed"
    assert report.error is not None and "WAIHU_TEST_TRUNK_PASSWORD is not set" in report.error
    assert telephony.legs == []
