"""The announcement screen: is the far end a carrier's recording, not a person?

Some exchanges answer (200 OK) and then play the announcement (空号, 停机, 关机,
正在通话中).  Until the caller's first input has been taken as a reply (`replied()`),
words that started within `window_s` of the answer are checked with
`classify_announcement(…, answered=True)` (stricter than for early media: the opening
您拨打的 must be there too, so "我手机快关机了" stays a customer).  The check uses the
turn's own transcript: caller speech is never decoded with announcement prompts.

In: `Transcribed`.  Out: `AnnouncementHeard` (and `heard` is set: the session ends the
call before Rasa hears it), or else the `CallerInput` the transcript is.  Every other event
passes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from voice.asr.announce import Announcement, classify_announcement
from voice.asr.base import Transcript
from voice.call.events import AnnouncementHeard, CallerInput, Event, Processor, Transcribed

log = logging.getLogger("waihu.session")


class AnnouncementScreen(Processor):
    def __init__(self, call_id: str, *, window_s: float,
                 replied: Callable[[], bool] = lambda: False) -> None:
        super().__init__()
        self.call_id = call_id
        self.window_s = window_s
        self.replied = replied
        self.heard = asyncio.Event()
        self.found: AnnouncementHeard | None = None

    def screening(self, start_ms: float) -> bool:
        """Could words that started at *start_ms* still be a carrier announcement?"""
        return (not self.replied() and not self.heard.is_set()
                and start_ms <= self.window_s * 1000)

    async def process(self, event: Event) -> None:
        if not isinstance(event, Transcribed):
            await self.push(event)
            return
        transcript = event.transcript
        if transcript is not None and await self._is_announcement(transcript, event.start_ms):
            return
        await self.push(CallerInput(CallerInput.kind_heard(transcript),
                                    transcript.text if transcript else "", transcript,
                                    event.start_ms, event.end_ms))

    async def _is_announcement(self, transcript: Transcript, start_ms: int) -> bool:
        if not self.screening(start_ms):
            return False
        heard = transcript.raw or transcript.text

        def classify() -> Announcement | None:  # pinyin and opencc load on first use
            return (classify_announcement(heard, answered=True)
                    or classify_announcement(transcript.text, answered=True))
        kind = await asyncio.to_thread(classify)
        if kind is None or not self.screening(start_ms):
            return False
        self.found = AnnouncementHeard(kind, heard, start_ms)
        log.info("call.announcement call_id=%s result=%s at_ms=%d heard=%r", self.call_id,
                 kind, start_ms, heard)
        await self.push(self.found)
        self.heard.set()
        return True
