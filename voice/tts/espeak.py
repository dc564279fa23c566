"""Speech synthesis engines behind one small base class, and the espeak-ng engine we ship.

Synthesis is blocking and slow (espeak-ng itself is fast, ~0.1 s a prompt, but resampling its
22 050 Hz output to 8 kHz in pure Python costs ~0.35 s per second of speech): the gateway
synthesises in a worker process (``voice.tts.worker``), and fixed prompts come from
``PromptCache`` instead.

espeak-ng runs as a program, once per prompt, not through pyttsx3 (the driver DESIGN.md
first chose): pyttsx3 2.99's espeak driver is not safe to rely on. Its ``runAndWait`` can
return at the *previous* utterance's end event, before the file is written, and a late end
event then writes that earlier utterance's audio to the next prompt's file; an engine created
per prompt leaves espeak calling back into dead drivers. A process per prompt has none of that
shared state and can be given a timeout (docs/architecture.md, "Text to speech").
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from abc import ABC, abstractmethod
from array import array
from pathlib import Path

from voice.audio.frames import resample_linear
from voice.tts.frontend import to_pinyin

SAMPLE_RATE = 8000
"""Every synthesizer returns 8 kHz 16-bit mono little-endian PCM, the telephony rate."""

# Bump when to_pinyin's output changes, so cached prompts made with old readings are redone.
FRONTEND_VERSION = 4  # 2: long phone numbers said in groups; 3: fixed readings (还款, 曾先生);
# 4: a key to press said with 键 (按1 → 按一键)


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
    """espeak-ng speaking ``to_pinyin(text)`` with the pinyin Mandarin voice."""

    def __init__(self, voice: str = "cmn-latn-pinyin", rate: int = 170) -> None:
        self.voice = voice
        self.rate = rate

    @property
    def voice_id(self) -> str:
        return f"espeak-ng/{self.voice}/rate{self.rate}/frontend{FRONTEND_VERSION}"

    def synthesize(self, text: str) -> bytes:
        pinyin = to_pinyin(text)
        if not pinyin:
            return b""
        with tempfile.TemporaryDirectory(prefix="waihu-tts-") as tmp:
            path = Path(tmp) / "out.wav"
            self._espeak_cli(pinyin, path)
            rate, pcm = read_wav(path)
        if not pcm:
            raise RuntimeError(f"espeak-ng produced no audio for {text!r}")
        return resample_linear(pcm, rate, SAMPLE_RATE)

    def _espeak_cli(self, pinyin: str, path: Path) -> None:
        exe = shutil.which("espeak-ng")
        if exe is None:
            raise RuntimeError("espeak-ng is not installed")
        # The text on stdin, never in argv, where a leading "-" would read as an option.
        subprocess.run(
            [exe, "-v", self.voice, "-s", str(self.rate), "-w", str(path), "--stdin"],
            input=pinyin.encode(), check=True, capture_output=True, timeout=30,
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
