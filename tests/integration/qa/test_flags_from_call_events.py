"""The automatic review flags from a call's real events: the voice stages (speaker, dialogue
turn) publish on the bus, the transcript writer stores what they publish, and the view of
the stored call raises the flags (not only on constructed `CallView`s)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from bot.channel import BotReply, BotSegment
from bot.events import InProcessBus
from bot.qa.callview import call_view
from bot.qa.flags import Flag, flags
from bot.store import CallRepo, CampaignRepo, ConsentLedger, ContactRepo, Database
from bot.store.models import TranscriptTurn
from bot.transcript import TranscriptSink
from tests.unit.voice.pipeline_helpers import attach, tone
from voice.asr.base import Transcript
from voice.call.events import CallerInput, Digit
from voice.call.speaker import Speaker
from voice.call.timeline import Timeline
from voice.call.turn import DialogueTurn
from voice.telephony.base import DialRequest
from voice.telephony.fake import FakeLeg, FakeTelephony, FarEnd

ANSWERED = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Shanghai
DEFINITION = {
    "name": "ringtone", "type": "marketing", "company": "中国移动", "hotline": "10086",
    "timezone": "Asia/Shanghai",
    "script": {"product": "彩铃", "price": "每月5元", "cancel_method": "发短信TD",
               "usage": "来电时播放", "features": "个性彩铃"}}
PRICE = BotSegment("彩铃的资费是每月5元。", disclosure=("price",))
CANCEL = BotSegment("如需取消或咨询，可以发短信TD。", disclosure=("cancel",))


class ShortTones:
    async def speech(self, text: str) -> bytes:
        return tone(len(text) * 20, 600)


class Caller:
    speaking = False


class NoDialogue:
    async def send(self, sender: str, message: str,
                   metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        raise AssertionError("not asked here")


@pytest.fixture
async def leg() -> AsyncIterator[FakeLeg]:
    telephony = FakeTelephony()
    await telephony.start()
    telephony.prepare(FarEnd())
    leg = await telephony.dial(DialRequest("sip:13800000000@trunk", "c1"))
    assert (await leg.wait_answer(2)).result == "answered"
    yield leg
    await telephony.close()


def answered_call(db: Database) -> tuple[str, int, int]:
    with db.session() as session:
        campaign = CampaignRepo(session).add("ringtone", "marketing", DEFINITION, "a" * 64)
        contact = ContactRepo(session).add(campaign.id, "13900000001", name="张先生")
        calls = CallRepo(session)
        attempt = calls.start_attempt(campaign.id, contact.id, at=ANSWERED)
        calls.set_dial_result(attempt.call_id, "answered", at=ANSWERED)
        call = calls.open_call(attempt.call_id)
        call.started_at = ANSWERED
        return call.id, campaign.id, contact.id


async def test_flags_of_a_call_from_its_events(db: Database, leg: FakeLeg) -> None:
    call_id, campaign_id, contact_id = answered_call(db)
    bus = InProcessBus()
    sink = TranscriptSink(db, call_id).attach(bus)
    timeline = Timeline(call_id, bus, call_start=ANSWERED)
    caller = Caller()
    speaker = Speaker(leg, ShortTones(), timeline, caller_speaking=lambda: caller.speaking)
    attach(speaker)
    turn = DialogueTurn(NoDialogue(), timeline, closed=leg.closed, flush=sink.flush)

    def heard(text: str, *, snapped: bool) -> None:
        at = int(timeline.now_ms())
        turn.message(CallerInput("speech", text, Transcript(text, 0.92, "fake",
                                                            snapped=snapped), at, at + 500))

    await speaker.speak(BotReply([BotSegment("请问您是张先生本人吗？")]))
    heard("是的", snapped=False)
    # Cut off by a key before its disclosures: the gateway reports them never said.
    speaking = asyncio.create_task(speaker.speak(BotReply(
        [BotSegment("接下来由我为您简单介绍一下我们的业务"), PRICE, CANCEL])))
    await asyncio.sleep(0.2)
    await speaker.process(Digit("1"))
    assert await asyncio.wait_for(speaking, 3) == ["price", "cancel"]
    caller.speaking = True  # over the price and its repeat
    assert await asyncio.wait_for(speaker.speak(BotReply([PRICE])), 5) == ["price"]
    caller.speaking = False
    await asyncio.wait_for(speaker.speak(BotReply([CANCEL])), 5)
    heard("我同意", snapped=True)  # heard clearly (0.92), but snapped to a hint phrase
    await sink.flush()

    with db.session() as session:
        consent_turn = session.scalars(select(TranscriptTurn).where(
            TranscriptTurn.call_id == call_id, TranscriptTurn.text == "我同意")).one()
        assert consent_turn.asr_snapped is True
        ConsentLedger(session).append(
            call_id=call_id, contact_id=contact_id, campaign_id=campaign_id, product="彩铃",
            script_hash="a" * 64, disclosures=["cancel", "features", "price", "usage"],
            utterance="我同意", input_mode="speech", asr_confidence=0.92,
            created_at=consent_turn.started_at, turn_seq=consent_turn.seq,
            turn_text="我同意", audio_start_ms=None, audio_end_ms=None)
    await sink.close()
    assert sink.failures == 0

    with db.session() as session:
        view = call_view(session, call_id)
    found = flags(view)
    by_kind: dict[str, list[Flag]] = {}
    for flag in found:
        by_kind.setdefault(flag.kind, []).append(flag)
    consent_ms = view.consents[0].start_ms
    assert [(f.at_ms, f.detail) for f in by_kind["consent_unclear"]] == [
        (consent_ms, "snapped to a hint phrase")]
    assert sorted(f.detail for f in by_kind["disclosure_cut_short"]) == [
        "never said after a barge-in: price,cancel", "talked over twice: price"]
    # the price was played twice, but talked over both times: never heard in full; the
    # cancel notice said to its end later counts
    missing = [f.detail for f in by_kind["disclosure_missing"]
               if f.detail.startswith("not said")]
    assert missing == ["not said: features,price,usage"]
    snapped = [t.asr_snapped for t in view.turns if t.speaker == "customer"]
    assert snapped == [False, True]
