"""espeak-ng synthesis to 8 kHz PCM and the WAV helpers (resampling is voice.audio.frames')."""

from __future__ import annotations

import math
import pickle
import shutil
import wave
from array import array
from pathlib import Path

import pytest

from voice.tts.espeak import FRONTEND_VERSION, EspeakSynthesizer, read_wav, write_wav

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


def _rms(pcm: bytes) -> float:
    samples = array("h", pcm)
    return math.sqrt(sum(s * s for s in samples) / len(samples)) if samples else 0.0


def test_wav_round_trip_and_stereo_mixdown(tmp_path: Path) -> None:
    pcm = array("h", range(-800, 800)).tobytes()
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
    assert EspeakSynthesizer().voice_id == (
        f"espeak-ng/cmn-latn-pinyin/rate170/frontend{FRONTEND_VERSION}")
    assert EspeakSynthesizer(rate=150).voice_id != EspeakSynthesizer().voice_id


def test_synthesizer_pickles_for_worker_processes() -> None:
    synth = pickle.loads(pickle.dumps(EspeakSynthesizer(rate=150)))
    assert (synth.voice, synth.rate) == ("cmn-latn-pinyin", 150)
    assert synth.voice_id == EspeakSynthesizer(rate=150).voice_id


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
def test_same_text_gives_the_same_audio_every_time() -> None:
    # pyttsx3's espeak driver could hand back the previous prompt's audio; the program cannot.
    synth = EspeakSynthesizer()
    long, short = "跟您确认一下，资费每月5元，免费试用到2026年12月1日。", "好的"
    first = synth.synthesize(long)
    assert synth.synthesize(short) != first
    assert synth.synthesize(long) == first


@needs_espeak
def test_text_starting_with_a_dash_is_spoken_not_parsed(tmp_path: Path) -> None:
    synth = EspeakSynthesizer()
    synth._espeak_cli("-h ni3 hao3", tmp_path / "out.wav")
    assert read_wav(tmp_path / "out.wav")[1]
