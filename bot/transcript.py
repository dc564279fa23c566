"""The transcript writer: a subscriber of one call's events that stores its turns.

The channel (the voice session, a text call) publishes each turn on the event bus and goes
on at once; this sink writes the turns to the database in the order they were published, on
one worker thread of its own, so the event loop never waits for the database.  `submit`
runs any other unit of work of the call in the same queue, after the turns before it (the
recording and the close).  The channel calls `flush` before it sends the customer's words to
Rasa, so that the action finds the turn and notes the classifier's intent on it.

Besides the turns, it notes the gateway's `disclosure.interrupted` as a system turn naming the
disclosures the customer did not hear in full (bot/qa/flags.py reads the note), and keeps
with a customer turn whether the recogniser snapped or repaired its words (`asr_snapped`).

A failed write is logged with the call id and counted; the ones after it still run.
Each turn is its own unit of work, committed as soon as the worker reaches it: a process
killed mid-call loses only what is still queued (normally the turn in flight).  A turn of
a call whose attempt the dialer has ended (its lease taken back) is refused
(`callrecord.refused`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot import callrecord, events
from bot.events import CallEvent, EventBus
from bot.qa.flags import SKIPPED_NOTE, TALKED_OVER_TWICE_NOTE
from bot.store import CallRepo, Database
from bot.store.models import TranscriptTurn

log = logging.getLogger("waihu.transcript")

_SPEAKERS = {events.TURN_CUSTOMER: "customer", events.TURN_BOT: "bot",
             events.TURN_AGENT: "agent", events.TURN_SYSTEM: "system"}
_WRITTEN = events.TURN_EVENTS | {events.DISCLOSURE_INTERRUPTED}


def store_turn(session: Session, call_id: str, speaker: str, text: str, *,
               input_mode: str | None = None, asr_confidence: float | None = None,
               asr_snapped: bool | None = None, unheard_disclosures: list[str] | None = None,
               started_at: datetime | None = None,
               ended_at: datetime | None = None) -> TranscriptTurn | None:
    """One turn of the call's transcript, as the writer stores it; None when the call's
    record takes no more turns (its lease was taken back)."""
    if callrecord.refused(session, call_id, "turn"):
        return None
    return CallRepo(session).add_turn(call_id, speaker, text, input_mode=input_mode,
                                      asr_confidence=asr_confidence, asr_snapped=asr_snapped,
                                      unheard_disclosures=unheard_disclosures,
                                      started_at=started_at, ended_at=ended_at)


def interruption_note(data: dict[str, object]) -> tuple[str, list[str]]:
    """The system turn of a `disclosure.interrupted` event: its text and the disclosures.
    ``skipped``: never said (the customer cut in before them); otherwise talked over twice."""
    raw = data.get("disclosures")
    unheard = [str(d) for d in raw] if isinstance(raw, list | tuple) else []
    note = SKIPPED_NOTE if data.get("skipped") else TALKED_OVER_TWICE_NOTE
    return f"{note}：{'、'.join(unheard)}", unheard


def _snapped(data: dict[str, object]) -> bool | None:
    """Recorded for recognised speech only (a keyed or typed turn snaps nothing)."""
    if data.get("input_mode") != "speech" or "asr_snapped" not in data:
        return None
    return bool(data["asr_snapped"])


class TranscriptSink:
    """Use `attach(bus)`; `flush()` before a message goes to Rasa; `close()` at the end."""

    def __init__(self, db: Database, call_id: str) -> None:
        self.db = db
        self.call_id = call_id
        self.failures = 0
        self._executor = ThreadPoolExecutor(max_workers=1,
                                            thread_name_prefix=f"transcript-{call_id[:8]}")
        self._pending: set[asyncio.Future[None]] = set()
        self._detach: Callable[[], None] | None = None

    def attach(self, bus: EventBus) -> TranscriptSink:
        self._detach = bus.subscribe(self.on_event, call_id=self.call_id, names=_WRITTEN)
        return self

    def on_event(self, event: CallEvent) -> None:
        data = event.data
        if event.name == events.DISCLOSURE_INTERRUPTED:
            text, unheard = interruption_note(data)

            def note() -> None:
                with self.db.session() as session:
                    store_turn(session, self.call_id, "system", text,
                               unheard_disclosures=unheard, started_at=event.at)
            self.submit(note, "transcript")
            return
        speaker = _SPEAKERS[event.name]
        end_ms = data.get("end_offset_ms")
        ended = (None if end_ms is None
                 else event.at + timedelta(milliseconds=int(end_ms) - event.offset_ms))

        def write() -> None:
            with self.db.session() as session:
                store_turn(session, self.call_id, speaker, str(data.get("text") or ""),
                           input_mode=data.get("input_mode"),
                           asr_confidence=data.get("asr_confidence"),
                           asr_snapped=_snapped(data), started_at=event.at, ended_at=ended)
        self.submit(write, "transcript")

    def submit(self, work: Callable[[], None], what: str) -> asyncio.Future[None]:
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._run, work,
                                                            what)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        return future

    def _run(self, work: Callable[[], None], what: str) -> None:
        try:
            work()
        except Exception:
            self.failures += 1
            log.exception("call.%s_failed call_id=%s", what, self.call_id)

    async def flush(self) -> None:
        """Until everything queued so far is written (or has failed and been logged)."""
        while self._pending:
            await asyncio.wait(set(self._pending))

    async def close(self) -> None:
        """Stop following the call, write what is queued, let the thread go."""
        if self._detach is not None:
            self._detach()
            self._detach = None
        await self.flush()
        self._executor.shutdown(wait=False)
