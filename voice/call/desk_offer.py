"""A handed-over call offered to the campaign's agents through the desk (bot/agents).

When the call's campaign has agents, `Handoff` (transfer.py) comes here instead of
dialling its fixed agent URI.  The customer hears the holding line; the escalation is
offered to one agent at a time by the campaign's strategy (bot/agents/desk.py), and the
offer is followed by reading it back from the database every `poll_s` (the console, maybe
in another process, writes the agent's answer):

- **listen** (the agent listens first): their SIP phone is dialled and hears the customer
  and the bot, unheard (voice/telephony/listen_in.py); the offer timeout no longer runs;
- **accepted** (take over): the agent's phone is dialled if it is not yet on the line, the
  bot falls silent and the two legs are bridged (the recording goes on, and with an
  `AgentTranscriber` the agent's words are transcribed as ``turn.agent``: agent_side.py);
  when the bridge ends the agent's after-call work starts;
- **declined**, or no answer within the campaign's ``offer_timeout_s`` (``timed_out``),
  or the agent's phone not answering: the next agent;
- nobody within ``wait_limit_s`` (counted from the start of the wait, listening included):
  the offer still ringing is withdrawn and the bot's no-agent path runs as before;
- the customer hangs up: the offer is withdrawn, the escalation ``abandoned``;
- **handed back** (the agent's "交回机器人确认办理", bot/agents/handback.py): while bridged,
  the escalation is read back every `poll_s` too; when the console has set it
  ``returned_to_bot`` the bridge ends without the customer: the agent's phone hangs up (their
  after-call work starts as after any call) and `run` returns "handed_back", for the session
  to give the call back to the dialogue (``/agent_handback``), which reads the sale back.

The agent's phone is dialled only once the agent has listened or taken the call: an
offer that rings on the desk does not ring a phone.  Events: ``escalation.offered``,
``escalation.listening``, ``escalation.accepted``, ``call.bridged``, ``escalation.ended``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol, TypeVar

from sqlalchemy.orm import Session

from bot import events
from bot.agents import handback, handover
from bot.agents.handover import Handover, OfferSeen
from bot.channel import BotReply, BotSegment
from bot.store import Database, in_write
from voice.call.agent_side import AgentTranscriber
from voice.call.speaker import Speaker
from voice.call.timeline import Timeline
from voice.telephony.base import DialRequest, Leg, Telephony
from voice.telephony.listen_in import ListenIn

log = logging.getLogger("waihu.session")
T = TypeVar("T")
GONE = ("declined", "timed_out", "withdrawn")


class DeskPort(Protocol):
    """What the offer loop asks of the desk (`DatabaseDesk`; a fake in the unit tests)."""

    async def open(self, call_id: str, reason: str) -> Handover | None: ...

    async def offer_next(self, escalation_id: int) -> OfferSeen | None: ...

    async def offer(self, offer_id: int) -> OfferSeen: ...

    async def close_offer(self, offer_id: int, outcome: str) -> OfferSeen: ...

    async def set_status(self, escalation_id: int, status: str) -> None: ...

    async def end_call(self, agent_id: int, call_id: str) -> None: ...

    async def handed_back(self, escalation_id: int) -> bool: ...


class DatabaseDesk:
    """The desk's rows, each step its own unit of work off the event loop; times from
    *clock* (the wall clock: the console stamps the agents' answers with it too)."""

    def __init__(self, db: Database,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.db = db
        self.clock = clock

    async def _write(self, work: Callable[[Session], T]) -> T:
        return await asyncio.to_thread(in_write, self.db, work)

    async def open(self, call_id: str, reason: str) -> Handover | None:
        return await self._write(partial(handover.open_handover, call_id=call_id,
                                         reason=reason))

    async def offer_next(self, escalation_id: int) -> OfferSeen | None:
        return await self._write(partial(handover.offer_next, escalation_id=escalation_id,
                                         at=self.clock()))

    async def offer(self, offer_id: int) -> OfferSeen:
        def read() -> OfferSeen:
            with self.db.session() as session:
                return handover.read_offer(session, offer_id)
        return await asyncio.to_thread(read)

    async def close_offer(self, offer_id: int, outcome: str) -> OfferSeen:
        return await self._write(partial(handover.close_offer, offer_id=offer_id,
                                         outcome=outcome, at=self.clock()))

    async def set_status(self, escalation_id: int, status: str) -> None:
        await self._write(partial(handover.set_status, escalation_id=escalation_id,
                                  status=status))

    async def end_call(self, agent_id: int, call_id: str) -> None:
        await self._write(partial(handover.end_agent_call, agent_id=agent_id,
                                  call_id=call_id, at=self.clock()))

    async def handed_back(self, escalation_id: int) -> bool:
        def read() -> bool:
            with self.db.session() as session:
                return handback.requested(session, escalation_id)
        return await asyncio.to_thread(read)


@dataclass
class _Taken:
    offer: OfferSeen
    agent: Leg


class _CustomerGone(Exception):
    pass


class DeskOffer:
    """One handed-over call through the desk: `await DeskOffer(...).run(handover, reason)`
    returns "bridged", "no_agent", "caller" (the customer hung up while waiting) or
    "handed_back" (the agent gave the call back to the bot; the customer is still on)."""

    def __init__(self, leg: Leg, telephony: Telephony, speaker: Speaker, timeline: Timeline,
                 desk: DeskPort, *, holding_text: str, answer_s: float,
                 poll_s: float = 0.1,
                 stop_listening: Callable[[], None] = lambda: None,
                 agent_side: AgentTranscriber | None = None) -> None:
        self.leg = leg
        self.telephony = telephony
        self.speaker = speaker
        self.timeline = timeline
        self.desk = desk
        self.holding_text = holding_text
        self.answer_s = answer_s
        self.poll_s = poll_s
        self.stop_listening = stop_listening
        self.agent_side = agent_side  # None: the agent's words are not transcribed
        self.agent_uri: str | None = None  # the phone that took the call
        self.why = ""  # why nobody took it
        # The offered agent's phone while they listen in before taking over: a supervisor's
        # whisper reaches them there too (voice/call/monitor.py).
        self.listening: Leg | None = None

    @property
    def call_id(self) -> str:
        return self.timeline.call_id

    async def run(self, handover: Handover, reason: str) -> str:
        holding = asyncio.create_task(self._hold(), name=f"holding-{self.call_id}")
        try:
            taken = await self._find_agent(handover, reason)
        except BaseException as exc:
            holding.cancel()
            if not isinstance(exc, _CustomerGone):
                raise
            await self.desk.set_status(handover.escalation_id, "abandoned")
            self.timeline.system_turn("客户在等待坐席时挂机")
            self._publish_end(handover, "abandoned")
            return "caller"
        if taken is None:
            await self.desk.set_status(handover.escalation_id, "failed")
            self._publish_end(handover, "failed")
            with contextlib.suppress(asyncio.CancelledError):
                await holding  # the holding line ends before the apology
            return "no_agent"
        holding.cancel()
        return "handed_back" if await self._bridge(handover, taken) else "bridged"

    async def _hold(self) -> None:
        with contextlib.suppress(Exception):
            await self.speaker.speak(BotReply([BotSegment(self.holding_text)]))

    # -- the offers ------------------------------------------------------------------------
    async def _find_agent(self, handover: Handover, reason: str) -> _Taken | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + handover.wait_limit_s
        offer: OfferSeen | None = None
        offered_at = 0.0
        agent: Leg | None = None
        tap: ListenIn | None = None

        async def let_go() -> None:
            nonlocal offer, agent, tap
            self.listening = None
            if tap is not None:
                tap.stop()
            if agent is not None:
                await agent.hangup()
            offer, agent, tap = None, None, None

        try:
            while True:
                if self.leg.closed.is_set():
                    if offer is not None:
                        await self.desk.close_offer(offer.offer_id, "withdrawn")
                    raise _CustomerGone
                now = loop.time()
                if offer is None:
                    if now >= deadline:
                        self.why = f"nobody took the call within {handover.wait_limit_s:g} s"
                        return None
                    offer = await self.desk.offer_next(handover.escalation_id)
                    if offer is None:
                        await asyncio.sleep(self.poll_s)
                        continue
                    offered_at = loop.time()
                    log.info("escalation.offered call_id=%s agent=%d offer=%d", self.call_id,
                             offer.agent_id, offer.offer_id)
                    self.timeline.publish(events.ESCALATION_OFFERED, agent_id=offer.agent_id,
                                          offer_id=offer.offer_id, reason=reason,
                                          why=offer.reason)
                seen = await self.desk.offer(offer.offer_id)
                if seen.outcome == "accepted":
                    if agent is None:
                        agent = await self._dial(seen, reason, deadline)
                    if agent is None:  # took the call, but their phone did not answer
                        await self.desk.end_call(seen.agent_id, self.call_id)
                        self.why = f"agent {seen.agent_id}'s phone did not answer"
                        return None
                    self.listening = None
                    if tap is not None:
                        tap.stop()
                    return _Taken(seen, agent)
                if seen.outcome in GONE:
                    self.timeline.system_turn(f"坐席未接：{seen.outcome}")
                    log.info("escalation.not_taken call_id=%s agent=%d outcome=%s",
                             self.call_id, seen.agent_id, seen.outcome)
                    await let_go()
                    continue
                if seen.listened and agent is None:
                    agent = await self._dial(seen, reason, deadline)
                    if agent is None:
                        await self.desk.close_offer(seen.offer_id, "timed_out")
                        continue  # read back: the next round lets the offer go
                    tap = ListenIn(self.leg, agent)
                    tap.start()
                    self.listening = agent
                    self.timeline.publish(events.ESCALATION_LISTENING,
                                          agent_id=seen.agent_id, offer_id=seen.offer_id)
                    self.timeline.system_turn("坐席正在监听")
                elif agent is not None and agent.closed.is_set():  # hung up while listening
                    await self.desk.close_offer(seen.offer_id, "declined")
                    continue
                elif not seen.listened and now - offered_at >= handover.offer_timeout_s:
                    await self.desk.close_offer(seen.offer_id, "timed_out")
                    continue
                if now >= deadline:  # the customer has waited long enough
                    await self.desk.close_offer(seen.offer_id, "withdrawn")
                    continue  # an answer that came first (accepted) still stands
                await asyncio.sleep(self.poll_s)
        except BaseException as exc:
            if offer is not None and not isinstance(exc, _CustomerGone):
                # The call ends another way (its length limit, a failure): the desk must
                # not go on ringing, nor hold an agent on a call that is gone.
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._let_go_of(offer))
            with contextlib.suppress(Exception):
                await asyncio.shield(let_go())
            raise

    async def _let_go_of(self, offer: OfferSeen) -> None:
        seen = await self.desk.close_offer(offer.offer_id, "withdrawn")
        if seen.outcome == "accepted":
            await self.desk.end_call(seen.agent_id, self.call_id)

    async def _dial(self, offer: OfferSeen, reason: str, deadline: float) -> Leg | None:
        """The agent's phone, answered; None if it has no address or did not answer."""
        if offer.sip_uri is None:
            log.warning("escalation.no_phone call_id=%s agent=%d", self.call_id,
                        offer.agent_id)
            return None
        headers = {"X-Waihu-Call-Id": self.call_id, "X-Waihu-Reason": reason}
        leg = await self.telephony.dial(DialRequest(
            offer.sip_uri, f"{self.call_id}-agent-{offer.offer_id}", headers=headers))
        wait = max(1.0, min(self.answer_s, deadline - asyncio.get_running_loop().time()))
        outcome = await leg.wait_answer(wait)
        if outcome.result != "answered" or self.leg.closed.is_set():
            await leg.hangup()
            self.timeline.system_turn(f"坐席话机未接通：{outcome.result}")
            return None
        self.agent_uri = offer.sip_uri
        return leg

    # -- the bridge ------------------------------------------------------------------------
    async def _bridge(self, handover: Handover, taken: _Taken) -> bool:
        """The customer and the agent talk until either hangs up (False) or the agent hands
        the call back (True: the customer is still on the line, the bot's again)."""
        offer, agent = taken.offer, taken.agent
        self.leg.stop_playback()  # the bot falls silent
        self.speaker.accepting_input = False
        while not agent.rx.empty():  # nothing said before the take-over reaches the customer
            agent.rx.get_nowait()
        log.info("call.bridged call_id=%s agent=%d", self.call_id, offer.agent_id)
        self.timeline.publish(events.ESCALATION_ACCEPTED, agent_id=offer.agent_id,
                              offer_id=offer.offer_id)
        self.timeline.publish(events.CALL_BRIDGED, agent=offer.sip_uri,
                              agent_id=offer.agent_id)
        self.timeline.system_turn("已接通坐席")
        self.stop_listening()
        side = None if self.agent_side is None else self.agent_side.follow(
            agent, self.timeline, customer=self.leg)
        given_back = asyncio.Event()
        watch = asyncio.create_task(self._watch_hand_back(handover, given_back),
                                    name=f"handback-{self.call_id}")
        try:
            await self.leg.bridge(agent, until=given_back)
        finally:
            watch.cancel()
            try:
                await self.desk.end_call(offer.agent_id, self.call_id)
            finally:
                if side is not None:  # the last words, before the call is closed
                    await side.stop()
            handed_back = given_back.is_set() and not self.leg.closed.is_set()
            self._publish_end(handover, handback.RETURNED if handed_back else "bridged",
                              agent_id=offer.agent_id)
        if handed_back:
            self.leg.stop_playback()  # the agent's last frames
            self.speaker.accepting_input = True
            log.info("call.handed_back call_id=%s agent=%d", self.call_id, offer.agent_id)
            self.timeline.system_turn("坐席已交回机器人确认办理")
        return handed_back

    async def _watch_hand_back(self, handover: Handover, given_back: asyncio.Event) -> None:
        """Read the escalation back while bridged; set *given_back* when the agent has handed
        the call back.  A read that fails is tried again at the next poll (the call goes
        on bridged meanwhile)."""
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                if await self.desk.handed_back(handover.escalation_id):
                    given_back.set()
                    return
            except Exception:
                log.exception("escalation.handback_read_failed call_id=%s", self.call_id)

    def _publish_end(self, handover: Handover, status: str, **data: Any) -> None:
        self.timeline.publish(events.ESCALATION_ENDED, escalation_id=handover.escalation_id,
                              status=status, **data)
