"""Endpointing between a source of caller frames and a sink."""

from __future__ import annotations

from collections.abc import Sequence

from tests.unit.voice.pipeline_helpers import audio, run_processor, silence, tone
from voice.audio.vad import VadParams
from voice.call.endpointing import Endpointing
from voice.call.events import (
    CallerAudio,
    Event,
    SpeechEnded,
    SpeechStarted,
    UtteranceTooShort,
)

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


def stamped(frames: list[CallerAudio], from_ms: int) -> list[CallerAudio]:
    """The frames as the leg stamps them, the first at *from_ms* on the call's clock."""
    return [CallerAudio(f.pcm, from_ms + 20 * i) for i, f in enumerate(frames)]


def found(out: Sequence[Event]) -> list[tuple[str, int | None]]:
    """The VAD's events: kind and time."""
    return [(type(e).__name__, getattr(e, "at_ms", None)) for e in out
            if not isinstance(e, CallerAudio)]


async def test_frames_the_line_never_delivered_are_its_silence() -> None:
    """The audio clock skipped 300 ms of a stall: the next words are timed where the
    recording holds them (the consent ledger binds a consent to that span)."""
    stage = Endpointing(PARAMS)
    before = stamped(silence(200), 0)
    after = stamped([*audio(tone(600)), *silence(800)], 500)  # 200-500 ms never came
    out = await run_processor(stage, [*before, *after])
    assert found(out) == [("SpeechStarted", 500), ("SpeechEnded", 1100)]
    filled = [e for e in out if isinstance(e, CallerAudio) and e.at_ms is None]
    assert len(filled) == 15 and all(not any(e.pcm) for e in filled)


async def test_a_long_stall_ends_the_utterance_and_times_the_next_at_its_frame() -> None:
    stage = Endpointing(PARAMS)
    out = await run_processor(stage, [*stamped(audio(tone(400)), 0),
                                      *stamped([*audio(tone(400)), *silence(800)], 5000)])
    assert found(out) == [
        ("SpeechStarted", 0), ("SpeechEnded", 400), ("SpeechStarted", 5000),
        ("SpeechEnded", 5400)]


async def test_after_a_bridge_the_word_under_way_is_forgotten() -> None:
    """An agent had the caller's frames: listening resumes at the next frame's own time,
    and the start of a word said to the agent does not run on into an utterance."""
    stage = Endpointing(PARAMS)
    out = await run_processor(stage, stamped(audio(tone(300)), 0))
    stage.resume()
    assert not stage.speaking
    out += await run_processor(stage, stamped([*audio(tone(400)), *silence(800)], 9000))
    assert found(out) == [
        ("SpeechStarted", 0), ("SpeechStarted", 9000), ("SpeechEnded", 9400)]
