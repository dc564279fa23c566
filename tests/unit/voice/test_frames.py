"""Frames, level, splitting, resampling and the stereo recorder."""

from __future__ import annotations

import hashlib
import math
import struct
import wave
from pathlib import Path

import pytest

from voice.audio import frames
from voice.audio.frames import (
    FRAME_BYTES,
    FRAME_MS,
    FRAME_SAMPLES,
    SAMPLE_RATE,
    Frame,
    StereoRecorder,
    dbfs,
    resample_linear,
    rms,
    split_frames,
)


def tone(freq: float, rate: int, seconds: float, amp: float = 10000.0) -> bytes:
    n = int(rate * seconds)
    return struct.pack(
        f"<{n}h", *(round(amp * math.sin(2 * math.pi * freq * i / rate)) for i in range(n))
    )


def const(value: int, n: int) -> bytes:
    return struct.pack(f"<{n}h", *([value] * n))


def test_constants() -> None:
    assert (SAMPLE_RATE, FRAME_MS, FRAME_SAMPLES, FRAME_BYTES) == (8000, 20, 160, 320)


def test_frame_validates_size_and_timestamp() -> None:
    Frame(bytes(FRAME_BYTES), 0)
    with pytest.raises(ValueError, match="320 bytes"):
        Frame(bytes(100), 0)
    with pytest.raises(ValueError, match=">= 0"):
        Frame(bytes(FRAME_BYTES), -20)


def test_rms() -> None:
    assert rms(b"") == 0.0
    assert rms(bytes(FRAME_BYTES)) == 0.0
    assert rms(const(1000, 160)) == pytest.approx(1000.0)
    assert rms(const(-1000, 160)) == pytest.approx(1000.0)
    assert rms(tone(1000, 8000, 0.1)) == pytest.approx(10000 / math.sqrt(2), rel=1e-3)


def test_dbfs() -> None:
    assert dbfs(bytes(FRAME_BYTES)) == -120.0
    assert dbfs(const(32767, 160)) == pytest.approx(0.0, abs=0.01)
    assert dbfs(const(3277, 160)) == pytest.approx(-20.0, abs=0.01)


def test_split_frames_pads_the_last() -> None:
    pcm = const(7, 400)  # 2.5 frames
    out = split_frames(pcm)
    assert [len(f) for f in out] == [FRAME_BYTES] * 3
    assert out[0] == const(7, 160)
    assert out[2] == const(7, 80) + bytes(160)
    assert split_frames(b"") == []
    assert split_frames(const(1, 320)) == [const(1, 160), const(1, 160)]


def test_split_frames_rejects_odd_bytes() -> None:
    with pytest.raises(ValueError, match="even number"):
        split_frames(b"\x00")


def test_resample_same_rate_is_identity() -> None:
    pcm = tone(440, 8000, 0.05)
    assert resample_linear(pcm, 8000, 8000) == pcm
    assert resample_linear(b"", 22050, 8000) == b""


def test_resample_length_and_passband() -> None:
    src = tone(1000, 22050, 1.0)
    out = resample_linear(src, 22050, 8000)
    assert len(out) == 2 * 8000
    inner = out[800:-800]  # leave out the filter's edges
    assert rms(inner) == pytest.approx(rms(src), rel=0.03)
    # still a 1 kHz tone: matches a reference tone at 8 kHz closely
    reference = tone(1000, 8000, 1.0)[800:-800]
    diff = struct.pack(
        f"<{len(inner) // 2}h",
        *(a - b for a, b in zip(frames.samples(inner), frames.samples(reference), strict=True)),
    )
    assert rms(diff) < 0.05 * rms(inner)


@pytest.mark.parametrize("freq", [5000, 6000, 9000])
def test_resample_low_pass_removes_content_above_new_nyquist(freq: int) -> None:
    """Without the anti-alias filter these tones would fold back to 3, 2 and 1 kHz."""
    src = tone(freq, 22050, 0.5)
    out = resample_linear(src, 22050, 8000)
    assert rms(out[800:-800]) < 0.02 * rms(src)


def test_resample_upsampling() -> None:
    out = resample_linear(tone(500, 8000, 0.5), 8000, 16000)
    assert len(out) == 2 * 8000
    assert rms(out[400:-400]) == pytest.approx(10000 / math.sqrt(2), rel=0.02)


def test_resample_rejects_bad_rates() -> None:
    with pytest.raises(ValueError, match="positive"):
        resample_linear(bytes(4), 0, 8000)


def _read_wav(path: Path) -> tuple[wave._wave_params, bytes]:
    with wave.open(str(path), "rb") as w:
        return w.getparams(), w.readframes(w.getnframes())


def test_stereo_recorder_aligns_channels_and_fills_gaps(tmp_path: Path) -> None:
    rec = StereoRecorder()
    caller = const(1000, 160)
    bot = const(-2000, 160)
    rec.add_caller(Frame(caller, 0))
    rec.add_caller(Frame(caller, 40))  # 20 ms missing → silence
    rec.add_bot(Frame(bot, 20))
    rec.add_bot(Frame(bot, 80))  # last slot, caller has nothing there
    assert rec.duration_ms == 100

    path = tmp_path / "call.wav"
    digest = rec.write(path)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()

    params, data = _read_wav(path)
    assert (params.nchannels, params.sampwidth, params.framerate) == (2, 2, 8000)
    assert params.nframes == 5 * FRAME_SAMPLES
    values = frames.samples(data)
    left, right = values[0::2], values[1::2]
    per_slot_left = [set(left[i * 160 : (i + 1) * 160]) for i in range(5)]
    per_slot_right = [set(right[i * 160 : (i + 1) * 160]) for i in range(5)]
    assert per_slot_left == [{1000}, {0}, {1000}, {0}, {0}]
    assert per_slot_right == [{0}, {-2000}, {0}, {0}, {-2000}]


def test_stereo_recorder_empty_and_deterministic(tmp_path: Path) -> None:
    digest = StereoRecorder().write(tmp_path / "e.wav")
    assert len(digest) == 64
    assert _read_wav(tmp_path / "e.wav")[0].nframes == 0

    def make() -> StereoRecorder:
        rec = StereoRecorder()
        for i, chunk in enumerate(split_frames(tone(300, 8000, 0.2))):
            rec.add_caller(Frame(chunk, i * FRAME_MS))
        return rec

    assert make().write(tmp_path / "a.wav") == make().write(tmp_path / "b.wav")


def test_stereo_recorder_places_unaligned_timestamps_in_their_slot(tmp_path: Path) -> None:
    rec = StereoRecorder()
    rec.add_caller(Frame(const(5, 160), 39))  # slot 1 (20–40 ms)
    rec.add_caller(Frame(const(6, 160), 25))  # same slot: replaces
    assert rec.duration_ms == 40
    rec.write(tmp_path / "x.wav")
    _, data = _read_wav(tmp_path / "x.wav")
    left = frames.samples(data)[0::2]
    assert set(left[:160]) == {0}
    assert set(left[160:]) == {6}
