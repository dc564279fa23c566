"""The bot's voice: a campaign's ``voice`` setting → the synthesizer that speaks it.

Kokoro's Mandarin voices by default (``zf_xiaoyi``, or the male ``zm_yunxi``); espeak-ng
when the campaign asks for it, and as the fallback when Kokoro, its model or the chosen
voice is not prepared on this machine (logged as ``tts.voice_fallback``: the calls go on,
in a voice that is much harder to understand).  Recorded prompts win over both
(``voice.tts.cache``).

The virtual customers speak with ``voice.tts.kokoro.customer_voice`` (zf_xiaobei), which no
campaign can choose: a test can tell the bot's side of a recording from the customer's.
"""

from __future__ import annotations

import logging

from bot.campaigns.definition import BotVoice
from voice.tts import kokoro
from voice.tts.espeak import EspeakSynthesizer, Synthesizer

log = logging.getLogger("waihu.tts")

DEFAULT = BotVoice()
ESPEAK_RATE = 170  # espeak-ng words per minute at speed 1.0


def synthesizer(voice: BotVoice) -> Synthesizer:
    """Exactly the voice asked for (no fallback): for benchmarks and tests."""
    if voice.engine == "kokoro":
        return kokoro.KokoroSynthesizer(voice.name, speed=voice.speed, trim=True)
    return EspeakSynthesizer(voice.name, rate=round(ESPEAK_RATE * voice.speed))


def synthesizer_for(voice: BotVoice = DEFAULT) -> Synthesizer:
    """The synthesizer for a campaign's voice: the voice asked for if it can speak here,
    else espeak-ng at the same speed (logged with the reason and the fix)."""
    if voice.engine == "kokoro":
        missing = kokoro.unavailable(voice.name)
        if missing:
            log.warning("tts.voice_fallback voice=kokoro/%s using=espeak-ng reason=%r "
                        "hint='python -m voice.tts.kokoro prepare'", voice.name, missing)
            return synthesizer(BotVoice(engine="espeak", speed=voice.speed))
    return synthesizer(voice)
