"""The gateway's heavy parts, started once per process: SIP stack, ASR engine, TTS worker.

`waihu run`, `waihu call` and `waihu simulate` all open a `VoiceParts` the same way, so the
ASR engine choice is logged once at start-up and the model is loaded before the first call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from voice.asr.base import AsrWorker
from voice.telephony.base import Telephony
from voice.tts.cache import PromptCache
from voice.tts.voices import DEFAULT, synthesizer_for
from voice.tts.worker import TtsWorker

log = logging.getLogger("waihu.voice")


@dataclass
class VoiceParts:
    telephony: Telephony
    asr: AsrWorker
    tts: TtsWorker
    cache: PromptCache


@dataclass(frozen=True)
class VoiceSettings:
    var: Path = Path("var")
    asr_engine: str = "auto"  # auto | vosk | whisper
    sip_host: str = "127.0.0.1"
    sip_port: int = 0
    outbound_proxy: str | None = None
    recorded_prompts: Path | None = None  # <dir>/<response>.wav override synthesis


@contextlib.asynccontextmanager
async def voice_parts(settings: VoiceSettings,
                      telephony: Telephony | None = None) -> AsyncIterator[VoiceParts]:
    from voice.asr import choose_engine

    engine = choose_engine(settings.asr_engine)
    await asyncio.to_thread(engine.warm_up)
    asr = AsrWorker(engine)
    # The default voice; each campaign's calls speak its own (Gateway._speech), through the
    # same folder, memory and worker processes.
    cache = PromptCache(settings.var / "tts" / "cache", synthesizer_for(DEFAULT),
                        recorded_dir=settings.recorded_prompts)
    # Two processes: a claimed contact's own prompts are synthesised before its dial, and a
    # neural voice takes a second or more per prompt.
    tts = TtsWorker(cache, processes=2)
    if telephony is None:
        from voice.telephony.baresip_telephony import BaresipTelephony

        telephony = BaresipTelephony(listen=(settings.sip_host, settings.sip_port),
                                     outbound_proxy=settings.outbound_proxy)
    await telephony.start()
    log.info("voice.ready asr=%s tts=%s", engine.describe(), cache.synthesizer.voice_id)
    try:
        yield VoiceParts(telephony, asr, tts, cache)
    finally:
        await telephony.close()
        asr.close()
        await tts.aclose()
