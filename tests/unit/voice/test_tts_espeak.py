"""espeak-ng synthesis to 8 kHz PCM, the resampler and the WAV helpers."""

from __future__ import annotations

import math
import shutil
import wave
from array import array
from pathlib import Path

import pytest

from voice.tts.espeak import EspeakSynthesizer, read_wav, resample, write_wav

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


def _sine(freq: float, rate: int, seconds: float, amplitude: int = 10000) -> bytes:
    n = int(rate * seconds)
    return array("h", (round(amplitude * math.sin(2 * math.pi * freq * i / rate))
                       for i in range(n))).tobytes()


def _rms(pcm: bytes) -> float:
    samples = array("h", pcm)
    return math.sqrt(sum(s * s for s in samples) / len(samples)) if samples else 0.0


def _zero_crossings_per_second(pcm: bytes, rate: int) -> float:
    s = array("h", pcm)
    crossings = sum(1 for a, b in zip(s, s[1:], strict=False) if (a < 0) != (b < 0))
    return crossings / (len(s) / rate)


@pytest.mark.parametrize(
    ("src", "dst", "n_in", "n_out"),
    [(22050, 8000, 22050, 8000), (22050, 8000, 441, 160), (16000, 8000, 320, 160),
     (8000, 16000, 160, 320), (8000, 8000, 100, 100)],
)
def test_resample_length(src: int, dst: int, n_in: int, n_out: int) -> None:
    assert len(resample(bytes(2 * n_in), src, dst)) == 2 * n_out


def test_resample_keeps_a_speech_band_tone() -> None:
    out = resample(_sine(440, 22050, 1.0), 22050, 8000)
    assert _zero_crossings_per_second(out, 8000) == pytest.approx(880, rel=0.02)
    assert _rms(out) == pytest.approx(10000 / math.sqrt(2), rel=0.1)


def test_resample_damps_tones_above_the_new_nyquist() -> None:
    # 7 kHz would fold back to 1 kHz at 8 kHz; the low-pass must keep that alias weak.
    out = resample(_sine(7000, 22050, 0.5), 22050, 8000)
    assert _rms(out) < 0.35 * (10000 / math.sqrt(2))


def test_resample_empty_and_clipping() -> None:
    assert resample(b"", 22050, 8000) == b""
    loud = array("h", [32767, -32768] * 50).tobytes()
    out = array("h", resample(loud, 8000, 16000))
    assert max(out) <= 32767 and min(out) >= -32768


def test_wav_round_trip_and_stereo_mixdown(tmp_path: Path) -> None:
    pcm = _sine(300, 8000, 0.1)
    write_wav(tmp_path / "mono.wav", pcm)
    assert read_wav(tmp_path / "mono.wav") == (8000, pcm)

    with wave.open(str(tmp_path / "stereo.wav"), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(array("h", [100, 300, -200, -400]).tobytes())
    assert read_wav(tmp_path / "stereo.wav") == (16000, array("h", [200, -300]).tobytes())


def test_read_wav_rejects_8_bit(tmp_path: Path) -> None:
    with wave.open(str(tmp_path / "u8.wav"), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(8000)
        wav.writeframes(b"\x80" * 10)
    with pytest.raises(ValueError, match="8-bit WAV"):
        read_wav(tmp_path / "u8.wav")


def test_voice_id_names_voice_rate_and_frontend() -> None:
    assert EspeakSynthesizer().voice_id == "espeak-ng/cmn-latn-pinyin/rate170/frontend1"
    assert EspeakSynthesizer(rate=150).voice_id != EspeakSynthesizer().voice_id


def test_nothing_to_say_is_no_audio() -> None:
    assert EspeakSynthesizer().synthesize("，。 ") == b""


@needs_espeak
def test_real_synthesis_is_audible_8khz_speech() -> None:
    text = "您好，这里是客服中心，您的套餐每月58.5元。"
    pcm = EspeakSynthesizer().synthesize(text)
    seconds = len(pcm) / 2 / 8000
    # 21 syllables at ~3-6 syllables a second, plus pauses.
    assert 2.0 < seconds < 10.0
    assert _rms(pcm) > 500
    # Speech, not a constant: a quarter of the 20 ms frames are quiet (pauses) or loud.
    frames = [pcm[i:i + 320] for i in range(0, len(pcm) - 320, 320)]
    assert sum(1 for f in frames if _rms(f) > 1000) > len(frames) // 4


@needs_espeak
def test_espeak_cli_fallback_when_pyttsx3_writes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    synth = EspeakSynthesizer()
    monkeypatch.setattr(synth, "_speak_to_file", lambda pinyin, path: None)
    pcm = synth.synthesize("好的")
    assert 0.2 < len(pcm) / 2 / 8000 < 3.0
    assert _rms(pcm) > 300
