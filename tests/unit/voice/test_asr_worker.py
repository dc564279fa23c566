"""The ASR worker's queue for a batch engine: decodes of different calls run side by side,
decodes nobody waits for any more are never run, and utterances queued together go as one
batch with each caller getting its own transcript.  The engine is a fake that takes real
(sleeping) time in the worker's threads."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import pytest

from voice.asr.base import AsrEngine, AsrWorker, Hints, Recognizer, Transcript

YES_NO = Hints("yes_no", ("是的", "不是"))
SCORE = Hints("score", ("一分", "五分"))


class EchoRecognizer(Recognizer):
    def __init__(self) -> None:
        self.pcm = b""

    def feed(self, pcm: bytes) -> None:
        self.pcm += pcm

    def finish(self) -> Transcript:
        return Transcript(self.pcm.decode(), 1.0, "slow")


class SlowEngine(AsrEngine):
    """A batch engine whose transcript is the 'audio' (UTF-8 text) it was given; each batch
    takes ``seconds`` or, with ``gate``, until the gate opens."""

    name = "slow"

    def __init__(self, parallel: int = 1, max_batch: int = 1, seconds: float = 0.0,
                 gate: threading.Event | None = None) -> None:
        self.parallel, self.max_batch = parallel, max_batch
        self.seconds, self.gate = seconds, gate
        self.spans: list[tuple[float, float]] = []  # (start, end) of each batch
        self.batches: list[tuple[list[str], Hints]] = []
        self.lock = threading.Lock()

    def open(self, hints: Hints) -> Recognizer:
        return EchoRecognizer()

    def transcribe_batch(self, pcms: Sequence[bytes], hints: Hints) -> list[Transcript]:
        start = time.monotonic()
        with self.lock:
            self.batches.append(([p.decode() for p in pcms], hints))
        if self.gate is not None:
            assert self.gate.wait(5)
        time.sleep(self.seconds)
        with self.lock:
            self.spans.append((start, time.monotonic()))
        return [Transcript(p.decode(), 1.0, self.name) for p in pcms]


async def test_decodes_of_two_calls_overlap_on_a_two_way_engine() -> None:
    engine = SlowEngine(parallel=2, seconds=0.3)
    worker = AsrWorker(engine)
    started = time.monotonic()
    first, second = await asyncio.gather(worker.transcribe(b"call-1", YES_NO),
                                         worker.transcribe(b"call-2", YES_NO))
    took = time.monotonic() - started
    worker.close()
    assert (first.text, second.text) == ("call-1", "call-2")
    (a_start, a_end), (b_start, b_end) = sorted(engine.spans)
    assert b_start < a_end  # the second began before the first ended
    assert took < 0.55  # not 0.6 s one after the other


async def test_a_one_way_engine_still_decodes_one_at_a_time() -> None:
    engine = SlowEngine(parallel=1, seconds=0.1)
    worker = AsrWorker(engine)
    await asyncio.gather(worker.transcribe(b"a", YES_NO), worker.transcribe(b"b", SCORE))
    worker.close()
    (_, a_end), (b_start, _) = sorted(engine.spans)
    assert b_start >= a_end


async def test_a_queued_decode_whose_caller_gave_up_never_runs() -> None:
    gate = threading.Event()
    engine = SlowEngine(parallel=1, gate=gate)
    worker = AsrWorker(engine)
    running = asyncio.create_task(worker.transcribe(b"utterance", YES_NO))
    dropped = asyncio.create_task(worker.transcribe(b"pause", YES_NO))  # a pause decode
    await asyncio.sleep(0.05)
    dropped.cancel()  # the caller spoke again
    later = asyncio.create_task(worker.transcribe(b"next", YES_NO))
    await asyncio.sleep(0)
    gate.set()
    assert (await running).text == "utterance"
    assert (await later).text == "next"
    worker.close()
    assert dropped.cancelled()
    assert [texts for texts, _ in engine.batches] == [["utterance"], ["next"]]
    assert worker.skipped == 1


async def test_utterances_queued_together_go_as_one_batch_each_caller_its_own() -> None:
    gate = threading.Event()
    engine = SlowEngine(parallel=1, max_batch=3, gate=gate)
    worker = AsrWorker(engine)
    first = asyncio.create_task(worker.transcribe(b"first", YES_NO))
    await asyncio.sleep(0.05)  # running: the next ones queue behind it
    queued = [asyncio.create_task(worker.transcribe(text.encode(), hints)) for text, hints in
              [("a", YES_NO), ("score", SCORE), ("b", YES_NO), ("c", YES_NO), ("d", YES_NO)]]
    await asyncio.sleep(0.05)
    gate.set()
    results = await asyncio.gather(first, *queued)
    worker.close()
    assert [r.text for r in results] == ["first", "a", "score", "b", "c", "d"]
    # The oldest waiting goes with the others of its hints (up to 3); then the oldest left.
    assert [(texts, hints.expect) for texts, hints in engine.batches] == [
        (["first"], "yes_no"), (["a", "b", "c"], "yes_no"), (["score"], "score"),
        (["d"], "yes_no")]
    assert worker.batches == [1, 3, 1, 1]


async def test_an_engine_error_reaches_every_caller_of_the_batch() -> None:
    class Broken(SlowEngine):
        def transcribe_batch(self, pcms: Sequence[bytes], hints: Hints) -> list[Transcript]:
            raise RuntimeError("model crashed")

    worker = AsrWorker(Broken(parallel=1, max_batch=4))
    results = await asyncio.gather(worker.transcribe(b"a", YES_NO),
                                   worker.transcribe(b"b", YES_NO), return_exceptions=True)
    worker.close()
    assert [str(r) for r in results] == ["model crashed", "model crashed"]


async def test_closing_the_worker_releases_the_callers_still_queued() -> None:
    gate = threading.Event()
    worker = AsrWorker(SlowEngine(parallel=1, gate=gate))
    running = asyncio.create_task(worker.transcribe(b"a", YES_NO))
    waiting = asyncio.create_task(worker.transcribe(b"b", YES_NO))
    await asyncio.sleep(0.05)
    worker.close()
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert (await running).text == "a"


async def test_the_default_batch_decodes_one_after_another_through_a_recognizer() -> None:
    class Plain(AsrEngine):
        def open(self, hints: Hints) -> Recognizer:
            return EchoRecognizer()

    worker = AsrWorker(Plain())
    assert worker.slots == 1
    assert (await worker.transcribe(b"hello", YES_NO)).text == "hello"
    worker.close()
