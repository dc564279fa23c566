"""Whisper base through faster-whisper / CTranslate2: a batch engine with a hint prompt.

The recogniser only collects audio; ``finish`` decodes the utterance in one go:

1. 8 kHz → 16 kHz by linear interpolation (numpy; telephone audio has nothing above
   4 kHz for a better filter to keep);
2. log-mel features padded to a *short window* — ``window_s`` (10 s), not Whisper's 30 s.
   The CTranslate2 encoder accepts fewer frames, and encoding 1000 frames instead of 3000
   cuts a decode about threefold with the same transcripts (FINDINGS.md).  faster-whisper's
   ``transcribe`` always pads to 3000 frames (its ``chunk_length`` only changes how audio
   is split), so this engine calls the model's ``encode`` / ``generate`` itself, with the
   same prompt layout and token suppression ``transcribe`` uses;
3. one beam search at temperature 0 with the hint phrases as the previous-text
   prompt, no timestamps, and ``max_length`` bounded by the longest hint (a short window
   can loop: "三分，三分，三分…");
4. ``snap.interpret``: simplified script, digits, nearest hint phrase or unclear.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from bot.privacy import mask_id_digits
from voice.asr.base import AsrEngine, Hints, Recognizer, Transcript
from voice.asr.lexicon import customer_lexicon
from voice.asr.snap import SNAP_THRESHOLD, interpret

log = logging.getLogger("waihu.asr.whisper")

SAMPLE_RATE_IN = 8000
SAMPLE_RATE_MODEL = 16000
FRAMES_PER_SECOND = 100  # log-mel frames (hop 160 at 16 kHz)
MAX_FRAMES = 3000  # Whisper's full 30 s window

# Prompts for replies that have no phrase list: the vocabulary the reply is written in.
_DIGITS_PROMPT = "一二三四五六七八九零"
_SCORE_PROMPT = "一分，二分，三分，四分，五分，非常满意，满意，一般，不满意"


@dataclass(frozen=True)
class WhisperSettings:
    model_path: Path
    cpu_threads: int = 1  # per decode
    # Decodes at once: CTranslate2 model replicas (faster-whisper's ``num_workers``), each
    # on its own AsrWorker thread; the model releases the GIL, so one per core.
    workers: int = field(default_factory=lambda: max(1, min(2, os.cpu_count() or 1)))
    # Utterances with the same hints that queued together are decoded as one batch.
    max_batch: int = 4
    compute_type: str = "int8"
    beam_size: int = 5  # beam 1 misread 2 of 15 test phrases that beam 5 got right
    window_s: float = 10.0  # encoder window; 30.0 is stock Whisper
    snap_threshold: float = SNAP_THRESHOLD
    # Silence and noise decode to a hint (the prompt leaks) with no_speech 0.55-0.87 and
    # logprob below -1.0; espeak phrases measured no_speech <= 0.34.  Both → unclear.
    no_speech_threshold: float = 0.5
    logprob_threshold: float = -1.0
    min_level_dbfs: float = -50.0  # quieter than this throughout: not decoded at all
    # An unsnapped transcript below this acoustic confidence is noise or mumbling: unclear.
    min_free_confidence: float = 0.3
    # The same for an unlisted transcript of one character: mostly a scrap of the prompt
    # (Kokoro's 是的 came back as 打, from 别再打了, at 0.32, and went to Rasa as do-not-call).
    min_free_confidence_one_char: float = 0.5
    # Silence put before the utterance.  Whisper base drops or mangles the first or last
    # digit of a short digit string depending on where it sits in the window: 0.2 s before
    # an ID answer gave 1234 for Kokoro's 一二三四 (0 s: 123) and for espeak-ng's (0 s and
    # 0.4 s: 234), and 5678 for 五六七八 (0 s and 0.3 s: 56785678).  Other replies gained
    # nothing overall from it (espeak-ng lost 不是 at 0.4 s; Kokoro's 是的 became 不 at
    # 0.2 s), so they get none by default.
    lead_silence_s: float = 0.0
    digits_lead_silence_s: float = 0.2
    # Misheard customer phrases put right from the NLU examples (voice/asr/lexicon.py).
    repair_homophones: bool = True


class WhisperEngine(AsrEngine):
    name = "whisper"
    streaming = False

    def __init__(self, settings: WhisperSettings) -> None:
        self.settings = settings
        self.parallel = max(1, settings.workers)
        self.max_batch = max(1, settings.max_batch)
        self._loading = threading.Lock()  # two worker threads may open the first utterances
        self._model: Any = None  # faster_whisper.WhisperModel, loaded on first use
        self._tokenizer: Any = None
        self._suppress: list[int] = []

    def describe(self) -> str:
        s = self.settings
        return (f"whisper model={s.model_path} {s.compute_type} threads={s.cpu_threads} "
                f"workers={self.parallel} batch<={self.max_batch} beam={s.beam_size} "
                f"window={s.window_s:g}s")

    def load(self) -> None:
        with self._loading:
            self._load()

    def _load(self) -> None:
        if self._model is not None:
            return
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        started = time.perf_counter()
        model = WhisperModel(str(self.settings.model_path), device="cpu",
                             compute_type=self.settings.compute_type,
                             cpu_threads=self.settings.cpu_threads,
                             num_workers=self.parallel)
        self._tokenizer = Tokenizer(model.hf_tokenizer, True, task="transcribe", language="zh")
        self._suppress = list(get_suppressed_tokens(self._tokenizer, [-1]))
        if self.settings.repair_homophones:
            customer_lexicon()  # read now, not on a call's first reply
        self._model = model
        log.info("asr.whisper.loaded ms=%.0f %s", (time.perf_counter() - started) * 1000,
                 self.describe())

    def warm_up(self) -> None:
        self.load()
        self.decode(np.zeros(SAMPLE_RATE_MODEL // 2, dtype=np.float32), Hints())

    def open(self, hints: Hints) -> Recognizer:
        self.load()
        return WhisperRecognizer(self, hints)

    # -- decoding (blocking; called from the worker thread) --------------------------------

    def prompt_text(self, hints: Hints) -> str | None:
        if hints.phrases:
            return "，".join(hints.phrases)
        if hints.expect == "digits":
            return _DIGITS_PROMPT
        if hints.expect == "score":
            return _SCORE_PROMPT
        return None

    def max_new_tokens(self, hints: Hints, seconds: float) -> int:
        """Room for the longest hint, or for fast speech when any reply is possible."""
        by_audio = int(seconds * 8 * 2) + 8  # ~8 syllables/s, up to 2 tokens each
        longest = max((len(self._tokenizer.encode(p)) for p in hints.phrases), default=0)
        if hints.expect in ("yes_no", "score") and longest:
            # A little slack for "嗯，" and the like, but never less than a slow speaker's
            # words: a complaint made at a yes/no question was cut after its first clause
            # (你们一天打好几遍…, the 投诉 lost).  A loop this leaves is dropped (snap.py).
            return min(by_audio, max(2 * longest + 4, int(seconds * 10)))
        return by_audio

    def window_frames(self, hints: Hints) -> int:
        return max(1, round(self.settings.window_s * FRAMES_PER_SECOND))

    def decode(self, audio: np.ndarray, hints: Hints) -> tuple[str, float, float]:
        """16 kHz float audio → (raw text, average log-probability, no-speech probability)."""
        return self.decode_batch([audio], hints)[0]

    def decode_batch(self, audios: Sequence[np.ndarray], hints: Hints
                     ) -> list[tuple[str, float, float]]:
        """`decode` of several utterances with the same hints in one encoder and one
        generate call; each is padded to the window its own length gives, then all to the
        longest (one tensor), so a batch of short answers encodes as much as one does."""
        self.load()
        model, tokenizer = self._model, self._tokenizer
        window = self.window_frames(hints)
        features = [model.feature_extractor(audio) for audio in audios]
        lengths = [f.shape[-1] for f in features]
        padded = max(min(MAX_FRAMES, window * max(1, math.ceil(n / window))) for n in lengths)
        batch = np.stack([np.pad(f, ((0, 0), (0, padded - f.shape[-1]))) if f.shape[-1] < padded
                          else f[:, :padded] for f in features])
        encoded = model.encode(batch)

        prompt_text = self.prompt_text(hints)
        previous = tokenizer.encode(" " + prompt_text) if prompt_text else []
        prompt = model.get_prompt(tokenizer, previous[-200:], without_timestamps=True)
        new_tokens = max(self.max_new_tokens(hints, n / FRAMES_PER_SECOND) for n in lengths)
        results = model.model.generate(
            encoded, [prompt] * len(audios), beam_size=self.settings.beam_size,
            max_length=min(448, len(prompt) + new_tokens), return_scores=True,
            return_no_speech_prob=True, suppress_blank=True, suppress_tokens=self._suppress,
        )
        out = []
        for result in results:
            tokens = result.sequences_ids[0]
            # ctranslate2 scores are length-normalised; recover the average log-probability
            # the way faster-whisper does (length_penalty 1).
            avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
            out.append((tokenizer.decode(tokens).strip(), float(avg_logprob),
                        float(result.no_speech_prob)))
        return out

    def transcript(self, pcm: bytes, hints: Hints) -> Transcript:
        return self.transcribe_batch([pcm], hints)[0]

    def transcribe_batch(self, pcms: Sequence[bytes], hints: Hints) -> list[Transcript]:
        started = time.perf_counter()
        lead_s = (self.settings.digits_lead_silence_s if hints.expect == "digits"
                  else self.settings.lead_silence_s)
        lead = np.zeros(round(lead_s * SAMPLE_RATE_MODEL), np.float32)
        audible: dict[int, np.ndarray] = {}
        for i, pcm in enumerate(pcms):
            audio = upsample(pcm)
            if (len(audio) >= SAMPLE_RATE_MODEL // 10  # under 100 ms: nothing to decode
                    and 20 * math.log10(float(np.abs(audio).max()) + 1e-9)
                    >= self.settings.min_level_dbfs):
                audible[i] = np.concatenate([lead, audio])
        audios = list(audible.values())
        decoded = (self.decode_batch(audios, hints) if len(audios) > 1
                   else [self.decode(a, hints) for a in audios])
        heard = dict(zip(audible, decoded, strict=True))
        elapsed = (time.perf_counter() - started) * 1000
        return [self._conclude(*heard[i], hints, elapsed) if i in heard
                else Transcript("", 0.0, self.name, unclear=True, decode_ms=elapsed)
                for i in range(len(pcms))]

    def _conclude(self, raw: str, avg_logprob: float, no_speech: float, hints: Hints,
                  elapsed: float) -> Transcript:
        """The model's output → what the session gets: snapped, gated, or unclear."""
        meaning = interpret(raw, hints, self.settings.snap_threshold,
                            repair=customer_lexicon().repair if self.settings.repair_homophones
                            else None)
        silent = (no_speech > self.settings.no_speech_threshold
                  and avg_logprob < self.settings.logprob_threshold)
        acoustic = math.exp(min(0.0, avg_logprob)) * (1.0 - no_speech)
        off_list = (hints.expect == "yes_no" and not meaning.unclear
                    and (meaning.repaired or not meaning.snapped)
                    and meaning.text not in hints.phrases)
        floor = (self.settings.min_free_confidence_one_char if len(meaning.text) == 1
                 else self.settings.min_free_confidence)
        if off_list and acoustic < floor:
            meaning = replace(meaning, text="", unclear=True)
        confidence = 0.0 if meaning.unclear or silent else acoustic * (1.0 - meaning.distance)
        # Digits masked: the engine does not know whether it heard an answer to the ID question.
        log.debug("asr.whisper.decode raw=%r text=%r logprob=%.2f no_speech=%.2f ms=%.0f",
                  mask_id_digits(raw), mask_id_digits(meaning.text), avg_logprob, no_speech,
                  elapsed)
        return Transcript(
            text="" if silent else meaning.text, confidence=round(confidence, 3),
            engine=self.name, raw=raw, snapped=meaning.snapped,
            unclear=meaning.unclear or silent, decode_ms=elapsed,
        )


class WhisperRecognizer(Recognizer):
    def __init__(self, engine: WhisperEngine, hints: Hints) -> None:
        self.engine = engine
        self.hints = hints
        self._chunks: list[bytes] = []

    def feed(self, pcm: bytes) -> None:
        self._chunks.append(pcm)

    def finish(self) -> Transcript:
        pcm = b"".join(self._chunks)
        self._chunks.clear()
        return self.engine.transcript(pcm, self.hints)


def upsample(pcm: bytes) -> np.ndarray:
    """8 kHz s16 PCM → 16 kHz float32 in [-1, 1] by linear interpolation."""
    x = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
    if not len(x):
        return x
    out = np.empty(2 * len(x), dtype=np.float32)
    out[0::2] = x
    out[1:-1:2] = (x[:-1] + x[1:]) / 2
    out[-1] = x[-1]
    return out
