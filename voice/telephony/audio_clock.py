"""The audio clock: one thread per `BaresipTelephony` that moves the audio of every leg.

Why a thread and not the event loop: the loop runs every call's VAD, session logic, frame
listeners and the stack's callbacks, and shares the GIL with the ASR and transcript threads;
a full garbage collection (160-200 ms on a busy box) or a GIL/CPU wait made per-call pump
tasks late, and the stack then sent silence in the middle of the bot's sentences.  The clock
ticks on absolute 20 ms deadlines: it reads what each call received and writes bot audio
from the leg's play buffer (`call.audio` read/write are thread-safe cffi calls).  The event
loop does not take part, so a stalled loop (a slow callback, a full garbage collection, the
GIL held by ASR or database threads) no longer makes the stack send silence mid-sentence.

Frames go to the loop in batches: at most one `call_soon_threadsafe` is pending at a time,
and it hands every ready leg's frames, in order, to the `on_frame` listeners and `rx`.  A
clock that falls more than `RESYNC_MS` behind (stalled by the GIL or the CPU) skips ticks
rather than bursting.

The clock knows a leg only through `ClockedAudio` (`voice.telephony.leg_audio.LegAudio`
implements it), so this module does not load the baresip C library.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

from voice.audio.frames import FRAME_MS

log = logging.getLogger("waihu.sip")

TICK_S = FRAME_MS / 1000
RESYNC_MS = 200  # a direction (or the clock) lagging more than this jumps forward (gap = silence)


class ClockedAudio(Protocol):
    """What the clock needs of one leg's audio."""

    call_id: str
    on_failure: Callable[[], None]  # run on the loop when `tick` raised: end the call

    def tick(self, now: float) -> bool:
        """One 20 ms tick (clock thread); True if there are frames for the listeners."""
        ...

    def emit_out(self) -> None:
        """Hand the frames made so far to the listeners and `rx` (loop thread)."""
        ...


class AudioClock:
    """The 20 ms audio clock of one `BaresipTelephony`: a thread that moves every leg's audio.

    Every tick it reads what each call received and tops up each call's transmit buffer from
    the leg's play buffer, so the stack is fed on time whatever the event loop is doing.  The
    frames it produces go to the loop in batches: the legs with new frames are marked ready
    and at most one `call_soon_threadsafe` is outstanding, which emits them in order to the
    listeners and `rx` (a stalled loop gets everything in one go when it comes back).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._legs: tuple[ClockedAudio, ...] = ()
        self._lock = threading.Lock()  # guards _legs (copy on write), _ready, _scheduled
        self._ready: dict[ClockedAudio, None] = {}  # legs with frames for the loop, in order
        self._scheduled = False  # a dispatch is queued on the loop
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="waihu-audio-clock", daemon=True)
        self.reset_stats()

    # -- legs (any thread) -----------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def add(self, leg: ClockedAudio) -> None:
        with self._lock:
            self._legs = (*self._legs, leg)

    def remove(self, leg: ClockedAudio) -> None:
        with self._lock:
            self._legs = tuple(x for x in self._legs if x is not leg)

    def mark_ready(self, leg: ClockedAudio) -> None:
        """*leg* has frames for its listeners: emit them on the loop soon."""
        with self._lock:
            self._ready[leg] = None
            if self._scheduled:
                return
            self._scheduled = True
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody listens any more
            self._loop.call_soon_threadsafe(self._dispatch)

    async def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join, 2.0)

    # -- the loop side ---------------------------------------------------------------------
    def _dispatch(self) -> None:
        with self._lock:
            ready, self._ready = self._ready, {}
            self._scheduled = False
        self.dispatches += 1
        for leg in ready:
            leg.emit_out()

    # -- the clock thread ------------------------------------------------------------------
    def _run(self) -> None:
        deadline = time.monotonic()
        while not self._stop.wait(max(0.0, deadline - time.monotonic())):
            now = time.monotonic()
            late_ms = (now - deadline) * 1000
            self.ticks += 1
            if len(self.lateness_ms) < 500_000:
                self.lateness_ms.append(late_ms)
            for leg in self._legs:
                try:
                    if leg.tick(now):
                        self.mark_ready(leg)
                except Exception:  # a bug here must not leave a silent call up
                    log.exception("sip.pump_error call_id=%s", leg.call_id)
                    self.remove(leg)
                    with contextlib.suppress(RuntimeError):
                        self._loop.call_soon_threadsafe(leg.on_failure)
            deadline += TICK_S
            if time.monotonic() - deadline > RESYNC_MS / 1000:
                self.resyncs += 1  # stalled (GIL, CPU): skip ticks rather than burst
                deadline = time.monotonic()

    # -- figures ---------------------------------------------------------------------------
    def reset_stats(self) -> None:
        self.ticks = self.dispatches = self.resyncs = 0
        self.lateness_ms: list[float] = []

    def stats(self) -> dict[str, object]:
        """Tick lateness since `reset_stats` (for the benchmark)."""
        def pct(values: list[float], p: float) -> float | None:
            if not values:
                return None
            ordered = sorted(values)
            return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 1)

        late = list(self.lateness_ms)
        return {"ticks": self.ticks, "dispatches": self.dispatches, "resyncs": self.resyncs,
                "tick_late_ms_p50": pct(late, 50), "tick_late_ms_p99": pct(late, 99),
                "tick_late_ms_max": round(max(late), 1) if late else None,
                "ticks_late_over_20ms": sum(x > 20 for x in late),
                "ticks_late_over_100ms": sum(x > 100 for x in late)}
