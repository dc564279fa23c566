"""Speech recognition behind one small interface (DESIGN.md, "ASR").

An engine is loaded once per gateway process and opens one `Recognizer` per utterance.
The session feeds the recogniser the caller's 8 kHz 16-bit mono PCM while they speak (a
streaming engine decodes as it goes; a batch engine only collects) and calls `finish()`
when the VAD says the utterance ended.  `feed` and `finish` block: the session runs them
through `AsrWorker`, never on the event loop.

`Hints` carry what the bot's `listen` payload expects; engines use them as a grammar
(Vosk) or a prompt plus snap-to-nearest-phrase (Whisper).  A transcript the engine could
not match to anything usable comes back with `unclear=True`: the session then sends
`/asr_unclear` instead of text.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

log = logging.getLogger("waihu.asr")

Expect = Literal["yes_no", "digits", "score", "free"]


@dataclass(frozen=True)
class Hints:
    expect: Expect = "free"
    phrases: tuple[str, ...] = ()

    @classmethod
    def from_listen(cls, listen: dict[str, object] | None) -> Hints:
        """From a bot `listen` payload (`{"expect": …, "hints": […]}`)."""
        if not listen:
            return cls()
        expect = str(listen.get("expect") or "free")
        if expect not in ("yes_no", "digits", "score", "free"):
            expect = "free"
        raw = listen.get("hints") or []
        phrases = tuple(str(p) for p in raw) if isinstance(raw, list | tuple) else ()
        return cls(expect=expect, phrases=phrases)  # type: ignore[arg-type]  # checked above

    def with_control(self, phrases: tuple[str, ...]) -> Hints:
        """These hints plus ``phrases`` that a caller may say at any question ("转人工",
        "别再打了"), for the answers the engine matches against a list (``yes_no`` and
        ``score``); digits and free speech keep theirs."""
        if self.expect not in ("yes_no", "score") or not phrases:
            return self
        extra = tuple(p for p in phrases if p not in self.phrases)
        return Hints(self.expect, (*self.phrases, *extra))


@dataclass(frozen=True)
class Transcript:
    text: str  # normalised (simplified Chinese, digits as ASCII); "" if nothing usable
    confidence: float  # 0..1, the engine's own measure
    engine: str
    raw: str = ""  # what the engine said before normalisation / snapping
    snapped: bool = False  # text was replaced by the nearest hint phrase
    unclear: bool = False  # nothing usable: send /asr_unclear
    decode_ms: float = 0.0  # time spent in finish()
    alternatives: tuple[str, ...] = field(default=())


class Recognizer(ABC):
    """One utterance."""

    @abstractmethod
    def feed(self, pcm: bytes) -> None:
        """More audio of the utterance (any length; 8 kHz s16 mono)."""

    @abstractmethod
    def finish(self) -> Transcript:
        """The utterance ended: decode what is left and return the transcript."""


class AsrEngine(ABC):
    name: str = "asr"
    streaming: bool = False  # True: feed() does real work, finish() is cheap
    # A batch engine: how many decodes it runs at once (one per core: the model releases the
    # GIL) and how many utterances with the same hints one `transcribe_batch` takes.
    parallel: int = 1
    max_batch: int = 1

    @abstractmethod
    def open(self, hints: Hints) -> Recognizer: ...

    def transcribe_batch(self, pcms: Sequence[bytes], hints: Hints) -> list[Transcript]:
        """Whole utterances that share ``hints``, one transcript each in order.  An engine
        that can decode several in one pass overrides this; by default one after another."""
        out = []
        for pcm in pcms:
            recognizer = self.open(hints)
            recognizer.feed(pcm)
            out.append(recognizer.finish())
        return out

    def warm_up(self) -> None:  # noqa: B027  # optional hook, empty by default
        """Load models / run one decode so the first call is not slow."""

    def describe(self) -> str:
        return self.name


@dataclass(eq=False)
class _Queued:
    """A whole utterance waiting for a decode slot; its future is the caller's await."""

    pcm: bytes
    hints: Hints
    future: asyncio.Future[Transcript]


class AsrWorker:
    """Runs blocking engine work off the event loop.

    Streaming engines get several threads (feeds of different calls interleave, each
    call's work stays ordered because the session awaits each step).  Batch engines
    (Whisper) get `engine.parallel` threads, one per core, and their whole-utterance
    decodes (`transcribe`) go through a queue kept on the event loop:

    - when a thread is free, the oldest waiting utterance goes, together with the others
      waiting with the same hints (same prompt, same answer kind), up to
      `engine.max_batch`: decodes that queued at the same moment run as one batch;
    - a decode whose caller stopped waiting (a pause decode dropped because the caller
      spoke again, a hang-up) while it was still queued is never run (`skipped`).
    """

    def __init__(self, engine: AsrEngine, threads: int | None = None) -> None:
        self.engine = engine
        self.slots = threads or (4 if engine.streaming else max(1, engine.parallel))
        self.executor = ThreadPoolExecutor(max_workers=self.slots,
                                           thread_name_prefix=f"asr-{engine.name}")
        self._queue: list[_Queued] = []
        self._running = 0  # transcribe batches in the executor
        self.skipped = 0  # queued decodes dropped by their caller before they ran
        self.batches: list[int] = []  # size of each transcribe batch run (recent ones)

    async def open(self, hints: Hints) -> Recognizer:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self.engine.open, hints)

    async def feed(self, recognizer: Recognizer, pcm: bytes) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.executor, recognizer.feed, pcm)

    async def finish(self, recognizer: Recognizer) -> Transcript:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, recognizer.finish)

    async def transcribe(self, pcm: bytes, hints: Hints) -> Transcript:
        """One whole utterance at once (a batch engine's utterances, announcements).
        Cancelling the caller while the decode is queued drops it unrun."""
        loop = asyncio.get_running_loop()
        queued = _Queued(pcm, hints, loop.create_future())
        self._queue.append(queued)
        self._dispatch(loop)
        return await queued.future

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start batches while threads are free (runs on the event loop only)."""
        while self._running < self.slots:
            waiting = [q for q in self._queue if not q.future.done()]
            self.skipped += len(self._queue) - len(waiting)
            if not waiting:
                self._queue = []
                return
            hints = waiting[0].hints
            batch = [q for q in waiting if q.hints == hints][:max(1, self.engine.max_batch)]
            self._queue = [q for q in waiting if q not in batch]
            try:
                work = loop.run_in_executor(self.executor, self.engine.transcribe_batch,
                                            [q.pcm for q in batch], hints)
            except RuntimeError as exc:  # closed
                for q in batch:
                    q.future.set_exception(exc)
                continue
            self._running += 1
            self.batches = [*self.batches[-99:], len(batch)]
            work.add_done_callback(functools.partial(self._finished, loop, batch))

    def _finished(self, loop: asyncio.AbstractEventLoop, batch: list[_Queued],
                  done: asyncio.Future[list[Transcript]]) -> None:
        self._running -= 1
        cancelled = done.cancelled()  # the executor was shut down before it ran
        error = None if cancelled else done.exception()
        results = done.result() if not cancelled and error is None else []
        for i, queued in enumerate(batch):
            if queued.future.done():  # its caller stopped waiting while it ran
                continue
            if cancelled:
                queued.future.cancel()
            elif error is not None:
                queued.future.set_exception(error)
            elif i < len(results):
                queued.future.set_result(results[i])
            else:
                queued.future.set_exception(RuntimeError(
                    f"{self.engine.name} returned {len(results)} transcripts for {len(batch)}"))
        self._dispatch(loop)

    def close(self) -> None:
        for queued in self._queue:
            queued.future.cancel()
        self._queue = []
        self.executor.shutdown(wait=False, cancel_futures=True)
