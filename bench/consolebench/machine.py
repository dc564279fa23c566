"""What the rest of the machine was doing: the whole box's CPU use (from /proc/stat) and the
browsers' (every process named ``chromium``), so that an offer's latency can be read
against how busy the two cores were -- the bench's own 50 renderers included, which in a
call centre run on the agents' own PCs."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass

from bench.voicebench.stats import processes_cpu_s


@dataclass(frozen=True)
class CpuReading:
    busy: int  # jiffies, every core, since boot
    total: int
    browsers_s: float  # CPU seconds of the live chromium processes

    def busy_pct_since(self, before: CpuReading) -> float:
        total = self.total - before.total
        return round(100 * (self.busy - before.busy) / total, 1) if total else 0.0

    def browsers_pct_since(self, before: CpuReading, seconds: float) -> float:
        """The browsers' CPU as % of the machine (every core)."""
        cores = os.cpu_count() or 1
        return round(100 * (self.browsers_s - before.browsers_s) / seconds / cores, 1) \
            if seconds > 0 else 0.0


def read() -> CpuReading:
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return CpuReading(sum(fields) - idle, sum(fields), _browsers_s())


def _browsers_s() -> float:
    return processes_cpu_s(lambda name, _: name == "chromium")


async def settle(max_s: float, below_pct: float, window_s: float = 2.0) -> dict[str, float]:
    """Wait until the machine's CPU use over a *window_s* window falls below *below_pct*
    (the logins' password hashing and page loads are over), at most *max_s*; how long it
    took and the last window's use."""
    started = time.monotonic()
    busy = 100.0
    while time.monotonic() - started < max_s:
        before = read()
        await asyncio.sleep(window_s)
        busy = read().busy_pct_since(before)
        if busy < below_pct:
            break
    return {"waited_s": round(time.monotonic() - started, 1), "cpu_busy_pct": busy}
