"""The speaker on the in-memory fake leg: barge-in, disclosures, what it reports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot import events
from bot.channel import BotReply, BotSegment
from bot.events import CallEvent, InProcessBus
from tests.unit.voice.pipeline_helpers import attach, tone
from voice.audio.frames import FRAME_MS
from voice.call.events import CallerHungUp, Digit, Interruption, SpeechStarted
from voice.call.speaker import Speaker
from voice.call.timeline import Timeline
from voice.telephony.base import DialRequest
from voice.telephony.fake import FakeLeg, FakeTelephony, FarEnd


class ToneSpeech:
    def __init__(self, ms_per_char: int = 100) -> None:
        self.ms_per_char = ms_per_char

    async def speech(self, text: str) -> bytes:
        return tone(len(text) * self.ms_per_char, 600)


class Caller:
    """Whether the caller is speaking, as the endpointing would say."""

    speaking = False


@pytest.fixture
async def leg() -> AsyncIterator[FakeLeg]:
    telephony = FakeTelephony()
    await telephony.start()
    far = telephony.prepare(FarEnd())
    leg = await telephony.dial(DialRequest("sip:13800000000@trunk", "c1"))
    assert (await leg.wait_answer(2)).result == "answered"
    assert far.leg is leg
    yield leg
    await telephony.close()


def speaker_on(leg: FakeLeg, caller: Caller) -> tuple[Speaker, list[CallEvent]]:
    bus = InProcessBus()
    published: list[CallEvent] = []
    bus.subscribe(published.append)
    speaker = Speaker(leg, ToneSpeech(), Timeline("c1", bus),
                      caller_speaking=lambda: caller.speaking)
    return speaker, published


def turns(published: list[CallEvent]) -> list[str]:
    return [e.data["text"] for e in published if e.name in events.TURN_EVENTS]


async def test_speech_cuts_an_ordinary_reply_off_within_two_frames(leg: FakeLeg) -> None:
    speaker, published = speaker_on(leg, Caller())
    sink = attach(speaker)
    reply = BotReply([BotSegment("这是一段很长的介绍"), BotSegment("第二句")])
    speaking = asyncio.create_task(speaker.speak(reply))
    await asyncio.sleep(0.3)
    await speaker.process(SpeechStarted(300))
    cut_at = leg.now_ms()
    assert await asyncio.wait_for(speaking, 2) == []
    assert not leg.playing
    assert leg.far.heard[-1].timestamp_ms - cut_at <= 2 * FRAME_MS
    assert [type(e) for e in sink.events] == [Interruption, SpeechStarted]
    assert turns(published) == ["这是一段很长的介绍（被打断）"]  # the rest is not said
    assert speaker.stops_ms and speaker.accepting_input


async def test_a_key_barges_in_too(leg: FakeLeg) -> None:
    speaker, _ = speaker_on(leg, Caller())
    sink = attach(speaker)
    speaking = asyncio.create_task(speaker.speak(BotReply([BotSegment("请稍等一下好吗")])))
    await asyncio.sleep(0.2)
    await speaker.process(Digit("1"))
    await asyncio.wait_for(speaking, 2)
    assert sink.events[0] == Interruption("dtmf", speaker.stops_ms[0])


async def test_a_disclosure_talked_over_once_is_said_again(leg: FakeLeg) -> None:
    caller = Caller()
    speaker, published = speaker_on(leg, caller)
    attach(speaker)
    disclosure = BotSegment("每月十元", disclosure=("price",))
    speaking = asyncio.create_task(speaker.speak(BotReply([disclosure])))
    await asyncio.sleep(0.1)
    assert not speaker.accepting_input  # what the caller says now is no answer
    caller.speaking = True
    await speaker.process(SpeechStarted(100))
    await asyncio.sleep(0.2)
    caller.speaking = False
    assert await asyncio.wait_for(speaking, 3) == []
    assert len(leg.far.heard_voiced()) * FRAME_MS >= 2 * 400 - 40  # played through, twice
    assert turns(published) == ["客户插话，重复声明", "每月十元"]


async def test_a_disclosure_talked_over_twice_is_reported(leg: FakeLeg) -> None:
    caller = Caller()
    speaker, published = speaker_on(leg, caller)
    caller.speaking = True  # over the first play and the repeat
    interrupted = await asyncio.wait_for(
        speaker.speak(BotReply([BotSegment("每月十元", disclosure=("price",))])), 3)
    assert interrupted == ["price"]
    assert [e.data for e in published if e.name == events.DISCLOSURE_INTERRUPTED] == [
        {"disclosures": ["price"]}]


async def test_disclosures_after_a_barge_in_are_reported_unsaid(leg: FakeLeg) -> None:
    speaker, published = speaker_on(leg, Caller())
    attach(speaker)
    reply = BotReply([BotSegment("接下来由我为您确认"),
                      BotSegment("每月十元", disclosure=("price",)),
                      BotSegment("随时可以取消", disclosure=("cancel",))])
    speaking = asyncio.create_task(speaker.speak(reply))
    await asyncio.sleep(0.2)
    await speaker.process(Digit("1"))
    assert await asyncio.wait_for(speaking, 2) == ["price", "cancel"]
    assert turns(published) == ["接下来由我为您确认（被打断）"]
    assert [e.data for e in published if e.name == events.DISCLOSURE_INTERRUPTED] == [
        {"disclosures": ["price", "cancel"], "skipped": True}]


async def test_a_hung_up_leg_ends_the_reply(leg: FakeLeg) -> None:
    speaker, _ = speaker_on(leg, Caller())
    assert leg.far.leg is leg
    leg.far.hang_up()
    with pytest.raises(CallerHungUp):
        await speaker.speak(BotReply([BotSegment("您好")]))
