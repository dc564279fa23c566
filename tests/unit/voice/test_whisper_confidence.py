"""What the Whisper engine makes of a decode: the confidence gates after the model, with the
model replaced by fixed decodes (the real model is exercised in tests/integration/asr)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from voice.asr.base import Hints
from voice.asr.whisper_engine import WhisperEngine, WhisperSettings

IDENTITY = Hints("yes_no", ("是的", "是我", "不是", "你打错了", "转人工", "别再打了"))
SPEECH = (np.sin(np.arange(8000) / 5) * 8000).astype("<i2").tobytes()  # 1 s, loud enough


class FixedDecode(WhisperEngine):
    def __init__(self, raw: str, acoustic: float, no_speech: float = 0.0) -> None:
        super().__init__(WhisperSettings(Path("unused")))
        self.result = (raw, math.log(acoustic / (1 - no_speech)), no_speech)
        self.lengths: list[int] = []

    def decode(self, audio: np.ndarray, hints: Hints) -> tuple[str, float, float]:
        self.lengths.append(len(audio))
        return self.result


@pytest.mark.parametrize("raw, acoustic, unclear", [
    ("打", 0.32, True),  # one unlisted character at low confidence: a scrap of the prompt
    ("打", 0.6, False),
    ("没这个人", 0.32, False),  # longer unlisted words need only 0.3
    ("没这个人", 0.25, True),
    ("是的", 0.32, False),  # listed
])
def test_unlisted_words_need_acoustic_confidence(raw: str, acoustic: float,
                                                 unclear: bool) -> None:
    heard = FixedDecode(raw, acoustic).transcript(SPEECH, IDENTITY)
    assert heard.unclear is unclear, heard
    assert (heard.text == "") is unclear


def test_only_digits_get_lead_silence() -> None:
    engine = FixedDecode("一二三四", 0.9)
    engine.transcript(SPEECH, Hints("digits"))
    engine.transcript(SPEECH, IDENTITY)
    assert engine.lengths == [16000 + 3200, 16000]  # 0.2 s at 16 kHz before the digits


class CharTokens:
    """One token per character (Whisper's are about that for Chinese)."""

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]


def test_a_long_answer_to_a_yes_no_question_keeps_its_words() -> None:
    engine = WhisperEngine(WhisperSettings(Path("unused")))
    engine._tokenizer = CharTokens()
    hints = Hints("yes_no", ("是的", "不是", "转人工"))
    assert engine.max_new_tokens(hints, 0.8) == 10  # 是的: room for the hints and 嗯
    # 你们一天打好几遍烦不烦我要投诉你们 (16 characters) in 3.5 s
    assert engine.max_new_tokens(hints, 3.5) >= 2 * 16
    assert engine.max_new_tokens(Hints("free"), 3.5) == 64
