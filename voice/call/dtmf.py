"""The DTMF collector: keyed digits into one caller input.

The bot's `listen.dtmf_max` says how many digits an answer has: the entry ends when that
many have been keyed, at `#`, or when no key follows for `interdigit_s`; with `dtmf_max`
0 or 1 every key is an answer of its own.  While a disclosure plays (`accepting()` is
False) keys are no answer.  The inter-digit timer sleeps on an injected `sleep`, so a test
decides when it runs out; `flush` is also what a hang-up calls for digits keyed just
before it.

In: `Digit`.  Out: `CallerInput("dtmf")` then `CallerDone`.  Every other event passes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from voice.call.events import CallerDone, CallerInput, Digit, Event, ListenFor, Processor
from voice.call.timeline import Timeline


class DtmfCollector(Processor):
    def __init__(self, timeline: Timeline, *, interdigit_s: float,
                 accepting: Callable[[], bool] = lambda: True,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        super().__init__()
        self.timeline = timeline
        self.interdigit_s = interdigit_s
        self.accepting = accepting
        self.sleep = sleep
        self.dtmf_max = 0
        self.digits = ""
        self._timer: asyncio.Task[None] | None = None

    def listen_for(self, listen: ListenFor) -> None:
        self.dtmf_max = listen.dtmf_max

    @property
    def busy(self) -> bool:
        """Digits are being keyed: the silence timer waits."""
        return bool(self.digits)

    async def process(self, event: Event) -> None:
        if not isinstance(event, Digit):
            await self.push(event)
            return
        if not self.accepting():
            return
        self.cancel_timer()
        if event.digit == "#":
            await self.flush()
            return
        self.digits += event.digit
        if self.dtmf_max <= 1 or len(self.digits) >= self.dtmf_max:
            await self.flush()
        else:
            self._timer = asyncio.create_task(self._time_out())

    async def _time_out(self) -> None:
        await self.sleep(self.interdigit_s)
        self._timer = None
        await self.flush()

    def cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None

    async def flush(self) -> None:
        """The digits keyed so far are one input (if there are any)."""
        digits, self.digits = self.digits, ""
        if digits:
            now = int(self.timeline.now_ms())
            await self.push(CallerInput("dtmf", digits, None, now, now))
            await self.push(CallerDone(self.timeline.now_ms()))
