"""Adaptive endpointing: a short answer ends at a pause once its decode is one of the
question's hint phrases; everything else waits for the full end silence.

The VAD reports the pause (`SpeechPaused`) and ends an utterance when asked (`cut`); the
endpointing takes the request at its next frame; the ASR stage decides, from a decode of
the utterance up to the pause.  Frames are fed one by one with a short real wait, so that
the decode (in the ASR worker's thread) finishes between frames as it would in a call.
"""

from __future__ import annotations

import asyncio

import pytest

from bot.events import InProcessBus
from tests.unit.voice.pipeline_helpers import Sink, audio, silence, tone
from tests.unit.voice.test_call_asr import FakeEngine, said
from voice.asr.base import AsrWorker, Hints, Transcript
from voice.audio.vad import SpeechEnded, SpeechPaused, SpeechStarted, Vad, VadParams
from voice.call.asr import Transcription
from voice.call.endpointing import Endpointing
from voice.call.events import CallerAudio, ListenFor, Transcribed, chain
from voice.call.timeline import Timeline

PARAMS = VadParams(min_speech_ms=60, end_silence_ms=600, min_utterance_ms=200,
                   max_utterance_s=12.0, pause_ms=240)
YES_NO = Hints("yes_no", ("是的", "不是"))


def vad_events(vad: Vad, frames: list[CallerAudio]) -> list[object]:
    return [event for frame in frames for event in vad.feed(frame.pcm)]


def test_a_pause_is_reported_once_before_the_end() -> None:
    events = vad_events(Vad(PARAMS), [*audio(tone(400)), *silence(800)])
    assert [type(e) for e in events] == [SpeechStarted, SpeechPaused, SpeechEnded]
    paused, ended = events[1], events[2]
    assert isinstance(paused, SpeechPaused) and isinstance(ended, SpeechEnded)
    assert paused.at_ms == ended.at_ms == 400
    assert paused.duration_ms == ended.duration_ms


def test_speech_after_a_pause_pauses_again() -> None:
    events = vad_events(Vad(PARAMS), [*audio(tone(400)), *silence(300), *audio(tone(300)),
                                      *silence(800)])
    kinds = [type(e) for e in events]
    assert kinds == [SpeechStarted, SpeechPaused, SpeechPaused, SpeechEnded]
    assert events[-1].at_ms == 1000  # type: ignore[attr-defined]


def test_a_cut_ends_a_pausing_utterance_only() -> None:
    vad = Vad(PARAMS)
    vad_events(vad, audio(tone(400)))
    assert vad.cut() == []  # still speaking
    vad_events(vad, silence(260))
    [ended] = vad.cut()
    assert isinstance(ended, SpeechEnded) and ended.at_ms == 400
    assert vad.cut() == [] and vad_events(vad, silence(800)) == []


def test_a_pause_must_be_shorter_than_the_end_silence() -> None:
    with pytest.raises(ValueError, match="pause_ms"):
        VadParams(end_silence_ms=600, pause_ms=600)
    assert VadParams(pause_ms=0).pause_ms == 0


class Call:
    """Endpointing → ASR → sink, as the session wires them."""

    def __init__(self, engine: FakeEngine, hints: Hints, *, adaptive: bool = True) -> None:
        self.endpointing = Endpointing(PARAMS)
        self.asr = Transcription(
            AsrWorker(engine), Timeline("c1", InProcessBus()), pre_roll_ms=200,
            end_at_pause=self.endpointing.end_at_pause if adaptive else None)
        self.asr.listen_for(ListenFor(hints))
        self.sink = Sink()
        chain(self.endpointing, self.asr)
        self.asr.link(self.sink)

    async def feed(self, frames: list[CallerAudio]) -> None:
        for frame in frames:
            await self.endpointing.process(frame)
            await asyncio.sleep(0.002)
        await self.asr.settle()

    def ended_after_frames(self) -> int:
        """How many frames came in before the utterance ended."""
        count = 0
        for event in self.sink.events:
            if isinstance(event, SpeechEnded):
                return count
            count += isinstance(event, CallerAudio)
        raise AssertionError("the utterance never ended")

    def transcribed(self) -> list[Transcript | None]:
        return [e.transcript for e in self.sink.events if isinstance(e, Transcribed)]


SPOKEN = 20  # frames of a 400 ms answer
FULL_END = SPOKEN + 29  # frames before the end, which comes with the 30th silent one


async def test_a_short_answer_in_the_hints_ends_at_the_pause() -> None:
    engine = FakeEngine(said("是的"))
    call = Call(engine, YES_NO)
    await call.feed([*audio(tone(400)), *silence(800)])

    assert call.transcribed() == [said("是的")]
    assert engine.heard_ms == [640]  # decoded once: the answer and the pause
    assert SPOKEN + 12 <= call.ended_after_frames() < FULL_END


async def test_a_free_answer_waits_for_the_full_silence() -> None:
    engine = FakeEngine(said("是的"))
    call = Call(engine, Hints("free", ("是的",)))
    await call.feed([*audio(tone(400)), *silence(800)])

    assert call.transcribed() == [said("是的")]
    assert call.ended_after_frames() == FULL_END


async def test_without_adaptive_endpointing_a_short_answer_waits_too() -> None:
    call = Call(FakeEngine(said("是的")), YES_NO, adaptive=False)
    await call.feed([*audio(tone(400)), *silence(800)])
    assert call.ended_after_frames() == FULL_END


async def test_an_answer_outside_the_hints_waits_and_its_pause_decode_is_used() -> None:
    engine = FakeEngine(said("我想想"))
    call = Call(engine, YES_NO)
    await call.feed([*audio(tone(400)), *silence(800)])

    assert call.ended_after_frames() == FULL_END
    assert call.transcribed() == [said("我想想")]
    assert len(engine.heard_ms) == 1  # nothing said since the pause: not decoded again


async def test_an_unsure_decode_does_not_end_the_turn() -> None:
    engine = FakeEngine(Transcript("是的", 0.3, "fake", raw="是的"))
    call = Call(engine, YES_NO)
    await call.feed([*audio(tone(400)), *silence(800)])
    assert call.ended_after_frames() == FULL_END


async def test_speech_after_the_pause_drops_its_decode() -> None:
    engine = FakeEngine(said("是的"), said("不是"))
    call = Call(engine, YES_NO)
    # The first pause's decode is back, but the frame after it is voiced: the caller went on.
    await call.feed([*audio(tone(400)), *silence(240), *audio(tone(400)), *silence(800)])

    [ended] = [e for e in call.sink.events if isinstance(e, SpeechEnded)]
    assert ended.at_ms == 1040  # one utterance: the first pause was not its end
    assert call.transcribed() == [said("不是")]
    assert engine.heard_ms == [640, 1280]  # each pause decoded what was said up to it
