"""A supervisor monitoring this call: listen, whisper or barge through their SIP phone.

The console (maybe in another process) writes the supervisor's request, mode changes and
stop into ``monitor_sessions`` (bot/monitoring.py); `CallMonitor`, started by the session
for every answered call, looks for a request every `wait_s` (one indexed read) and reads
a session under way back every `poll_s`, as the desk's offers are (desk_offer.py):

- a request for this call: the supervisor's phone is dialled (``DialRequest`` with the
  call id in a header, as an agent's), and once it answers it hears the customer and
  whoever speaks to them, the bot or the agent (voice/telephony/listen_in.py);
- the mode decides who hears the supervisor (`bot.monitoring.HEARD_BY`): ``listen``
  nobody; ``whisper`` the agent only, so on a bot-only call it is a listen, said as such
  (``heard_by`` ``nobody`` on the row, the wall and the event) -- an agent offered the
  call who listens in before taking over is an agent on it, and hears the whisper;
  ``barge`` the customer and the agent, or the customer over the bot.  Who hears is
  worked out again at every read: a whisper started on a bot-only call reaches the agent
  once they listen in or the call is bridged;
- it ends when the supervisor stops it on the wall, hangs up their phone, or the call
  ends (`stop`, from the session's end), and then the phone is hung up.

Events on the call's timeline: ``monitor.started`` (mode, who hears), ``monitor.mode``
(each change of mode or of who hears) and ``monitor.ended`` (why); system turns note the
start and end in the transcript.  What reaches the customer is in the recording (the
customer leg's tx frames): a barge is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol, TypeVar

from sqlalchemy.orm import Session

from bot import events, monitoring
from bot.monitoring import MonitorSeen
from bot.store import Database, in_write
from voice.call.timeline import Timeline
from voice.telephony.base import DialRequest, Leg, Telephony
from voice.telephony.listen_in import ListenIn

log = logging.getLogger("waihu.session")
T = TypeVar("T")
STOP_WAIT_S = 2.0  # at the call's end: how long the monitor may take to let go
MODE_LABELS = {"listen": "监听", "whisper": "密语", "barge": "强插"}


class MonitorPort(Protocol):
    """What the monitor asks of the store (`DatabaseMonitors`; a fake in unit tests)."""

    async def waiting(self, call_id: str) -> MonitorSeen | None: ...

    async def read(self, session_id: int) -> MonitorSeen: ...

    async def dialling(self, session_id: int) -> None: ...

    async def active(self, session_id: int, heard_by: str) -> None: ...

    async def heard(self, session_id: int, heard_by: str) -> None: ...

    async def ended(self, session_id: int, reason: str) -> MonitorSeen: ...


class DatabaseMonitors:
    """The monitor sessions' rows, each step its own unit of work off the event loop."""

    def __init__(self, db: Database,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.db = db
        self.clock = clock

    async def _write(self, work: Callable[[Session], T]) -> T:
        return await asyncio.to_thread(in_write, self.db, work)

    async def _read(self, work: Callable[[Session], T]) -> T:
        def run() -> T:
            with self.db.session() as session:
                return work(session)
        return await asyncio.to_thread(run)

    async def waiting(self, call_id: str) -> MonitorSeen | None:
        return await self._read(partial(monitoring.open_for_call, call_id=call_id))

    async def read(self, session_id: int) -> MonitorSeen:
        return await self._read(partial(monitoring.read, session_id=session_id))

    async def dialling(self, session_id: int) -> None:
        await self._write(partial(monitoring.mark_dialling, session_id=session_id))

    async def active(self, session_id: int, heard_by: str) -> None:
        await self._write(partial(monitoring.mark_active, session_id=session_id,
                                  at=self.clock(), heard=heard_by))

    async def heard(self, session_id: int, heard_by: str) -> None:
        await self._write(partial(monitoring.set_heard_by, session_id=session_id,
                                  heard=heard_by))

    async def ended(self, session_id: int, reason: str) -> MonitorSeen:
        return await self._write(partial(monitoring.mark_ended, session_id=session_id,
                                         at=self.clock(), reason=reason))


def bridged_agent(customer: Leg) -> Callable[[], Leg | None]:
    return lambda: customer.peer


def targets(customer: Leg, mode: str,
            agent: Callable[[], Leg | None] | None = None) -> Callable[[], Sequence[Leg]] | None:
    """The legs that send the supervisor's voice in *mode*, asked at each frame; None:
    nobody hears the supervisor.  *agent*: the agent's leg on the call (default: the one
    bridged to *customer*, its `peer`; the session's also gives the offered agent's phone
    while they listen in before taking over).  A whisper goes to the agent's leg; a barge
    to the customer's, and to a bridged agent's (one listening in hears the customer leg
    already, the supervisor in it)."""
    find = agent or bridged_agent(customer)
    if mode == "whisper":
        return lambda: [leg] if (leg := find()) is not None else []
    if mode == "barge":
        return lambda: [customer] if customer.peer is None else [customer, customer.peer]
    return None


class CallMonitor:
    """`start()` follows the monitor requests for the call on *leg*; `await stop()` at the
    call's end lets go of the supervisor (their phone is hung up)."""

    def __init__(self, leg: Leg, telephony: Telephony | None, timeline: Timeline,
                 port: MonitorPort, *, poll_s: float = 0.1, wait_s: float = 0.5,
                 answer_s: float = 20.0,
                 agent: Callable[[], Leg | None] | None = None) -> None:
        self.leg = leg
        self.agent = agent or bridged_agent(leg)  # the agent on the call (see `targets`)
        self.telephony = telephony  # None: the call is never monitored
        self.timeline = timeline
        self.port = port
        self.poll_s = poll_s  # a session under way is read back this often
        self.wait_s = wait_s  # a request for the call is looked for this often
        self.answer_s = answer_s
        self.served = 0  # sessions that reached the supervisor's phone
        self.tap: ListenIn | None = None  # while a supervisor is on the line
        self._task: asyncio.Task[None] | None = None

    @property
    def call_id(self) -> str:
        return self.timeline.call_id

    def start(self) -> CallMonitor:
        if self.telephony is not None and self._task is None:
            self._task = asyncio.create_task(self._follow(), name=f"monitor-{self.call_id}")
        return self

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        # The call has ended: the loop sees the leg closed and ends the session itself.
        done, _ = await asyncio.wait({task}, timeout=STOP_WAIT_S)
        if not done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        elif not task.cancelled() and task.exception() is not None:
            log.error("monitor.failed call_id=%s", self.call_id, exc_info=task.exception())

    async def _follow(self) -> None:
        while not self.leg.closed.is_set():
            try:
                seen = await self.port.waiting(self.call_id)
            except Exception:  # a database hiccup must not end the call's monitoring
                log.exception("monitor.read_failed call_id=%s", self.call_id)
                seen = None
            if seen is None:
                await asyncio.sleep(self.wait_s)
                continue
            await self._serve(seen)

    async def _serve(self, seen: MonitorSeen) -> None:
        await self.port.dialling(seen.session_id)
        log.info("monitor.dialling call_id=%s session=%d supervisor=%s", self.call_id,
                 seen.session_id, seen.supervisor)
        phone = await self._dial(seen)
        if phone is None:
            await self.port.ended(seen.session_id, "no_answer")
            self.timeline.system_turn("班组长话机未接通")
            return
        reason = "call_ended"
        tap = self.tap = ListenIn(self.leg, phone)
        tap.start()
        shown: tuple[str, str] | None = None  # (mode, who hears) as last applied
        try:
            while True:
                if self.leg.closed.is_set():
                    reason = "call_ended"
                    break
                if phone.closed.is_set():
                    reason = "supervisor_hung_up"
                    break
                seen = await self.port.read(seen.session_id)
                if seen.state == "ended":
                    reason = seen.end_reason or "stopped"
                    break
                shown = await self._apply(seen, tap, shown)
                await asyncio.sleep(self.poll_s)
        finally:
            tap.stop()
            self.tap = None
            with contextlib.suppress(Exception):
                await asyncio.shield(self._let_go(seen, phone, reason, shown is not None))

    async def _apply(self, seen: MonitorSeen, tap: ListenIn,
                     shown: tuple[str, str] | None) -> tuple[str, str]:
        """The mode as the supervisor has it now, and who hears them on the call as it is
        now (an agent may have been bridged or left)."""
        heard = monitoring.heard_by(seen.mode, self.agent() is not None)
        if shown == (seen.mode, heard):
            return shown
        tap.talk_to(targets(self.leg, seen.mode, self.agent))
        data: dict[str, Any] = {"session_id": seen.session_id,
                                "supervisor": seen.supervisor, "mode": seen.mode,
                                "heard_by": heard}
        if seen.mode == "whisper" and heard == "nobody":
            data["note"] = "no agent on the call: a whisper is heard by nobody (listening)"
        if shown is None:
            self.served += 1
            await self.port.active(seen.session_id, heard)
            self.timeline.publish(events.MONITOR_STARTED, **data)
            self.timeline.system_turn(f"班组长{MODE_LABELS[seen.mode]}开始")
        else:
            await self.port.heard(seen.session_id, heard)
            self.timeline.publish(events.MONITOR_MODE, **data)
        log.info("monitor.mode call_id=%s session=%d mode=%s heard_by=%s", self.call_id,
                 seen.session_id, seen.mode, heard)
        return seen.mode, heard

    async def _let_go(self, seen: MonitorSeen, phone: Leg, reason: str,
                      started: bool) -> None:
        await phone.hangup()
        ended = await self.port.ended(seen.session_id, reason)
        log.info("monitor.ended call_id=%s session=%d reason=%s", self.call_id,
                 seen.session_id, ended.end_reason)
        if started:
            self.timeline.publish(events.MONITOR_ENDED, session_id=seen.session_id,
                                  supervisor=seen.supervisor, reason=ended.end_reason)
            if not self.leg.closed.is_set():
                self.timeline.system_turn("班组长监听结束")

    async def _dial(self, seen: MonitorSeen) -> Leg | None:
        """The supervisor's phone, answered; None if it did not answer (or the call ended,
        or the supervisor stopped, while it rang)."""
        assert self.telephony is not None
        headers = {"X-Waihu-Call-Id": self.call_id, "X-Waihu-Reason": "monitor"}
        phone = await self.telephony.dial(DialRequest(
            seen.sip_uri, f"{self.call_id}-monitor-{seen.session_id}", headers=headers))
        outcome = await phone.wait_answer(self.answer_s)
        if outcome.result != "answered" or self.leg.closed.is_set():
            await phone.hangup()
            log.info("monitor.no_answer call_id=%s session=%d result=%s", self.call_id,
                     seen.session_id, outcome.result)
            return None
        return phone
