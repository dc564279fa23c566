"""Speech synthesis engines behind one small base class, and the espeak-ng engine we ship.

Synthesis is blocking and slow (pyttsx3's ``runAndWait`` takes about a second and can
deadlock under threads, FINDINGS.md): the gateway calls ``synthesize`` in an executor or a
worker process, and fixed prompts come from ``PromptCache`` instead.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import tempfile
import threading
import wave
from abc import ABC, abstractmethod
from array import array
from pathlib import Path

from voice.tts.frontend import to_pinyin

SAMPLE_RATE = 8000
"""Every synthesizer returns 8 kHz 16-bit mono little-endian PCM, the telephony rate."""

# Bump when to_pinyin's output changes, so cached prompts made with old readings are redone.
FRONTEND_VERSION = 1


class Synthesizer(ABC):
    """Text in, 8 kHz 16-bit mono PCM out. Blocking."""

    @property
    @abstractmethod
    def voice_id(self) -> str:
        """Names the engine, voice and settings: part of every prompt cache key."""

    @abstractmethod
    def synthesize(self, text: str) -> bytes:
        """PCM for ``text``; raises ``RuntimeError`` if the engine produced nothing."""


class EspeakSynthesizer(Synthesizer):
    """espeak-ng through pyttsx3, speaking ``to_pinyin(text)`` with the pinyin Mandarin voice."""

    def __init__(self, voice: str = "cmn-latn-pinyin", rate: int = 170) -> None:
        self.voice = voice
        self.rate = rate
        # pyttsx3 keeps one engine per driver for the whole process and is not thread-safe.
        self._lock = threading.Lock()

    @property
    def voice_id(self) -> str:
        return f"espeak-ng/{self.voice}/rate{self.rate}/frontend{FRONTEND_VERSION}"

    def synthesize(self, text: str) -> bytes:
        pinyin = to_pinyin(text)
        if not pinyin:
            return b""
        with tempfile.TemporaryDirectory(prefix="waihu-tts-") as tmp:
            path = Path(tmp) / "out.wav"
            self._speak_to_file(pinyin, path)
            if not path.exists() or path.stat().st_size <= 44:
                # pyttsx3 wrote nothing (no driver, or a stuck loop): espeak-ng itself can.
                self._espeak_cli(pinyin, path)
            rate, pcm = read_wav(path)
        if not pcm:
            raise RuntimeError(f"espeak-ng produced no audio for {text!r}")
        return resample(pcm, rate, SAMPLE_RATE)

    def _speak_to_file(self, pinyin: str, path: Path) -> None:
        import pyttsx3  # imported here: its init probes drivers, which tests without espeak skip

        with self._lock, contextlib.redirect_stdout(io.StringIO()):  # it prints "Audio saved"
            engine = pyttsx3.init("espeak")
            engine.setProperty("voice", f"sit/{self.voice}")
            engine.setProperty("rate", self.rate)
            engine.save_to_file(pinyin, str(path))
            engine.runAndWait()

    def _espeak_cli(self, pinyin: str, path: Path) -> None:
        exe = shutil.which("espeak-ng")
        if exe is None:
            raise RuntimeError("espeak-ng is not installed")
        subprocess.run(
            [exe, "-v", self.voice, "-s", str(self.rate), "-w", str(path), pinyin],
            check=True, capture_output=True, timeout=30,
        )


def read_wav(path: Path) -> tuple[int, bytes]:
    """Sample rate and 16-bit mono PCM of a WAV file (stereo is mixed down)."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: {8 * wav.getsampwidth()}-bit WAV, expected 16-bit")
        rate, channels = wav.getframerate(), wav.getnchannels()
        data = wav.readframes(wav.getnframes())
    if channels == 1:
        return rate, data
    samples = array("h", data)
    mono = array("h", (sum(samples[i:i + channels]) // channels
                       for i in range(0, len(samples), channels)))
    return rate, mono.tobytes()


def write_wav(path: Path, pcm: bytes, rate: int = SAMPLE_RATE) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)


# TODO: switch to voice.audio.frames.resample_linear once the audio layer has it.
def resample(pcm: bytes, src_rate: int, dst_rate: int) -> bytes:
    """16-bit mono PCM from ``src_rate`` to ``dst_rate``: moving-average low-pass when
    downsampling (keeps espeak's hiss above 4 kHz from folding back), then linear interpolation.
    """
    samples = array("h", pcm)
    if src_rate == dst_rate or not samples:
        return samples.tobytes()
    if dst_rate < src_rate:
        width = max(1, round(src_rate / dst_rate))
        if width > 1:
            half = width // 2
            padded = [samples[0]] * half + list(samples) + [samples[-1]] * (width - half - 1)
            acc = sum(padded[:width])
            smoothed = [acc / width]
            for i in range(width, len(padded)):
                acc += padded[i] - padded[i - width]
                smoothed.append(acc / width)
        else:
            smoothed = [float(s) for s in samples]
    else:
        smoothed = [float(s) for s in samples]
    n_out = len(samples) * dst_rate // src_rate
    step = src_rate / dst_rate
    last = len(smoothed) - 1
    out = array("h")
    for k in range(n_out):
        pos = k * step
        i = int(pos)
        frac = pos - i
        value = smoothed[i] if i >= last else smoothed[i] + (smoothed[i + 1] - smoothed[i]) * frac
        out.append(max(-32768, min(32767, round(value))))
    return out.tobytes()
