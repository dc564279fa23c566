"""Vosk (Kaldi) streaming engine with a runtime grammar built from the hints.

``feed`` decodes as audio arrives (``AcceptWaveform`` at 8 kHz: Vosk resamples to the
model's rate itself), so ``finish`` only flushes the last few frames.

The grammar is the hint phrases, each written as words of the model's vocabulary: a
Mandarin phrase has no spaces, so it is cut greedily into the longest known words
(是的我是 → 是的 我 是); a phrase with any piece the model does not know is left out (Vosk
would otherwise drop the unknown word with a warning and listen for a different phrase).
``[unk]`` is added when the model has it, so that anything else comes back as ``[unk]``.

A Vosk grammar also accepts any *sequence* of its phrases, and models without ``[unk]``
force every sound onto some phrase; so for ``yes_no`` a result counts only when it is
exactly one phrase (after ``[unk]`` words are dropped it must still be one), else it is
unclear.  ``digits`` and ``score`` go through the same ``snap.interpret`` as Whisper.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voice.asr.base import AsrEngine, Hints, Recognizer, Transcript
from voice.asr.snap import SNAP_THRESHOLD, interpret

log = logging.getLogger("waihu.asr.vosk")

SAMPLE_RATE = 8000
UNK = "[unk]"
_DIGIT_WORDS = ("零", "一", "二", "三", "四", "五", "六", "七", "八", "九", "幺", "两")
_SCORE_PHRASES = ("一分", "二分", "三分", "四分", "五分", "一", "二", "三", "四", "五")
_MAX_WORD_CHARS = 8


@dataclass(frozen=True)
class VoskSettings:
    model_path: Path
    min_word_conf: float = 0.5  # a grammar word below this makes the utterance unclear
    snap_threshold: float = SNAP_THRESHOLD


def segment(phrase: str, known: Callable[[str], bool],
            max_chars: int = _MAX_WORD_CHARS) -> list[str] | None:
    """``phrase`` as known words, longest match first; None if some part is unknown.

    Space-separated tokens (Korean, English) are taken whole when known, else cut too.
    """
    words: list[str] = []
    for token in phrase.split():
        i = 0
        while i < len(token):
            for j in range(min(len(token), i + max_chars), i, -1):
                if known(token[i:j]):
                    words.append(token[i:j])
                    i = j
                    break
            else:
                return None
    return words or None


class VoskEngine(AsrEngine):
    name = "vosk"
    streaming = True

    def __init__(self, settings: VoskSettings) -> None:
        self.settings = settings
        self._model: Any = None  # vosk.Model, loaded on first use
        self._has_unk = False
        self._known: dict[str, bool] = {}
        self._left_out: set[str] = set()  # phrases already reported as not in the vocabulary

    def describe(self) -> str:
        return f"vosk model={self.settings.model_path}"

    def load(self) -> None:
        if self._model is not None:
            return
        import vosk

        vosk.SetLogLevel(-1)  # Kaldi's own logging goes to stderr; ours says what matters
        started = time.perf_counter()
        model = vosk.Model(str(self.settings.model_path))
        self._has_unk = model.vosk_model_find_word(UNK) >= 0
        self._model = model
        log.info("asr.vosk.loaded ms=%.0f unk=%s %s", (time.perf_counter() - started) * 1000,
                 self._has_unk, self.describe())

    def warm_up(self) -> None:
        self.load()

    def known(self, word: str) -> bool:
        if word not in self._known:
            self._known[word] = self._model.vosk_model_find_word(word) >= 0
        return self._known[word]

    def grammar(self, hints: Hints) -> dict[str, str] | None:
        """Grammar phrase (known words joined by spaces) → the hint it stands for.

        None: no grammar, the model's full language model listens (``free`` without hints).
        """
        if hints.expect == "digits":
            phrases: Sequence[str] = (*hints.phrases, *_DIGIT_WORDS)
        elif hints.expect == "score":
            phrases = (*hints.phrases, *_SCORE_PHRASES)
        elif hints.phrases:
            phrases = hints.phrases
        else:
            return None
        out: dict[str, str] = {}
        for phrase in phrases:
            words = segment(phrase, self.known)
            if words is None:
                if phrase not in self._left_out:  # once per phrase, not per utterance
                    self._left_out.add(phrase)
                    log.warning("asr.vosk.phrase_not_in_vocabulary phrase=%r", phrase)
                continue
            out.setdefault(" ".join(words), phrase)
        return out or None

    def open(self, hints: Hints) -> Recognizer:
        import vosk

        self.load()
        grammar = self.grammar(hints)
        if grammar is None:
            recognizer = vosk.KaldiRecognizer(self._model, SAMPLE_RATE)
        else:
            phrases = [*grammar, *([UNK] if self._has_unk else [])]
            recognizer = vosk.KaldiRecognizer(self._model, SAMPLE_RATE,
                                              json.dumps(phrases, ensure_ascii=False))
        recognizer.SetWords(True)
        return VoskRecognizer(self, recognizer, hints, grammar)

    def transcript(self, words: list[dict[str, Any]], hints: Hints,
                   grammar: dict[str, str] | None, decode_ms: float) -> Transcript:
        """Vosk's word results for one utterance → our transcript."""
        heard = [w for w in words if w.get("word") and w["word"] != UNK]
        raw = " ".join(str(w.get("word", "")) for w in words)
        if not heard:
            return Transcript("", 0.0, self.name, raw=raw, unclear=True, decode_ms=decode_ms)
        confs = [float(w.get("conf", 0.0)) for w in heard]
        confidence = sum(confs) / len(confs)
        text = " ".join(str(w["word"]) for w in heard)
        low = min(confs) < self.settings.min_word_conf
        unk = len(heard) < len(words)
        if grammar is not None and hints.expect not in ("digits", "score"):
            phrase = grammar.get(text)
            if phrase is None or low or unk:  # several phrases, or forced onto the grammar
                return Transcript("", 0.0, self.name, raw=raw, unclear=True,
                                  decode_ms=decode_ms)
            text = phrase
        meaning = interpret(text, hints, self.settings.snap_threshold)
        unclear = meaning.unclear or low
        return Transcript(
            text="" if unclear else meaning.text,
            confidence=0.0 if unclear else round(confidence * (1 - meaning.distance), 3),
            engine=self.name, raw=raw, snapped=meaning.snapped, unclear=unclear,
            decode_ms=decode_ms,
        )


class VoskRecognizer(Recognizer):
    def __init__(self, engine: VoskEngine, recognizer: Any, hints: Hints,
                 grammar: dict[str, str] | None) -> None:
        self.engine = engine
        self.recognizer = recognizer
        self.hints = hints
        self.grammar = grammar
        self._words: list[dict[str, Any]] = []  # results of endpoints Vosk found mid-way

    def feed(self, pcm: bytes) -> None:
        if pcm and self.recognizer.AcceptWaveform(pcm):
            # Vosk saw an endpoint (a pause) inside what our VAD still calls one utterance.
            self._words += json.loads(self.recognizer.Result()).get("result", [])

    def finish(self) -> Transcript:
        started = time.perf_counter()
        self._words += json.loads(self.recognizer.FinalResult()).get("result", [])
        elapsed = (time.perf_counter() - started) * 1000
        return self.engine.transcript(self._words, self.hints, self.grammar, elapsed)
