"""Endpointing between a source of caller frames and a sink."""

from __future__ import annotations

from tests.unit.voice.pipeline_helpers import audio, run_processor, silence, tone
from voice.audio.vad import VadParams
from voice.call.endpointing import Endpointing
from voice.call.events import CallerAudio, SpeechEnded, SpeechStarted, UtteranceTooShort

PARAMS = VadParams(min_speech_ms=60, end_silence_ms=600, min_utterance_ms=200,
                   max_utterance_s=12.0)


async def test_an_utterance_gives_start_and_end_and_every_frame_passes_on() -> None:
    stage = Endpointing(PARAMS)
    frames = [*silence(200), *audio(tone(600)), *silence(800)]
    out = await run_processor(stage, frames)

    vad = [e for e in out if not isinstance(e, CallerAudio)]
    assert vad[0] == SpeechStarted(at_ms=200)
    assert isinstance(vad[1], SpeechEnded) and vad[1].at_ms == 800
    assert len(vad) == 2
    assert [e for e in out if isinstance(e, CallerAudio)] == frames
    # A frame's VAD events come before the frame itself.
    started = out.index(vad[0])
    assert out[started + 1] == frames[10 + 2]
    assert not stage.speaking and stage.speech_start_ms == 200


async def test_speaking_while_the_caller_talks() -> None:
    stage = Endpointing(PARAMS)
    await run_processor(stage, [*audio(tone(300))])
    assert stage.speaking and stage.speech_start_ms == 0


async def test_a_cough_is_too_short() -> None:
    stage = Endpointing(PARAMS)
    out = await run_processor(stage, [*audio(tone(100)), *silence(700)])
    kinds = [type(e) for e in out if not isinstance(e, CallerAudio)]
    assert kinds == [SpeechStarted, UtteranceTooShort]
    assert not stage.speaking


async def test_flush_ends_the_utterance_the_hang_up_cut_short() -> None:
    stage = Endpointing(PARAMS)
    sink_events = await run_processor(stage, audio(tone(500)))
    assert not [e for e in sink_events if isinstance(e, SpeechEnded)]
    await stage.flush()
    ended = [e for e in sink_events if isinstance(e, SpeechEnded)]
    assert len(ended) == 1 and ended[0].at_ms == 500 and not stage.speaking


async def test_flush_drops_a_too_short_start() -> None:
    stage = Endpointing(PARAMS)
    out = await run_processor(stage, audio(tone(100)))
    await stage.flush()
    assert [type(e) for e in out if not isinstance(e, CallerAudio)] == [SpeechStarted]
