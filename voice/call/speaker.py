"""The speaker: the bot's segments on the leg, and the caller's barge-in.

Each segment is synthesised (`Speech`: cached prompts at once, others off the loop) and
played to its end on the leg.  The caller may cut an ordinary segment off by speaking or
keying: queued audio is dropped at once (`leg.stop_playback`, within a frame or two) and
the rest of the reply is not said.  A disclosure (`barge_in: false`) cannot be cut off: it
plays through anything the caller says; if they talked over it, it is said again at once,
and if they talk over the repeat too, it is reported as interrupted (the next message
carries `disclosures_interrupted`, so no consent can rest on it).  While a disclosure
plays, what the caller says or keys is no answer (`accepting_input` is False).

In: `SpeechStarted` and `Digit` (barge-in), passed on after it; out: `Interruption` when
the bot was cut off.  Every turn the bot said goes on the timeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Literal, Protocol

from bot import events
from bot.channel import BotReply, BotSegment
from voice.audio.frames import FRAME_MS
from voice.call.events import (
    CallerHungUp,
    Digit,
    Event,
    Interruption,
    Processor,
    SpeechStarted,
)
from voice.call.timeline import Timeline
from voice.telephony.base import Leg

log = logging.getLogger("waihu.session")


class Speech(Protocol):
    """Text → 8 kHz PCM (voice.tts.worker.TtsWorker): cached prompts at once, others off
    the loop."""

    async def speech(self, text: str) -> bytes: ...


class Speaker(Processor):
    def __init__(self, leg: Leg, tts: Speech, timeline: Timeline, *,
                 caller_speaking: Callable[[], bool] = lambda: False) -> None:
        super().__init__()
        self.leg = leg
        self.tts = tts
        self.timeline = timeline
        self.caller_speaking = caller_speaking
        self.accepting_input = True  # False while a disclosure plays
        self.stops_ms: list[float] = []  # barge-in: how long each stop took
        self.reply_started_ms: float | None = None  # the last reply's first audio
        self._speaking: BotSegment | None = None  # segment going out now
        self._talked_over = False  # caller spoke during the current disclosure
        self._barged = asyncio.Event()

    async def process(self, event: Event) -> None:
        if isinstance(event, SpeechStarted | Digit):
            await self._barge_in("speech" if isinstance(event, SpeechStarted) else "dtmf")
        await self.push(event)

    async def speak(self, reply: BotReply) -> list[str]:
        """Say the segments in order; returns early if the caller barges in.  Returns the
        disclosures talked over twice."""
        interrupted: list[str] = []
        for n, segment in enumerate(reply.segments):
            if self.leg.closed.is_set():
                raise CallerHungUp
            pcm = await self.tts.speech(segment.text)
            start_ms = self.timeline.now_ms()
            if n == 0:
                self.reply_started_ms = start_ms
            if segment.disclosure:
                talked_over = await self.play(segment, pcm)
                if talked_over:  # said again once; a second talk-over goes to Rasa
                    self.timeline.system_turn("客户插话，重复声明")
                    if await self.play(segment, pcm):
                        interrupted.extend(segment.disclosure)
                        # after the turn it qualifies: the transcript notes it unheard
                        self.timeline.bot_turn(segment.text, start_ms)
                        self.timeline.publish(events.DISCLOSURE_INTERRUPTED, start_ms,
                                              disclosures=list(segment.disclosure))
                        continue
            elif await self.play(segment, pcm):
                self.timeline.bot_turn(segment.text + "（被打断）", start_ms)
                # The disclosures after the cut were never said: reported like those talked
                # over, so the flow does not count them as heard (a key pressed during the
                # hand-back line was taken as consent to a read-back nobody heard).
                skipped = [d for later in reply.segments[n + 1:] for d in later.disclosure]
                if skipped:
                    interrupted.extend(skipped)
                    self.timeline.publish(events.DISCLOSURE_INTERRUPTED, self.timeline.now_ms(),
                                          disclosures=skipped, skipped=True)
                break
            self.timeline.bot_turn(segment.text, start_ms)
        return interrupted

    async def play(self, segment: BotSegment, pcm: bytes) -> bool:
        """Play one segment to its end.  True if the caller barged in (an ordinary segment
        is then cut off) or talked over it (a disclosure, which plays on)."""
        self._speaking = segment
        self._talked_over = False
        self.accepting_input = not segment.disclosure
        self._barged.clear()
        self.leg.play(pcm)
        try:
            while self.leg.playing and not self.leg.closed.is_set():
                if segment.disclosure and self.caller_speaking():
                    self._talked_over = True
                if self._barged.is_set() and not segment.disclosure:
                    return True
                # asyncio.timeout, not wait_for: no task per frame per call (Python 3.11)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(FRAME_MS / 1000):
                        await self._barged.wait()
            return self._talked_over or self._barged.is_set()
        finally:
            self._speaking = None
            self.accepting_input = True

    async def _barge_in(self, why: Literal["speech", "dtmf"]) -> None:
        segment = self._speaking
        if segment is None:
            return
        if segment.disclosure:
            self._talked_over = True
            return
        started = self.timeline.now_ms()
        self.leg.stop_playback()
        self._barged.set()
        self.stops_ms.append(self.timeline.now_ms() - started)
        log.info("call.barge_in call_id=%s by=%s", self.timeline.call_id, why)
        await self.push(Interruption(why, self.stops_ms[-1]))

    async def say_failure(self, text: str) -> None:
        """A last sentence when the call failed: played to its end (30 s at the most),
        whatever happens."""
        if self.leg.closed.is_set():
            return
        with contextlib.suppress(Exception):
            pcm = await self.tts.speech(text)
            self.leg.play(pcm)
            for _ in range(int(30_000 / FRAME_MS)):
                if not self.leg.playing or self.leg.closed.is_set():
                    break
                await asyncio.sleep(FRAME_MS / 1000)
