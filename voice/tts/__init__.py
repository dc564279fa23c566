"""Chinese text-to-speech: front end (text → spoken words → pinyin), engines, prompt cache."""

from voice.tts.cache import PromptCache, WarmReport
from voice.tts.espeak import SAMPLE_RATE, EspeakSynthesizer, Synthesizer
from voice.tts.frontend import to_pinyin, to_speakable

__all__ = [
    "SAMPLE_RATE", "EspeakSynthesizer", "PromptCache", "Synthesizer", "WarmReport",
    "to_pinyin", "to_speakable",
]
