"""Speech for the gateway without blocking its event loop.

Fixed prompts are synthesised before a campaign (``warm_many``, several processes) and served
from the prompt cache's memory. A text nobody could list ahead of time (a callback time read
back to the caller) is synthesised in a separate worker process: the engine call blocks for
about a second and its resampling holds the GIL, so neither may run on the loop or in one of
its threads. Workers use the ``spawn`` start method: a forked copy of a gateway would inherit
its sockets, threads and locks.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from pathlib import Path
from types import TracebackType

from voice.tts.cache import PromptCache, WarmReport
from voice.tts.espeak import SAMPLE_RATE, Synthesizer

log = logging.getLogger("waihu.tts")

DEFAULT_TIMEOUT_S = 30.0

# --- in the worker process -----------------------------------------------------------------

_worker_cache: PromptCache | None = None


def _init_worker(folder: Path, synthesizer: Synthesizer) -> None:
    global _worker_cache  # noqa: PLW0603  # one cache per worker process, set by its initializer
    _worker_cache = PromptCache(folder, synthesizer, memory_bytes=0)


def _synthesize_in_worker(text: str) -> tuple[bytes, float]:
    """Synthesise and write the disk entry (atomically) in the worker; PCM and seconds."""
    if _worker_cache is None:
        raise RuntimeError("TTS worker process was not initialised")
    return _worker_cache.synthesize(text)


def _ready() -> bool:
    return _worker_cache is not None


# --- in the gateway ------------------------------------------------------------------------


def _pool(cache: PromptCache, processes: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        max_workers=processes, mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker, initargs=(cache.folder, cache.synthesizer))


class TtsWorker:
    """``await speech(text)``: the cache's PCM, or a synthesis in a worker process.

    Concurrent requests for the same missing text share one synthesis. A worker that does
    not answer within ``timeout_s`` is replaced (``TimeoutError`` for the waiting call).
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
        self.stats = {"memory_hits": 0, "file_hits": 0, "synthesised": 0, "failed": 0}

    async def start(self) -> None:
        """Start the worker processes now (a spawned Python takes ~0.5 s to import), so the
        first dynamic text of the first call does not pay for it."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool(), _ready)

    async def speech(self, text: str) -> bytes:
        """8 kHz 16-bit mono PCM for ``text``: memory, recorded prompt, disk cache, or (a
        dynamic text) a synthesis in a worker process, kept for next time."""
        pcm = self.cache.peek(text)
        if pcm is not None:
            self.stats["memory_hits"] += 1
            return pcm
        # Reading a file (and resampling a recording that is not 8 kHz) is blocking work.
        loop = asyncio.get_running_loop()
        pcm = await loop.run_in_executor(None, self.cache.lookup, text)
        if pcm is not None:
            self.stats["file_hits"] += 1
            return pcm
        key = self.cache.key(text)
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(self._synthesize(text))
            self._inflight[key] = future
            future.add_done_callback(lambda _: self._inflight.pop(key, None))
        # Shielded: one caller hanging up must not cancel the synthesis another awaits.
        return await asyncio.shield(future)

    async def _synthesize(self, text: str) -> bytes:
        loop = asyncio.get_running_loop()
        start = self._clock()
        try:
            pcm, _ = await asyncio.wait_for(
                loop.run_in_executor(self._pool(), _synthesize_in_worker, text),
                self.timeout_s)
        except TimeoutError:
            self.stats["failed"] += 1
            log.error("tts.worker_timeout seconds=%.1f", self.timeout_s)
            self._kill_pool()
            raise
        except Exception:
            self.stats["failed"] += 1
            raise
        self.stats["synthesised"] += 1
        self.cache.remember(text, pcm)
        log.info("tts.dynamic key=%s seconds=%.3f audio_seconds=%.2f",
                 self.cache.key(text)[:12], self._clock() - start,
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
