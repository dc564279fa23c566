"""The gateway's offer loop (voice/call/desk_offer.py) with a fake desk and fake legs: an
offer nobody answers goes to the next agent, so does a declined one, nobody within the
wait limit is the no-agent path, and an agent who listens hears the call unheard before
taking it over.  The fake desk stands in for the database and the console: the test
answers its offers as an agent would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar

from bot import events
from bot.agents.handover import Handover, OfferSeen
from bot.events import CallEvent, InProcessBus
from tests.unit.voice.pipeline_helpers import tone
from voice.audio.frames import rms
from voice.call.desk_offer import DeskOffer
from voice.call.speaker import Speaker
from voice.call.timeline import Timeline
from voice.telephony.base import DialRequest, Leg
from voice.telephony.fake import FakeLeg, FakeTelephony, FarEnd

T = TypeVar("T")
HOLDING = "请稍等，正在为您转接人工客服"


@dataclass
class FakeDesk:
    """Agents offered in order (each once); the test answers through `listen`/`answer`."""

    agents: dict[int, str]  # agent id -> SIP URI, in the order they are offered
    offers: list[OfferSeen] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    ended: list[int] = field(default_factory=list)
    returned: set[int] = field(default_factory=set)  # escalations handed back to the bot

    async def open(self, call_id: str, reason: str) -> Handover | None:
        return None

    async def offer_next(self, escalation_id: int) -> OfferSeen | None:
        offered = {o.agent_id for o in self.offers}
        for agent_id, uri in self.agents.items():
            if agent_id not in offered:
                self.offers.append(OfferSeen(len(self.offers) + 1, agent_id, uri, None, False,
                                             "fewest calls today"))
                return self.offers[-1]
        return None

    async def offer(self, offer_id: int) -> OfferSeen:
        return self.offers[offer_id - 1]

    async def close_offer(self, offer_id: int, outcome: str) -> OfferSeen:
        if self.offers[offer_id - 1].outcome is None:
            self.answer(offer_id, outcome)
        return self.offers[offer_id - 1]

    async def set_status(self, escalation_id: int, status: str) -> None:
        self.statuses.append(status)

    async def end_call(self, agent_id: int, call_id: str) -> None:
        self.ended.append(agent_id)

    async def handed_back(self, escalation_id: int) -> bool:
        return escalation_id in self.returned

    # -- the console's side ---------------------------------------------------------------
    def listen(self, offer_id: int) -> None:
        self.offers[offer_id - 1] = replace(self.offers[offer_id - 1], listened=True)

    def answer(self, offer_id: int, outcome: str) -> None:
        self.offers[offer_id - 1] = replace(self.offers[offer_id - 1], outcome=outcome)

    def outcomes(self) -> list[tuple[int, str | None]]:
        return [(o.agent_id, o.outcome) for o in self.offers]

    async def wait_offer(self, agent_id: int, timeout: float = 5.0) -> OfferSeen:
        return await until(lambda: next((o for o in self.offers if o.agent_id == agent_id
                                         and o.outcome is None), None), timeout)


async def until(probe: Callable[[], T | None], timeout: float = 5.0) -> T:
    """The probe's first true value, polled every 20 ms."""
    deadline = time.monotonic() + timeout
    while not (found := probe()):
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.02)
    return found


class Tts:
    async def speech(self, text: str) -> bytes:
        return tone(400, 300)  # the bot's voice: 300 Hz


@dataclass
class Call:
    customer: FarEnd
    leg: Leg
    telephony: FakeTelephony
    desk: FakeDesk
    events: list[CallEvent]
    offer: DeskOffer

    async def run(self, offer_timeout_s: float = 0.4, wait_limit_s: float = 3.0) -> str:
        return await self.offer.run(Handover(7, "card-upgrade", offer_timeout_s, wait_limit_s),
                                    "request_human")

    def named(self, name: str) -> list[CallEvent]:
        return [e for e in self.events if e.name == name]


async def call(agents: dict[int, str], *agent_phones: FarEnd) -> Call:
    telephony = FakeTelephony()
    await telephony.start()
    customer = telephony.prepare(FarEnd())
    leg = await telephony.dial(DialRequest("sip:13800000000@trunk", "c1"))
    assert (await leg.wait_answer(1)).result == "answered"
    for phone in agent_phones:
        telephony.prepare(phone)
    bus = InProcessBus()
    seen: list[CallEvent] = []
    bus.subscribe(seen.append)
    timeline = Timeline("c1", bus)
    desk = FakeDesk(agents)
    offer = DeskOffer(leg, telephony, Speaker(leg, Tts(), timeline), timeline, desk,
                      holding_text=HOLDING, answer_s=2.0, poll_s=0.02)
    return Call(customer, leg, telephony, desk, seen, offer)


def voiced(frames: list[bytes]) -> int:
    return sum(1 for pcm in frames if rms(pcm) > 500)


async def in_background(work: Awaitable[str]) -> asyncio.Task[str]:
    return asyncio.ensure_future(work)


async def test_an_offer_nobody_answers_goes_to_the_next_agent() -> None:
    alice, bob = FarEnd(), FarEnd()
    c = await call({1: "sip:alice@127.0.0.1", 2: "sip:bob@127.0.0.1"}, bob)
    task = await in_background(c.run(offer_timeout_s=0.3))
    first = await c.desk.wait_offer(1)
    started = time.monotonic()
    second = await c.desk.wait_offer(2)
    waited = time.monotonic() - started
    assert 0.25 <= waited < 1.0, waited
    assert c.desk.outcomes()[0] == (1, "timed_out")
    assert len(c.telephony.legs) == 1  # no phone rang for an offer on the desk
    c.desk.answer(second.offer_id, "accepted")
    await until(lambda: len(c.telephony.legs) == 2)
    bob_leg = c.telephony.legs[1]
    assert isinstance(bob_leg, FakeLeg) and bob_leg.request.uri == "sip:bob@127.0.0.1"
    assert bob_leg.request.headers == {"X-Waihu-Call-Id": "c1", "X-Waihu-Reason": "request_human"}
    await until(lambda: c.named(events.CALL_BRIDGED))
    bob.hang_up()
    assert await asyncio.wait_for(task, 3) == "bridged"
    assert c.desk.ended == [2]  # bob's after-call work starts
    assert [e.data["agent_id"] for e in c.named(events.ESCALATION_OFFERED)] == [1, 2]
    assert c.named(events.ESCALATION_ENDED)[0].data["status"] == "bridged"
    assert alice.leg is None and first.agent_id == 1


async def test_a_declined_offer_goes_to_the_next_agent_at_once() -> None:
    bob = FarEnd()
    c = await call({1: "sip:alice@127.0.0.1", 2: "sip:bob@127.0.0.1"}, bob)
    task = await in_background(c.run(offer_timeout_s=5.0))
    first = await c.desk.wait_offer(1)
    c.desk.answer(first.offer_id, "declined")
    started = time.monotonic()
    second = await c.desk.wait_offer(2)
    assert time.monotonic() - started < 0.5  # not after the offer timeout
    c.desk.answer(second.offer_id, "accepted")
    await until(lambda: c.named(events.CALL_BRIDGED))
    c.customer.hang_up()
    assert await asyncio.wait_for(task, 3) == "bridged"
    assert c.desk.outcomes() == [(1, "declined"), (2, "accepted")]


async def test_nobody_within_the_wait_limit_is_the_no_agent_path() -> None:
    c = await call({1: "sip:alice@127.0.0.1"})
    started = time.monotonic()
    result = await asyncio.wait_for(c.run(offer_timeout_s=0.3, wait_limit_s=1.0), 5)
    assert result == "no_agent"
    assert 1.0 <= time.monotonic() - started < 2.5
    assert c.desk.outcomes() == [(1, "timed_out")]
    assert c.desk.statuses == ["failed"]
    assert "1.0 s" in c.offer.why or "1 s" in c.offer.why
    assert len(c.telephony.legs) == 1  # no agent's phone was dialled
    # the customer heard the holding line while they waited
    assert voiced([f.pcm for f in c.customer.heard]) >= 15
    assert c.named(events.TURN_BOT)[0].data["text"] == HOLDING


async def test_the_customer_hanging_up_withdraws_the_offer() -> None:
    c = await call({1: "sip:alice@127.0.0.1"})
    task = await in_background(c.run(offer_timeout_s=5.0))
    await c.desk.wait_offer(1)
    c.customer.hang_up()
    assert await asyncio.wait_for(task, 3) == "caller"
    assert c.desk.outcomes() == [(1, "withdrawn")]
    assert c.desk.statuses == ["abandoned"]


async def test_listen_first_unheard_then_take_over() -> None:
    agent_phone = FarEnd()
    c = await call({1: "sip:alice@127.0.0.1"}, agent_phone)
    task = await in_background(c.run(offer_timeout_s=0.5, wait_limit_s=10.0))
    offer = await c.desk.wait_offer(1)
    await asyncio.sleep(0.3)  # the holding line is going out meanwhile
    assert len(c.telephony.legs) == 1
    c.desk.listen(offer.offer_id)
    await until(lambda: c.named(events.ESCALATION_LISTENING))
    assert len(c.telephony.legs) == 2
    # listening lifts the offer timeout: the offer still rings after it
    await asyncio.sleep(0.8)
    assert c.desk.outcomes() == [(1, None)]
    # the agent hears the customer; the customer does not hear the agent
    customer_heard_before = len(c.customer.heard)
    agent_heard_before = len(agent_phone.heard)
    c.customer.say(tone(400, 1000))
    agent_phone.say(tone(400, 2000))
    await asyncio.sleep(0.6)
    by_agent = [f.pcm for f in agent_phone.heard[agent_heard_before:]]
    by_customer = [f.pcm for f in c.customer.heard[customer_heard_before:]]
    assert voiced(by_agent) >= 15
    assert voiced(by_customer) == 0
    # take over: the customer hears the agent now
    c.desk.answer(offer.offer_id, "accepted")
    await until(lambda: c.named(events.CALL_BRIDGED))
    assert len(c.telephony.legs) == 2  # the same phone, not dialled again
    bridged_at = len(c.customer.heard)
    agent_phone.say(tone(400, 2000))
    await asyncio.sleep(0.6)
    assert voiced([f.pcm for f in c.customer.heard[bridged_at:]]) >= 15
    c.customer.hang_up()
    assert await asyncio.wait_for(task, 3) == "bridged"
    assert c.desk.ended == [1]
    assert agent_phone.hung_up_by == "local"


async def test_the_agent_hands_the_call_back_to_the_bot() -> None:
    """The desk's hand-back while bridged: the agent's phone hangs up (their after-call work
    starts), the customer stays on the line and is the bot's again: what they say reaches
    the bot's side (the leg's frames), not the agent, and the bot's words reach them."""
    agent_phone = FarEnd()
    c = await call({1: "sip:alice@127.0.0.1"}, agent_phone)
    task = await in_background(c.run(offer_timeout_s=5.0))
    offer = await c.desk.wait_offer(1)
    c.desk.answer(offer.offer_id, "accepted")
    await until(lambda: c.named(events.CALL_BRIDGED))
    agent_phone.say(tone(400, 600))
    await asyncio.sleep(0.3)
    c.desk.returned.add(7)  # the console wrote returned_to_bot
    assert await asyncio.wait_for(task, 3) == "handed_back"
    assert agent_phone.hung_up_by == "local"  # we hung the agent's leg up
    assert not c.leg.closed.is_set() and c.customer.hung_up_by is None
    assert c.desk.ended == [1]
    [ended] = c.named(events.ESCALATION_ENDED)
    assert ended.data == {"escalation_id": 7, "status": "returned_to_bot", "agent_id": 1}
    assert c.offer.speaker.accepting_input
    assert any(e.data.get("text") == "坐席已交回机器人确认办理"
               for e in c.named(events.TURN_SYSTEM))
    # the customer's words are the bot's to hear again; the bot's words reach the customer
    while not c.leg.rx.empty():
        c.leg.rx.get_nowait()
    c.customer.say(tone(400, 400))
    await until(lambda: c.leg.rx.qsize() >= 10)
    heard_before = len(c.customer.heard)
    c.leg.play(tone(300, 400))
    await asyncio.sleep(0.6)
    assert voiced([f.pcm for f in c.customer.heard[heard_before:]]) >= 10
    c.customer.hang_up()


async def test_a_hand_back_after_the_customer_hung_up_is_a_bridged_call() -> None:
    agent_phone = FarEnd()
    c = await call({1: "sip:alice@127.0.0.1"}, agent_phone)
    task = await in_background(c.run(offer_timeout_s=5.0))
    offer = await c.desk.wait_offer(1)
    c.desk.answer(offer.offer_id, "accepted")
    await until(lambda: c.named(events.CALL_BRIDGED))
    c.customer.hang_up()
    c.desk.returned.add(7)
    assert await asyncio.wait_for(task, 3) == "bridged"
    assert c.named(events.ESCALATION_ENDED)[0].data["status"] == "bridged"
