"""Speech for the gateway without blocking its event loop.

Fixed prompts are synthesised before a campaign (``warm_many``, several processes) and served
from the prompt cache's memory.  The prompts of one contact (its form of address, its own
trial end) are synthesised when the gateway claims the contact, before it dials
(``Voice.prepare``), in the worker processes.  A text nobody could list ahead of time (a
callback time read back to the caller) is synthesised in a worker process when it is said:
the engine call blocks for a second or more and holds the GIL, so it may not run on the loop
or in one of its threads.  Workers use the ``spawn`` start method (a forked copy of a gateway
would inherit its sockets, threads and locks) and run at a lower CPU priority than the
gateway, whose audio clock must not wait for a synthesis.

One ``TtsWorker`` speaks every campaign's voice: ``voice(synthesizer)`` binds it to one, the
worker processes keep a synthesizer per voice.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypedDict

from voice.tts.cache import PromptCache, WarmReport
from voice.tts.espeak import SAMPLE_RATE, Synthesizer

log = logging.getLogger("waihu.tts")

DEFAULT_TIMEOUT_S = 60.0  # one synthesis in a worker: a long prompt in Kokoro on a busy box
WORKER_NICE = 10  # the gateway's audio clock and ASR come first on a busy machine

# --- in the worker process -----------------------------------------------------------------

_worker_folder: Path | None = None
_worker_caches: dict[str, PromptCache] = {}  # voice id → this process's cache for it


def _init_worker(folder: Path, synthesizer: Synthesizer, parent: int | None = None) -> None:
    global _worker_folder  # noqa: PLW0603  # one folder per worker process, set by its initializer
    if parent is not None:
        _die_with(parent)
    _worker_folder = folder
    _worker_caches[synthesizer.voice_id] = PromptCache(folder, synthesizer, memory_bytes=0)
    try:
        os.nice(WORKER_NICE)
    except OSError as exc:  # not fatal: only slower calls on a busy machine
        log.warning("tts.worker_nice_failed error=%s", exc)


def _die_with(parent: int, every_s: float = 1.0) -> None:
    """End this worker when *parent* is gone.  A gateway killed with SIGKILL cannot shut
    its pool down, and the workers (a loaded model each, ~750 MB for Kokoro) used to live
    on for good; an orphan is adopted by another process, so its parent id changes."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        os._exit(0)

    threading.Thread(target=watch, name="tts-parent-watch", daemon=True).start()


def _synthesize_in_worker(text: str, synthesizer: Synthesizer | None = None
                          ) -> tuple[bytes, float]:
    """Synthesise and write the disk entry (atomically) in the worker; PCM and seconds.
    ``synthesizer``: the voice (default: the pool's own); each voice's engine is loaded
    once per process and kept."""
    if _worker_folder is None:
        raise RuntimeError("TTS worker process was not initialised")
    if synthesizer is None:
        cache = next(iter(_worker_caches.values()))
    elif synthesizer.voice_id in _worker_caches:
        cache = _worker_caches[synthesizer.voice_id]
    else:
        cache = PromptCache(_worker_folder, synthesizer, memory_bytes=0)
        _worker_caches[synthesizer.voice_id] = cache
    return cache.synthesize(text)


def _ready() -> bool:
    return _worker_folder is not None


# --- in the gateway ------------------------------------------------------------------------


def _pool(cache: PromptCache, processes: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        max_workers=processes, mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker, initargs=(cache.folder, cache.synthesizer, os.getpid()))


class _Slots:
    """At most ``n`` syntheses in the worker processes at once, so that a synthesis's timeout
    runs from its start, not from its place in a queue; a call waiting for its words
    (``urgent``) goes before a claimed contact's preparation."""

    def __init__(self, n: int) -> None:
        self.free = n
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._count = 0

    async def acquire(self, urgent: bool) -> None:
        if self.free > 0 and not self._waiting:
            self.free -= 1
            return
        self._count += 1
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (0 if urgent else 1, self._count, turn))
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()  # given the slot as it was cancelled: pass it on
            raise

    def release(self) -> None:
        while self._waiting:
            _, _, turn = heapq.heappop(self._waiting)
            if not turn.done():
                turn.set_result(None)
                return
        self.free += 1


class PrepareReport(TypedDict):
    prompts: int  # distinct texts asked for
    synthesised: int
    failed: int
    seconds: float


@dataclass(frozen=True)
class Voice:
    """A ``TtsWorker`` speaking one voice (a campaign's): what a call's speaker uses."""

    worker: TtsWorker
    cache: PromptCache

    async def speech(self, text: str) -> bytes:
        return await self.worker.speech(text, self.cache)

    async def prepare(self, texts: Mapping[str, str]) -> PrepareReport:
        return await self.worker.prepare(texts, self.cache)


class TtsWorker:
    """``await speech(text)``: the cache's PCM, or a synthesis in a worker process.

    Concurrent requests for the same missing text share one synthesis. A worker that does
    not answer within ``timeout_s`` is replaced (``TimeoutError`` for the waiting call).
    ``cache`` is the default voice; ``voice(synthesizer)`` speaks another through the same
    folder, memory and worker processes.
    """

    def __init__(self, cache: PromptCache, *, processes: int = 1,
                 timeout_s: float = DEFAULT_TIMEOUT_S,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if not 1 <= processes <= 2:
            raise ValueError("a gateway runs 1 or 2 TTS worker processes")
        self.cache = cache
        self.processes = processes
        self.timeout_s = timeout_s
        self._clock = clock
        self._executor: ProcessPoolExecutor | None = None
        self._inflight: dict[str, asyncio.Future[bytes]] = {}
        self._slots = _Slots(processes)
        self.stats = {"memory_hits": 0, "file_hits": 0, "synthesised": 0, "failed": 0}

    def voice(self, synthesizer: Synthesizer) -> Voice:
        """This worker speaking with ``synthesizer``'s voice."""
        return Voice(self, self.cache.voiced(synthesizer))

    async def start(self) -> None:
        """Start the worker processes now (a spawned Python takes ~0.5 s to import), so the
        first dynamic text of the first call does not pay for it."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool(), _ready)

    async def speech(self, text: str, cache: PromptCache | None = None) -> bytes:
        """8 kHz 16-bit mono PCM for ``text`` in ``cache``'s voice (default: this worker's):
        memory, recorded prompt, disk cache, or a synthesis in a worker process, kept for
        next time.  The last is for texts only known during the call (a callback time); a
        prompt that was planned but not prepared is logged as ``tts.unprepared``."""
        cache = cache or self.cache
        pcm = cache.peek(text)
        if pcm is not None:
            self.stats["memory_hits"] += 1
            return pcm
        # Reading a file (and resampling a recording that is not 8 kHz) is blocking work.
        loop = asyncio.get_running_loop()
        pcm = await loop.run_in_executor(None, cache.lookup, text)
        if pcm is not None:
            self.stats["file_hits"] += 1
            return pcm
        response = cache.response_for(text)
        if response is not None:  # a planned prompt: the warm-up or the claim missed it
            log.warning("tts.unprepared response=%s key=%s voice=%s: synthesised while the "
                        "call waits", response, cache.key(text)[:12], cache.synthesizer.voice_id)
        return await self._shared_synthesis(cache, text)

    async def prepare(self, texts: Mapping[str, str], cache: PromptCache | None = None
                      ) -> PrepareReport:
        """Make sure every text (text → response name) is ready to play in ``cache``'s
        voice: loaded into memory from disk, or synthesised now in the worker processes (the
        claim of a contact, before its call is dialled).  A failed synthesis is logged and
        counted; that prompt is tried again when it is said."""
        cache = cache or self.cache
        started = self._clock()
        cache.remember_responses(texts)
        missing = await asyncio.to_thread(_load_cached, cache, list(texts))
        results = await asyncio.gather(*(self._shared_synthesis(cache, text, urgent=False)
                                         for text in missing), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        for error in failed:
            log.warning("tts.prepare_failed voice=%s error=%s", cache.synthesizer.voice_id,
                        f"{type(error).__name__}: {error}")
        return PrepareReport(prompts=len(texts), synthesised=len(missing) - len(failed),
                             failed=len(failed), seconds=self._clock() - started)

    async def _shared_synthesis(self, cache: PromptCache, text: str,
                                urgent: bool = True) -> bytes:
        key = cache.key(text)
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(self._synthesize(cache, text, urgent))
            self._inflight[key] = future
            future.add_done_callback(lambda _: self._inflight.pop(key, None))
        # Shielded: one caller hanging up must not cancel the synthesis another awaits.
        return await asyncio.shield(future)

    async def _synthesize(self, cache: PromptCache, text: str, urgent: bool) -> bytes:
        loop = asyncio.get_running_loop()
        start = self._clock()
        await self._slots.acquire(urgent)
        try:
            pcm, _ = await asyncio.wait_for(
                loop.run_in_executor(self._pool(), _synthesize_in_worker, text,
                                     cache.synthesizer),
                self.timeout_s)
        except TimeoutError:
            self.stats["failed"] += 1
            log.error("tts.worker_timeout seconds=%.1f", self.timeout_s)
            self._kill_pool()
            raise
        except Exception:
            self.stats["failed"] += 1
            raise
        finally:
            self._slots.release()
        self.stats["synthesised"] += 1
        cache.remember(text, pcm)
        log.info("tts.worker_synthesised key=%s voice=%s seconds=%.3f audio_seconds=%.2f",
                 cache.key(text)[:12], cache.synthesizer.voice_id, self._clock() - start,
                 len(pcm) / 2 / SAMPLE_RATE)
        return pcm

    async def warm_many(self, texts: Iterable[str] | Mapping[str, str],
                        processes: int = 2) -> WarmReport:
        """``warm_many`` in a thread (it waits on its own processes), then every prompt is
        loaded into this process's memory."""
        texts = dict(texts) if isinstance(texts, Mapping) else list(texts)
        report = await asyncio.to_thread(warm_many, self.cache, texts, processes=processes,
                                         clock=self._clock)
        await asyncio.to_thread(self.cache.warm, texts)  # all cached now: only loads
        return report

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = _pool(self.cache, self.processes)
        return self._executor

    def _kill_pool(self) -> None:
        """A stuck worker cannot be cancelled: end its processes and start afresh later."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        # ProcessPoolExecutor has no public way to end a busy worker: its process table is
        # the only handle on them.
        for process in list(getattr(executor, "_processes", {}).values()):
            process.kill()
        executor.shutdown(wait=False, cancel_futures=True)

    async def aclose(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, True, cancel_futures=True)

    async def __aenter__(self) -> TtsWorker:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()


def _load_cached(cache: PromptCache, texts: list[str]) -> list[str]:
    """Load every cached or recorded text into memory; the distinct texts that are not."""
    missing: dict[str, str] = {}
    for text in texts:
        if cache.lookup(text) is None:
            missing.setdefault(cache.key(text), text)
    return list(missing.values())


def warm_many(cache: PromptCache, texts: Iterable[str] | Mapping[str, str], *,
              processes: int = 2,
              clock: Callable[[], float] = time.perf_counter) -> WarmReport:
    """``PromptCache.warm`` with the syntheses spread over ``processes`` worker processes.

    Blocking (run it before a campaign, or through ``TtsWorker.warm_many``). Texts already on
    disk or recorded are counted as cached and not loaded into memory here.
    """
    if isinstance(texts, Mapping):
        cache.remember_responses(texts)
    start = clock()
    report = WarmReport(total=0, cached=0, synthesised=0, failed=0, seconds=0.0,
                        slowest_seconds=0.0, errors={})
    seen: set[str] = set()
    pending: list[str] = []
    for text in texts:
        key = cache.key(text)
        if key in seen:
            continue
        seen.add(key)
        if key in cache.memory or cache.is_recorded(text) or cache.path(text).exists():
            report["cached"] += 1
        else:
            pending.append(text)
    report["total"] = len(seen)
    if pending and processes <= 1:
        sub = cache.warm(pending, load=False)
        report["synthesised"], report["failed"] = sub["synthesised"], sub["failed"]
        report["slowest_seconds"], report["errors"] = sub["slowest_seconds"], sub["errors"]
    elif pending:
        with _pool(cache, min(processes, len(pending))) as executor:
            futures: dict[Future[tuple[bytes, float]], str] = {
                executor.submit(_synthesize_in_worker, text): text for text in pending}
            for future in as_completed(futures):
                text = futures[future]
                try:
                    _, seconds = future.result()
                except Exception as exc:  # one bad prompt must not stop the warm-up
                    report["failed"] += 1
                    report["errors"][text] = f"{type(exc).__name__}: {exc}"
                    log.warning("tts.warm_failed key=%s error=%s", cache.key(text)[:12], exc)
                    continue
                report["synthesised"] += 1
                report["slowest_seconds"] = max(report["slowest_seconds"], seconds)
    report["seconds"] = clock() - start
    log.info("tts.warmed total=%d cached=%d synthesised=%d failed=%d seconds=%.2f processes=%d",
             report["total"], report["cached"], report["synthesised"], report["failed"],
             report["seconds"], processes)
    return report
