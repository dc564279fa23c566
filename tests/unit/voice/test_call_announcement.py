"""The announcement screen between a source of transcripts and a sink."""

from __future__ import annotations

from tests.unit.voice.pipeline_helpers import run_processor
from voice.asr.base import Transcript
from voice.call.announcement import AnnouncementScreen
from voice.call.events import AnnouncementHeard, CallerInput, Digit, Transcribed

EMPTY_NUMBER = "您拨打的号码是空号，请查证后再拨。"


def said(text: str, raw: str | None = None) -> Transcript:
    return Transcript(text, 0.8, "fake", raw=text if raw is None else raw)


async def test_an_announcement_in_the_window_is_heard_and_goes_no_further() -> None:
    screen = AnnouncementScreen("c1", window_s=8.0)
    out = await run_processor(screen, [Transcribed(said(EMPTY_NUMBER), 300, 2500)])
    assert out == [AnnouncementHeard("invalid_number", EMPTY_NUMBER, 300)]
    assert screen.heard.is_set() and screen.found == out[0]


async def test_the_normalised_text_counts_when_the_raw_one_does_not() -> None:
    screen = AnnouncementScreen("c1", window_s=8.0)
    out = await run_processor(screen, [Transcribed(said("您拨打的电话已关机", raw="嗯"),
                                                   0, 900)])
    assert out == [AnnouncementHeard("powered_off", "嗯", 0)]


async def test_a_customer_is_an_input() -> None:
    screen = AnnouncementScreen("c1", window_s=8.0)
    out = await run_processor(screen, [Transcribed(said("我手机快关机了"), 100, 900)])
    assert out == [CallerInput("speech", "我手机快关机了", said("我手机快关机了"), 100, 900)]
    assert not screen.heard.is_set()


async def test_after_a_reply_or_after_the_window_there_is_no_check() -> None:
    replied = AnnouncementScreen("c1", window_s=8.0, replied=lambda: True)
    late = AnnouncementScreen("c1", window_s=0.3)
    for screen, start in ((replied, 0), (late, 400)):
        out = await run_processor(screen, [Transcribed(said(EMPTY_NUMBER), start, 2000)])
        assert [type(e) for e in out] == [CallerInput]
        assert not screen.heard.is_set()


async def test_nothing_heard_is_unclear_and_other_events_pass() -> None:
    screen = AnnouncementScreen("c1", window_s=8.0)
    unclear = Transcript("", 0.1, "fake", raw="嗯啊", unclear=True)
    out = await run_processor(screen, [Transcribed(None, 0, 500), Digit("5"),
                                       Transcribed(unclear, 600, 900)])
    assert out == [CallerInput("unclear", "", None, 0, 500), Digit("5"),
                   CallerInput("unclear", "", unclear, 600, 900)]
