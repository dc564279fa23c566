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
import logging
from abc import ABC, abstractmethod
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

    @abstractmethod
    def open(self, hints: Hints) -> Recognizer: ...

    def warm_up(self) -> None:  # noqa: B027  # optional hook, empty by default
        """Load models / run one decode so the first call is not slow."""

    def describe(self) -> str:
        return self.name


class AsrWorker:
    """Runs blocking engine work off the event loop.

    Streaming engines get several threads (feeds of different calls interleave, each
    call's work stays ordered because the session awaits each step); batch engines
    (Whisper) get a small pool so that decodes queue instead of competing for the two
    cores, which keeps the audio pumps on time.
    """

    def __init__(self, engine: AsrEngine, threads: int | None = None) -> None:
        self.engine = engine
        self.executor = ThreadPoolExecutor(
            max_workers=threads or (4 if engine.streaming else 1),
            thread_name_prefix=f"asr-{engine.name}")

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
        """One whole utterance at once (announcements, tests)."""
        def work() -> Transcript:
            recognizer = self.engine.open(hints)
            recognizer.feed(pcm)
            return recognizer.finish()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, work)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
