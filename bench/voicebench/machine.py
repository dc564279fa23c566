"""What else the machine is doing: busy-loop processes standing for other load
(`--cpu-load`), and the event loop's lag, GC pauses and slow callbacks (`--loop-profile`)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing as mp
import time
from collections import defaultdict
from typing import Any

from bench.voicebench.stats import dist, pct


def _burn(stop: Any) -> None:
    """A CPU hog (pure Python busy loop) until *stop* is set: stands for Rasa, the action
    server, a TTS worker or another engineer's job sharing the two cores."""
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


@contextlib.contextmanager
def cpu_load(processes: int) -> Any:
    if processes <= 0:
        yield
        return
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    burners = [ctx.Process(target=_burn, args=(stop,), daemon=True) for _ in range(processes)]
    for proc in burners:
        proc.start()
    try:
        yield
    finally:
        stop.set()
        for proc in burners:
            proc.join(5)


class LoopProbe:
    """Event-loop lag (a task asking for 10 ms sleeps) and, optionally, slow callbacks."""

    def __init__(self, slow_ms: float | None) -> None:
        self.lags: list[float] = []
        self.slow: list[tuple[float, float, str]] = []  # (wall ms, thread cpu ms, what)
        self.slow_ms = slow_ms
        self.gc_pauses: dict[int, list[float]] = defaultdict(list)  # generation -> ms
        self._gc_started = 0.0
        self._task: asyncio.Task[None] | None = None
        self._original = asyncio.events.Handle._run

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_pauses[info["generation"]].append(
                (time.perf_counter() - self._gc_started) * 1000)

    async def _probe(self) -> None:
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.01)
            self.lags.append((time.monotonic() - t - 0.01) * 1000)

    def __enter__(self) -> LoopProbe:
        self._task = asyncio.create_task(self._probe())
        gc.callbacks.append(self._gc)
        if self.slow_ms is not None:
            original, slow, limit = self._original, self.slow, self.slow_ms / 1000

            def timed(handle: asyncio.Handle) -> None:
                where = _describe(handle)
                t, c = time.perf_counter(), time.thread_time()
                original(handle)
                wall = time.perf_counter() - t
                if wall > limit:
                    slow.append((wall * 1000, (time.thread_time() - c) * 1000,
                                 f"{where} -> {_describe(handle)}"))

            asyncio.events.Handle._run = timed  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._gc)
        asyncio.events.Handle._run = self._original  # type: ignore[method-assign]
        if self._task is not None:
            self._task.cancel()

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {"lag_ms": dist(self.lags), "lag_p99_ms": pct(self.lags, 99),
                               "lags_over_20ms": sum(x > 20 for x in self.lags),
                               "lags_over_60ms": sum(x > 60 for x in self.lags),
                               "gc_pause_ms": {f"gen{g}": dist(v) for g, v
                                               in sorted(self.gc_pauses.items())}}
        if self.slow_ms is not None:
            by_what: dict[str, list[tuple[float, float]]] = defaultdict(list)
            for wall, cpu, what in self.slow:
                by_what[what].append((wall, cpu))
            top = sorted(by_what.items(), key=lambda kv: -sum(w for w, _ in kv[1]))[:15]
            out["slow_callbacks"] = {
                "over_ms": self.slow_ms, "count": len(self.slow),
                "top": [{"what": what, "n": len(v), "wall_ms_max": round(max(w for w, _ in v), 1),
                         "wall_ms_sum": round(sum(w for w, _ in v), 1),
                         "cpu_ms_sum": round(sum(c for _, c in v), 1)} for what, v in top]}
        return out


def _describe(handle: asyncio.Handle) -> str:
    """Which code a loop callback runs: a task's coroutine and line, or the function."""
    callback = getattr(handle, "_callback", None)
    task = getattr(callback, "__self__", None)
    if isinstance(task, asyncio.Task):
        coro: Any = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        while frame is not None:  # innermost awaited coroutine
            inner = getattr(coro, "cr_await", None)
            if inner is None or getattr(inner, "cr_frame", None) is None:
                break
            coro, frame = inner, inner.cr_frame
        line = frame.f_lineno if frame is not None else "end"
        return f"{getattr(coro, '__qualname__', coro)}:{line}"
    return getattr(callback, "__qualname__", repr(callback))
