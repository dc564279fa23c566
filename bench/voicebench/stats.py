"""Figures: nearest-rank percentiles, distributions, process CPU and memory, RTP jitter."""

from __future__ import annotations

import math
import os
import resource
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voice.audio.frames import FRAME_MS


def pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 1)


def dist(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "p50": pct(values, 50), "p95": pct(values, 95),
            "max": round(max(values), 1) if values else None}


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def processes_cpu_s(chosen: Callable[[str, list[str]], bool]) -> float:
    """CPU seconds (user + system) of every live process for which *chosen*(command name,
    the /proc stat fields after it) holds."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        if chosen(name, fields):
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def interval_stats(times: list[float], skip: int = 5) -> dict[str, Any]:
    """Deviation of consecutive intervals from 20 ms: p99 |dev| and intervals > 40 ms."""
    devs: list[float] = []
    late = 0
    for a, b in zip(times[skip:], times[skip + 1:], strict=False):
        interval = (b - a) * 1000
        devs.append(abs(interval - FRAME_MS))
        late += interval > 2 * FRAME_MS
    return {"intervals": len(devs), "p99_abs_dev_ms": pct(devs, 99), "over_40ms": late}
