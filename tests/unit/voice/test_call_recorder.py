"""The recorder: frames into the stereo WAV, first audio and response gaps."""

from __future__ import annotations

import wave
from pathlib import Path

from bot.events import InProcessBus
from tests.unit.voice.pipeline_helpers import run_processor
from voice.audio.frames import FRAME_BYTES, SILENCE_FRAME, Frame
from voice.call.events import CallerDone, Digit
from voice.call.recorder import Recorder
from voice.call.timeline import Timeline

VOICED = b"\x10\x20" * (FRAME_BYTES // 2)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


async def test_response_gap_runs_from_the_callers_end_to_the_bots_first_voiced_frame(
        tmp_path: Path) -> None:
    clock = Clock()
    recorder = Recorder(Timeline("c1", InProcessBus(), clock=clock))
    recorder.on_frame("tx", Frame(SILENCE_FRAME, 0))
    assert recorder.first_audio_ms is None
    clock.t = 0.1
    recorder.on_frame("tx", Frame(VOICED, 20))
    assert recorder.first_audio_ms == 100.0
    out = await run_processor(recorder, [CallerDone(1000.0), Digit("1")])
    assert out == [Digit("1")]  # CallerDone is the recorder's
    clock.t = 1.5
    recorder.on_frame("tx", Frame(SILENCE_FRAME, 40))
    recorder.on_frame("rx", Frame(VOICED, 40))
    recorder.on_frame("tx", Frame(VOICED, 60))
    recorder.on_frame("tx", Frame(VOICED, 80))
    assert recorder.response_gaps_ms == [500.0]

    path, digest = recorder.write(tmp_path, "c1", Timeline("c1", InProcessBus()).call_start)
    assert Path(path).parent.parent == tmp_path and len(digest) == 64
    with wave.open(path) as wav:
        assert wav.getnchannels() == 2
