"""The recorder: frames into a stereo WAV written as the call goes, first audio and
response gaps, a slow or failing disk."""

from __future__ import annotations

import hashlib
import random
import time
import wave
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.events import InProcessBus
from tests.unit.voice.pipeline_helpers import run_processor
from voice.audio import wavstream
from voice.audio.frames import FRAME_BYTES, FRAME_MS, SILENCE_FRAME, Frame, StereoRecorder
from voice.call.events import CallerDone, Digit
from voice.call.recorder import Recorder, RecordingFailed, recording_path
from voice.call.timeline import Timeline

VOICED = b"\x10\x20" * (FRAME_BYTES // 2)
DAY = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def frame(value: int, slot: int) -> Frame:
    return Frame(value.to_bytes(2, "little", signed=True) * (FRAME_BYTES // 2), slot * FRAME_MS)


def recorder(folder: Path, call_id: str = "c1", **kwargs: float) -> Recorder:
    return Recorder(Timeline(call_id, InProcessBus()), recording_path(folder, call_id, DAY),
                    **kwargs)


def wav_data(path: Path | str) -> tuple[int, bytes]:
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 8000)
        return wav.getnframes(), wav.readframes(wav.getnframes())


def wait_for(check: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


async def test_response_gap_runs_from_the_callers_end_to_the_bots_first_voiced_frame(
        tmp_path: Path) -> None:
    clock = Clock()
    rec = Recorder(Timeline("c1", InProcessBus(), clock=clock),
                   recording_path(tmp_path, "c1", DAY))
    rec.on_frame("tx", Frame(SILENCE_FRAME, 0))
    assert rec.first_audio_ms is None
    clock.t = 0.1
    rec.on_frame("tx", Frame(VOICED, 20))
    assert rec.first_audio_ms == 100.0
    out = await run_processor(rec, [CallerDone(1000.0), Digit("1")])
    assert out == [Digit("1")]  # CallerDone is the recorder's
    clock.t = 1.5
    rec.on_frame("tx", Frame(SILENCE_FRAME, 40))
    rec.on_frame("rx", Frame(VOICED, 40))
    rec.on_frame("tx", Frame(VOICED, 60))
    rec.on_frame("tx", Frame(VOICED, 80))
    assert rec.response_gaps_ms == [500.0]

    path, digest = rec.finish()
    assert Path(path) == tmp_path / "2026-03-02" / "c1.wav"
    assert digest == hashlib.sha256(Path(path).read_bytes()).hexdigest()
    assert not wavstream.partial_path(Path(path)).exists()
    assert wav_data(path)[0] == 5 * 160


def test_the_streamed_file_is_the_in_memory_layout_whatever_order_frames_come_in(
        tmp_path: Path) -> None:
    """Irregular batches, the bot ahead of the caller, gaps, repeated slots and frames that
    come seconds late (after their slot was written): the file is sample for sample what
    the whole-call recorder lays out."""
    rng = random.Random(7)
    events: list[tuple[str, Frame]] = []
    for slot in range(600):  # 12 s
        if rng.random() < 0.9:
            events.append(("rx", frame(rng.randint(-3000, 3000), slot)))
        if rng.random() < 0.8:
            events.append(("tx", frame(rng.randint(-3000, 3000), slot + 15)))  # 300 ms ahead
    rng.shuffle(events[100:140])  # one burst out of order
    late = [("rx", frame(1234, 20)), ("tx", frame(-4321, 37)), ("rx", frame(777, 20))]
    events[450:450] = late  # ~9 s after their slots: patched into the file
    events.append(("rx", frame(99, 5)))  # and one at the very end

    rec = recorder(tmp_path, flush_s=0.2, lag_s=0.5)
    memory = StereoRecorder()
    for direction, f in events:
        rec.on_frame(direction, f)  # type: ignore[arg-type]
        (memory.add_caller if direction == "rx" else memory.add_bot)(f)
    path, digest = rec.finish()

    frames, data = wav_data(path)
    assert data == memory.stereo_pcm()
    assert frames * 20 // 160 == memory.duration_ms == rec.duration_ms
    reference = tmp_path / "memory.wav"
    assert digest == memory.write(reference)  # the same bytes, header included


def test_the_recording_is_on_disk_while_the_call_goes(tmp_path: Path) -> None:
    rec = recorder(tmp_path, flush_s=0.2, lag_s=0.2)
    target = tmp_path / "2026-03-02" / "c1.wav"
    partial = wavstream.partial_path(target)
    for slot in range(250):  # 5 s of call
        rec.on_frame("rx", frame(1000, slot))
        rec.on_frame("tx", frame(-1000, slot))
    # Written and readable as a WAV (its header follows the data) before the call ends.
    wait_for(lambda: partial.exists() and partial.stat().st_size > 44 + 4 * 8000 * 4)
    frames, data = wav_data(partial)
    assert 8000 * 4 <= frames <= 8000 * 5
    assert data[:4] == (1000).to_bytes(2, "little") + (-1000).to_bytes(2, "little", signed=True)
    assert not target.exists()
    # A live recording is locked: recovery leaves it alone.
    assert wavstream.finalise_partial(partial) is None
    path, _ = rec.finish()
    assert wav_data(path)[0] == 250 * 160 and not partial.exists()


def test_a_slow_disk_neither_stalls_the_frames_nor_loses_any(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = wavstream.WavFile.write

    def slow_write(self: wavstream.WavFile, block: wavstream.Block) -> None:
        time.sleep(0.3)
        real_write(self, block)

    monkeypatch.setattr(wavstream.WavFile, "write", slow_write)
    rec = recorder(tmp_path, flush_s=0.1, lag_s=0.1)
    memory = StereoRecorder()
    worst = 0.0
    for slot in range(500):  # 10 s of frames, handed over every 100 ms of call
        for direction, f in (("rx", frame(slot % 300, slot)), ("tx", frame(-slot, slot))):
            began = time.perf_counter()
            rec.on_frame(direction, f)  # type: ignore[arg-type]
            worst = max(worst, time.perf_counter() - began)
            (memory.add_caller if direction == "rx" else memory.add_bot)(f)
    assert worst < 0.05  # the frames never waited for the disk (each block takes 300 ms)
    path, _ = rec.finish()
    assert wav_data(path)[1] == memory.stereo_pcm()


def test_a_recording_that_cannot_be_written_fails_at_the_end_not_during_the_call(
        tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    rec = recorder(blocker, flush_s=0.1, lag_s=0.1)
    for slot in range(100):
        rec.on_frame("rx", frame(1, slot))
    with pytest.raises(RecordingFailed):
        rec.finish()
