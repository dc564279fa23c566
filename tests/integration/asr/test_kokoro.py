"""The virtual customers' voice (Kokoro-82M, voice.tts.kokoro) through Whisper base.

Whisper understood 26 of the 71 persona replies in espeak-ng Mandarin with the bot's hints
and 61 in this voice; these are replies espeak got wrong (misheard, or snapped to another
phrase) that must now come through.
"""

from __future__ import annotations

import pytest

from voice.asr.base import Hints
from voice.asr.models import prepare_whisper
from voice.asr.snap import pinyin_distance
from voice.asr.whisper_engine import WhisperEngine, WhisperSettings
from voice.tts import kokoro
from voice.tts.espeak import SAMPLE_RATE

pytestmark = pytest.mark.asr

IDENTITY = ["是的", "是我", "不是", "你打错了", "我是他家人", "你是谁"]
OFFER = ["我同意", "确认", "不需要", "太贵了", "多少钱", "怎么取消", "你是谁"]


@pytest.fixture(scope="module")
def voice() -> kokoro.KokoroSynthesizer:
    if not kokoro.available():
        pytest.skip("Kokoro voice not prepared (python -m voice.tts.kokoro prepare)")
    return kokoro.KokoroSynthesizer()


@pytest.fixture(scope="module")
def engine() -> WhisperEngine:
    path = prepare_whisper()
    if path is None:
        pytest.skip("Whisper base not available")
    whisper = WhisperEngine(WhisperSettings(path, lead_silence_s=0.4))
    whisper.warm_up()
    return whisper


def test_speech_is_8khz_pcm_of_a_plausible_length(voice: kokoro.KokoroSynthesizer) -> None:
    pcm = voice.synthesize("您好，请问是张伟先生吗？费用是58.5元。")
    seconds = len(pcm) / 2 / SAMPLE_RATE
    assert len(pcm) % 2 == 0
    assert 2.5 < seconds < 9.0, seconds
    assert max(abs(int.from_bytes(pcm[i:i + 2], "little", signed=True))
               for i in range(0, len(pcm), 2)) > 3000  # not silence


@pytest.mark.parametrize(("said", "hints", "want"), [
    ("是的是我", IDENTITY, None),  # exactly as said, not forced onto a hint
    ("没这个人", IDENTITY, None),  # espeak: snapped to nothing useful
    ("我确认", OFFER, "确认"),  # espeak: snapped to 我是他家人
    ("还是太贵了不要", OFFER, None),  # espeak: snapped to 我是他家人
    ("我在开车", ["方便", "好的", "可以", "不方便", "不用了", "没时间"], None),
])
def test_replies_come_through(voice: kokoro.KokoroSynthesizer, engine: WhisperEngine,
                              said: str, hints: list[str], want: str | None) -> None:
    heard = engine.transcript(voice.synthesize(said), Hints("yes_no", tuple(hints)))
    assert not heard.unclear, heard
    if want is not None:
        assert heard.text == want, heard
    else:  # not a hint: the words themselves, near what was said
        assert pinyin_distance(heard.text, said) <= 0.25, heard


def test_announcement_is_recognised(voice: kokoro.KokoroSynthesizer,
                                    engine: WhisperEngine) -> None:
    from voice.asr.announce import ANNOUNCEMENT_LISTEN, classify_announcement

    heard = engine.transcript(voice.synthesize("您拨打的号码是空号，请查证后再拨。"),
                              ANNOUNCEMENT_LISTEN)
    assert classify_announcement(heard.raw or heard.text) == "invalid_number", heard


def test_digits_cut_as_the_vad_cuts_them(voice: kokoro.KokoroSynthesizer,
                                         engine: WhisperEngine) -> None:
    """The session hands over an utterance with 200 ms before its onset; without the
    engine's lead silence Whisper base heard 一二三四 as 一二三子 (voice demo, keeps/undecided)."""
    pcm = voice.synthesize("一二三四")
    samples = [int.from_bytes(pcm[i:i + 2], "little", signed=True) for i in range(0, len(pcm), 2)]
    onset = next(i for i, s in enumerate(samples) if abs(s) > 300)
    cut = pcm[2 * max(0, onset - SAMPLE_RATE // 5):]
    heard = engine.transcript(cut, Hints("digits", ()))
    assert heard.text == "1234", heard
