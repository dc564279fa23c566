"""Speech synthesis engines behind one small base class, and the espeak-ng engine we ship.

Synthesis is blocking and slow (espeak-ng itself is fast, ~0.1 s a prompt, but resampling its
22 050 Hz output to 8 kHz in pure Python costs ~0.35 s per second of speech): the gateway
synthesises in a worker process (``voice.tts.worker``), and fixed prompts come from
``PromptCache`` instead.

The default backend runs the ``espeak-ng`` program once per prompt. pyttsx3 2.99's espeak
driver (``backend="pyttsx3"``) is kept for comparison but is not safe to rely on: its
``runAndWait`` can return at the *previous* utterance's end event, before the file is written,
and a late end event then writes that earlier utterance's audio to the next prompt's file; an
engine created per prompt leaves espeak calling back into dead drivers. A process per prompt
has none of that shared state and can be given a timeout.
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
from typing import Any, Literal

from voice.audio.frames import resample_linear
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
    """espeak-ng speaking ``to_pinyin(text)`` with the pinyin Mandarin voice."""

    def __init__(self, voice: str = "cmn-latn-pinyin", rate: int = 170,
                 backend: Literal["cli", "pyttsx3"] = "cli") -> None:
        self.voice = voice
        self.rate = rate
        self.backend = backend
        # pyttsx3 keeps one engine per driver for the whole process and is not thread-safe.
        self._lock = threading.Lock()
        # Held for the life of the synthesizer: pyttsx3 only keeps a weak reference, and an
        # engine re-created for every prompt leaves espeak calling back into the dead one's
        # driver ("ReferenceError: weakly-referenced object no longer exists" on stderr).
        self._engine: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # Picklable for worker processes (voice.tts.worker): the lock and engine stay behind.
        return {"voice": self.voice, "rate": self.rate, "backend": self.backend}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]  # re-initialise on unpickle
            state["voice"], state["rate"], state["backend"])

    @property
    def voice_id(self) -> str:
        suffix = "/pyttsx3" if self.backend == "pyttsx3" else ""
        return f"espeak-ng/{self.voice}/rate{self.rate}/frontend{FRONTEND_VERSION}{suffix}"

    def synthesize(self, text: str) -> bytes:
        pinyin = to_pinyin(text)
        if not pinyin:
            return b""
        with tempfile.TemporaryDirectory(prefix="waihu-tts-") as tmp:
            path = Path(tmp) / "out.wav"
            if self.backend == "pyttsx3":
                self._speak_to_file(pinyin, path)
            if not path.exists() or path.stat().st_size <= 44:
                # The default, or pyttsx3 wrote nothing (no driver, or a loop that ended early).
                self._espeak_cli(pinyin, path)
            rate, pcm = read_wav(path)
        if not pcm:
            raise RuntimeError(f"espeak-ng produced no audio for {text!r}")
        return resample_linear(pcm, rate, SAMPLE_RATE)

    def _speak_to_file(self, pinyin: str, path: Path) -> None:
        import pyttsx3  # imported here: its init probes drivers, which tests without espeak skip

        with self._lock, contextlib.redirect_stdout(io.StringIO()):  # it prints "Audio saved"
            if self._engine is None:
                self._engine = pyttsx3.init("espeak")
            engine = self._engine
            engine.setProperty("voice", f"sit/{self.voice}")
            engine.setProperty("rate", self.rate)
            engine.save_to_file(pinyin, str(path))
            engine.runAndWait()

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
