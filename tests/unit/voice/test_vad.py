"""Energy VAD / endpointing state machine, on synthetic and on real (espeak-ng) speech."""

from __future__ import annotations

import math
import random
import shutil
import struct
import subprocess
import wave
from pathlib import Path

import pytest

from voice.audio.frames import FRAME_BYTES, FRAME_SAMPLES, dbfs, resample_linear, split_frames
from voice.audio.vad import (
    SpeechEnded,
    SpeechStarted,
    UtteranceTooShort,
    Vad,
    VadEvent,
    VadParams,
    VadState,
)

BYTES_PER_MS = FRAME_BYTES // 20


def silence(ms: int) -> bytes:
    return bytes(BYTES_PER_MS * ms)


def tone(ms: int, level_dbfs: float = -20.0, freq: float = 440.0) -> bytes:
    amp = 32768 * 10 ** (level_dbfs / 20) * math.sqrt(2)  # rms of the sine == level
    n = 8 * ms
    return struct.pack(
        f"<{n}h", *(round(amp * math.sin(2 * math.pi * freq * i / 8000)) for i in range(n))
    )


def noise(ms: int, level_dbfs: float, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    sigma = 32768 * 10 ** (level_dbfs / 20)
    n = 8 * ms
    return struct.pack(
        f"<{n}h", *(max(-32768, min(32767, round(rng.gauss(0, sigma)))) for _ in range(n))
    )


def run(vad: Vad, pcm: bytes) -> list[tuple[int, VadEvent]]:
    """Feed whole frames; return (frame index at which it was emitted, event)."""
    out: list[tuple[int, VadEvent]] = []
    for frame in split_frames(pcm):
        index = vad.frame_index
        out += [(index, event) for event in vad.feed(frame)]
    return out


def events(vad: Vad, pcm: bytes) -> list[VadEvent]:
    return [event for _, event in run(vad, pcm)]


def test_tone_levels_are_what_the_helpers_say() -> None:
    assert dbfs(tone(100, -20.0)) == pytest.approx(-20.0, abs=0.1)
    assert dbfs(noise(1000, -55.0)) == pytest.approx(-55.0, abs=0.3)


def test_silence_gives_no_events() -> None:
    vad = Vad()
    assert events(vad, silence(3000)) == []
    assert vad.state is VadState.QUIET
    assert vad.frame_index == 150


def test_noise_below_threshold_gives_no_events() -> None:
    vad = Vad(VadParams(start_threshold_dbfs=-40.0))
    assert events(vad, noise(3000, -50.0)) == []


def test_one_second_burst_timing_and_audio() -> None:
    vad = Vad()  # 100 ms to confirm, 600 ms end silence, 200 ms pre- and post-roll
    got = run(vad, silence(1000) + tone(1000) + silence(1000))
    assert [e for _, e in got][0] == SpeechStarted(at_ms=1000)
    (started_at, _), (ended_at, ended) = got
    assert started_at == 50 + 5 - 1  # the fifth voiced frame confirms it
    assert isinstance(ended, SpeechEnded)
    assert (ended.at_ms, ended.duration_ms, ended.truncated) == (2000, 1000, False)
    assert ended_at == 100 + 30 - 1  # after 600 ms of silence
    assert len(ended.audio) == BYTES_PER_MS * (200 + 1000 + 200)
    assert ended.audio[: BYTES_PER_MS * 200] == silence(200)  # pre-roll
    assert dbfs(ended.audio[BYTES_PER_MS * 200 : BYTES_PER_MS * 1200]) == pytest.approx(
        -20, abs=0.1
    )
    assert ended.audio[BYTES_PER_MS * 1200 :] == silence(200)  # post-roll
    assert vad.state is VadState.QUIET


def test_burst_shorter_than_min_speech_is_ignored() -> None:
    vad = Vad()
    assert events(vad, silence(500) + tone(80) + silence(1000)) == []


def test_short_confirmed_burst_is_too_short() -> None:
    vad = Vad()
    got = events(vad, silence(500) + tone(140) + silence(1000))
    assert got == [SpeechStarted(at_ms=500), UtteranceTooShort(at_ms=640, duration_ms=140)]


def test_short_pause_inside_speech_does_not_end_the_utterance() -> None:
    vad = Vad(VadParams(end_silence_ms=600))
    pcm = silence(400) + tone(700) + silence(400) + tone(500, freq=300) + silence(1000)
    got = events(vad, pcm)
    assert len(got) == 2
    assert got[0] == SpeechStarted(at_ms=400)
    assert isinstance(got[1], SpeechEnded)
    assert (got[1].at_ms, got[1].duration_ms) == (2000, 1600)


def test_long_pause_splits_into_two_utterances() -> None:
    vad = Vad(VadParams(end_silence_ms=600))
    got = events(vad, silence(400) + tone(700) + silence(700) + tone(500) + silence(1000))
    assert [type(e) for e in got] == [SpeechStarted, SpeechEnded, SpeechStarted, SpeechEnded]
    assert got[2] == SpeechStarted(at_ms=1800)
    assert isinstance(got[3], SpeechEnded)
    assert (got[3].at_ms, got[3].duration_ms) == (2300, 500)


def test_end_silence_is_configurable() -> None:
    vad = Vad(VadParams(end_silence_ms=300))
    got = run(vad, silence(200) + tone(500) + silence(1000))
    assert got[-1][0] == (700 + 300) // 20 - 1


def test_max_length_cut_then_restart() -> None:
    vad = Vad(VadParams(max_utterance_s=5.0))
    got = events(vad, silence(200) + tone(7000) + silence(1000))
    assert got[0] == SpeechStarted(at_ms=200)
    cut = got[1]
    assert isinstance(cut, SpeechEnded)
    assert (cut.at_ms, cut.duration_ms, cut.truncated) == (5200, 5000, True)
    assert len(cut.audio) == BYTES_PER_MS * (200 + 5000)
    # still talking: a new utterance starts right away and ends normally
    assert got[2] == SpeechStarted(at_ms=5200)
    rest = got[3]
    assert isinstance(rest, SpeechEnded)
    assert (rest.at_ms, rest.duration_ms, rest.truncated) == (7200, 2000, False)
    assert len(got) == 4


def test_hysteresis_keeps_a_fading_tail_voiced() -> None:
    params = VadParams(start_threshold_dbfs=-40.0, hysteresis_db=6.0)
    # -43 dBFS alone never starts speech...
    assert events(Vad(params), tone(2000, -43.0)) == []
    # ...but after a start it keeps the utterance going
    got = events(Vad(params), tone(300, -20.0) + tone(1000, -43.0) + silence(1000))
    assert isinstance(got[-1], SpeechEnded)
    assert got[-1].duration_ms == 1300
    # and below the stop threshold it counts as silence
    got = events(Vad(params), tone(300, -20.0) + tone(1000, -50.0) + silence(1000))
    assert isinstance(got[-1], SpeechEnded)
    assert got[-1].duration_ms == 300


def test_adaptive_floor_stops_treating_steady_noise_as_speech() -> None:
    line = noise(12000, -35.0, seed=7)
    fixed = events(Vad(VadParams(start_threshold_dbfs=-40.0, max_utterance_s=5.0)), line)
    assert sum(isinstance(e, SpeechEnded) and e.truncated for e in fixed) == 2

    params = VadParams(start_threshold_dbfs=-40.0, max_utterance_s=5.0, adaptive_floor=True)
    vad = Vad(params)
    early = run(vad, line)
    # at most one false utterance while the floor climbs, over within the first 5 s
    assert len(early) <= 2
    assert all(index < 250 for index, _ in early)
    assert vad.noise_floor_dbfs == pytest.approx(-35.0, abs=2.0)
    # real speech 20 dB above the noise is still found
    speech = tone(800, -15.0) + noise(1000, -35.0, seed=8)
    got = events(vad, speech)
    assert [type(e) for e in got] == [SpeechStarted, SpeechEnded]
    assert got[0] == SpeechStarted(at_ms=12000)


def test_flush_closes_an_open_utterance() -> None:
    vad = Vad()
    assert events(vad, silence(100) + tone(500)) == [SpeechStarted(at_ms=100)]
    (ended,) = vad.flush()
    assert isinstance(ended, SpeechEnded)
    assert (ended.at_ms, ended.duration_ms) == (600, 500)
    assert vad.state is VadState.QUIET
    assert vad.flush() == []


def test_deterministic() -> None:
    pcm = silence(300) + noise(400, -20.0) + silence(700) + tone(150) + silence(800)
    assert events(Vad(), pcm) == events(Vad(), pcm)


def test_reset() -> None:
    vad = Vad()
    events(vad, tone(500))
    vad.reset()
    assert (vad.state, vad.frame_index) == (VadState.QUIET, 0)


def test_resume_after_a_gap_keeps_the_callers_clock_and_forgets_the_utterance() -> None:
    """A bridge read the frames for a while: what follows is timed on the call's clock,
    and a word under way when the gap began does not run on into the next utterance."""
    vad = Vad(VadParams(adaptive_floor=True))
    events(vad, noise(2000, -45.0) + tone(300))  # line noise, then a word cut by the gap
    floor = vad.noise_floor_dbfs
    vad.resume_at(5000 // 20)
    assert (vad.state, vad.frame_index, vad.noise_floor_dbfs) == (VadState.QUIET, 250, floor)
    found = events(vad, tone(500) + silence(700))
    assert found[0] == SpeechStarted(at_ms=5000)
    assert isinstance(found[1], SpeechEnded)
    assert (found[1].at_ms, found[1].duration_ms) == (5500, 500)
    with pytest.raises(ValueError, match="cannot go back"):
        vad.resume_at(10)


def test_wrong_frame_size_rejected() -> None:
    with pytest.raises(ValueError, match="320 bytes"):
        Vad().feed(bytes(FRAME_SAMPLES))


def test_params_validated() -> None:
    with pytest.raises(ValueError, match="end_silence_ms"):
        VadParams(end_silence_ms=0)
    with pytest.raises(ValueError, match="pre_roll_ms"):
        VadParams(pre_roll_ms=-20)
    with pytest.raises(ValueError, match="max_utterance_s"):
        VadParams(max_utterance_s=0.05)


def test_no_pre_roll() -> None:
    got = events(
        Vad(VadParams(pre_roll_ms=0, post_roll_ms=0)), silence(400) + tone(500) + silence(800)
    )
    assert isinstance(got[-1], SpeechEnded)
    assert len(got[-1].audio) == BYTES_PER_MS * 500


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_real_speech_from_espeak(tmp_path: Path) -> None:
    wav_path = tmp_path / "out.wav"
    subprocess.run(
        ["espeak-ng", "-v", "cmn-latn-pinyin", "-w", str(wav_path), "ni3 hao3"],
        check=True,
        capture_output=True,
        timeout=30,
    )
    with wave.open(str(wav_path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        rate = w.getframerate()
        raw = w.readframes(w.getnframes())
    speech = resample_linear(raw, rate, 8000)
    speech_ms = len(speech) // BYTES_PER_MS
    assert 300 < speech_ms < 3000

    got = events(Vad(), silence(1000) + speech + silence(1500))
    assert [type(e) for e in got] == [SpeechStarted, SpeechEnded]
    started, ended = got
    assert isinstance(started, SpeechStarted) and isinstance(ended, SpeechEnded)
    # espeak's WAV has little leading/trailing silence: speech starts soon after 1 s
    assert 1000 <= started.at_ms <= 1300
    assert 1000 + speech_ms - 400 <= ended.at_ms <= 1000 + speech_ms
    assert 300 <= ended.duration_ms <= speech_ms
    assert len(ended.audio) >= BYTES_PER_MS * ended.duration_ms


@pytest.mark.parametrize("codec", ["alaw", "ulaw"])
def test_detection_survives_a_g711_round_trip(codec: str) -> None:
    from voice.audio import g711

    encode, decode = {
        "alaw": (g711.alaw_encode, g711.alaw_decode),
        "ulaw": (g711.ulaw_encode, g711.ulaw_decode),
    }[codec]
    pcm = silence(500) + tone(700) + silence(800) + tone(400) + silence(1000)

    def timeline(audio: bytes) -> list[tuple[str, int, int]]:
        return [
            (type(e).__name__, e.at_ms, getattr(e, "duration_ms", 0)) for e in events(Vad(), audio)
        ]

    assert timeline(decode(encode(pcm))) == timeline(pcm)
    assert len(timeline(pcm)) == 4
