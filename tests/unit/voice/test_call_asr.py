"""The ASR stage between a source of VAD events and frames and a sink, with fake engines
that subclass the real base classes."""

from __future__ import annotations

from bot.events import InProcessBus
from tests.unit.voice.pipeline_helpers import audio, run_processor, tone
from voice.asr.base import AsrEngine, AsrWorker, Hints, Recognizer, Transcript
from voice.audio.frames import SAMPLE_RATE
from voice.call.asr import Transcription
from voice.call.events import (
    CallerAudio,
    CallerDone,
    Event,
    ListenFor,
    SpeechEnded,
    SpeechStarted,
    Transcribed,
    UtteranceTooShort,
)
from voice.call.timeline import Timeline


class FakeEngine(AsrEngine):
    name = "fake"

    def __init__(self, *transcripts: Transcript, streaming: bool = False) -> None:
        self.streaming = streaming
        self.transcripts = list(transcripts)
        self.hints: list[Hints] = []
        self.heard_ms: list[int] = []

    def open(self, hints: Hints) -> Recognizer:
        self.hints.append(hints)
        engine = self

        class _Rec(Recognizer):
            audio = bytearray()

            def feed(self, pcm: bytes) -> None:
                self.audio = self.audio + pcm

            def finish(self) -> Transcript:
                engine.heard_ms.append(len(self.audio) // 2 * 1000 // SAMPLE_RATE)
                if not engine.transcripts:
                    raise RuntimeError("engine broke")
                return engine.transcripts.pop(0)
        return _Rec()


def said(text: str) -> Transcript:
    return Transcript(text, 0.9, "fake", raw=text)


def stage(engine: FakeEngine, accepting: bool = True) -> Transcription:
    return Transcription(AsrWorker(engine), Timeline("c1", InProcessBus()), pre_roll_ms=200,
                         accepting=lambda: accepting)


def utterance(ms: int = 600) -> list[Event]:
    """What the endpointing gives for one utterance starting at 0."""
    frames: list[Event] = list(audio(tone(ms)))
    return [SpeechStarted(0), *frames,
            SpeechEnded(ms, ms, b"".join(f.pcm for f in audio(tone(ms))))]


async def test_a_batch_engine_gets_the_whole_utterance_at_its_end() -> None:
    engine = FakeEngine(said("是的"))
    asr = stage(engine)
    asr.listen_for(ListenFor(Hints("yes_no", ("是的",))))
    out = await run_processor(asr, utterance(), settle=asr.settle)

    assert [type(e) for e in out if not isinstance(e, CallerAudio)] == [
        SpeechStarted, SpeechEnded, CallerDone, Transcribed]
    assert out[-1] == Transcribed(said("是的"), 0, 600)
    assert engine.hints == [Hints("yes_no", ("是的",))]
    assert engine.heard_ms == [600]
    assert not asr.busy


async def test_a_streaming_engine_is_fed_with_the_pre_roll_while_the_caller_speaks() -> None:
    engine = FakeEngine(said("好"), streaming=True)
    asr = stage(engine)
    before = audio(tone(100))  # frames before the VAD confirmed the start
    events: list[Event] = [*before, *utterance(400)]
    out = await run_processor(asr, events, settle=asr.settle)
    assert isinstance(out[-1], Transcribed) and out[-1].transcript == said("好")
    assert engine.heard_ms == [100 + 400]


async def test_the_hints_are_those_of_the_question_when_the_caller_started() -> None:
    engine = FakeEngine(said("好"))
    asr = stage(engine)
    asr.listen_for(ListenFor(Hints("score", ("五分",))))
    start, *rest = utterance()
    await asr.process(start)
    asr.listen_for(ListenFor(Hints("digits")))  # a later question
    await run_processor(asr, rest, settle=asr.settle)
    assert engine.hints == [Hints("score", ("五分",))]


async def test_a_failed_decode_is_delivered_as_nothing_heard() -> None:
    asr = stage(FakeEngine())
    out = await run_processor(asr, utterance(), settle=asr.settle)
    assert out[-1] == Transcribed(None, 0, 600)


async def test_words_said_over_a_disclosure_are_not_decoded() -> None:
    engine = FakeEngine(said("喂"))
    asr = stage(engine, accepting=False)
    out = await run_processor(asr, utterance(), settle=asr.settle)
    assert not [e for e in out if isinstance(e, Transcribed | CallerDone)]
    assert engine.heard_ms == []


async def test_a_too_short_utterance_drops_the_stream() -> None:
    engine = FakeEngine(said("x"), streaming=True)
    asr = stage(engine)
    out = await run_processor(asr, [SpeechStarted(0), *audio(tone(100)),
                                    UtteranceTooShort(100, 100)], settle=asr.settle)
    assert not asr.busy
    assert not [e for e in out if isinstance(e, Transcribed)]
