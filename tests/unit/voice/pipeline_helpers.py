"""Test one call stage between a source and a sink (after pipecat's `run_test`).

    out = await run_processor(stage, [CallerAudio(pcm), Digit("1")])
    assert out == [...]

The source is the list of events, given to the stage's `process` in order; the sink
collects what the stage pushes.  `settle` is awaited before the events are returned (a
stage that works in tasks: decodes, timers).
"""

from __future__ import annotations

import asyncio
import math
from array import array
from collections.abc import Awaitable, Callable, Iterable

from voice.audio.frames import FRAME_BYTES, SAMPLE_RATE
from voice.call.events import CallerAudio, Event, Processor


class Sink:
    """Collects what a stage pushes."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Event]:
        return [event for event in self.events if isinstance(event, kind)]


def attach(processor: Processor) -> Sink:
    sink = Sink()
    processor.link(sink)
    return sink


async def run_processor(processor: Processor, events_in: Iterable[Event], *,
                        settle: Callable[[], Awaitable[object]] | None = None) -> list[Event]:
    """Every event through *processor*; what came out, in order."""
    sink = attach(processor)
    for event in events_in:
        await processor.process(event)
    if settle is not None:
        await settle()
    await asyncio.sleep(0)
    return sink.events


def tone(ms: int, freq: float = 440.0, level: float = 0.3) -> bytes:
    n = SAMPLE_RATE * ms // 1000
    return array("h", (int(level * 32767 * math.sin(2 * math.pi * freq * i / SAMPLE_RATE))
                       for i in range(n))).tobytes()


def audio(pcm: bytes) -> list[CallerAudio]:
    """PCM as the caller's 20 ms frames (the last one padded with silence)."""
    return [CallerAudio(pcm[at:at + FRAME_BYTES].ljust(FRAME_BYTES, b"\0"))
            for at in range(0, len(pcm), FRAME_BYTES)]


def silence(ms: int) -> list[CallerAudio]:
    return audio(bytes(ms * SAMPLE_RATE // 1000 * 2))
