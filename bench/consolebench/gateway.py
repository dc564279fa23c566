"""The calls, played as the voice gateway plays them, without SIP: each call is handed over
and offered (bot/agents/handover.py, each step its own write unit of work, as
voice/call/desk_offer.py's DatabaseDesk does), its offer read back every 100 ms (the
gateway's `poll_s`) while the conversation goes on, and the turns stored every 1-2 s as
bot/transcript.py's writer stores them (one unit of work per turn, refused once the
attempt is over).  At the end the offer is withdrawn (the customer hung up), which makes
the agent available again for the next round.

The time of each commit is taken (wall clock, ms) in the worker thread as its unit of work
returns, not when the event loop gets back to the call (which would hide the loop's own
delay from the figures)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

from sqlalchemy.orm import Session

from bench.consolebench.measure import Offered, Stored
from bench.consolebench.world import WaitingCall
from bot.agents import handover
from bot.store import Database, in_write
from bot.transcript import store_turn

T = TypeVar("T")
GATEWAY_POLL_S = 0.1  # voice/call/desk_offer.py: DeskOffer's poll_s
# What is said while the desk rings: customer and bot by turns (one with a phone number, which
# the desk masks).
LINES = [("customer", "喂？还在吗？"), ("bot", "请您稍等，客服马上接听。"),
         ("customer", "我的号码是13812345678，上个月被多扣了钱"),
         ("bot", "好的，您的情况我已经记录下来了。"), ("customer", "要等多久啊"),
         ("bot", "马上就好，感谢您的耐心。")]


@dataclass
class Played:
    offers: list[Offered] = field(default_factory=list)
    turns: list[Stored] = field(default_factory=list)
    not_offered: int = 0  # nobody could take the call (no available agent)
    errors: list[str] = field(default_factory=list)


def now_ms() -> float:
    return time.time() * 1000


def _store_turn(db: Database, call_id: str, speaker: str, text: str
                ) -> tuple[int | None, float]:
    """One turn as the transcript writer stores it: its number (None: refused) and when
    the commit returned."""
    at = datetime.now(UTC)
    with db.session() as session:
        turn = store_turn(session, call_id, speaker, text, input_mode="speech",
                          asr_confidence=0.9 if speaker == "customer" else None,
                          started_at=at, ended_at=at)
        seq = None if turn is None else int(turn.seq)
    return seq, now_ms()


def _committed(db: Database, work: Callable[[Session], T]) -> tuple[T, float]:
    """*work* in the desk's write unit of work, and when its commit returned."""
    result = in_write(db, work)
    return result, now_ms()


def _read_offer(db: Database, offer_id: int) -> handover.OfferSeen:
    with db.session() as session:
        return handover.read_offer(session, offer_id)


async def _write(db: Database, work: Callable[[Session], T]) -> T:
    return await asyncio.to_thread(in_write, db, work)


async def _follow_offer(db: Database, offer_id: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.to_thread(_read_offer, db, offer_id)
        await asyncio.sleep(GATEWAY_POLL_S)


async def play_call(db: Database, call: WaitingCall, start_in_s: float, talk_s: float,
                    rng: random.Random, played: Played) -> None:
    await asyncio.sleep(start_in_s)
    opened = await _write(db, partial(handover.open_handover, call_id=call.call_id,
                                      reason="request_human"))
    if opened is None:
        played.errors.append(f"{call.call_id}: the campaign has no agents")
        return
    seen, committed = await asyncio.to_thread(
        _committed, db, partial(handover.offer_next, escalation_id=opened.escalation_id,
                                at=datetime.now(UTC)))
    if seen is None:
        played.not_offered += 1
        return
    played.offers.append(Offered(seen.offer_id, seen.agent_id, call.call_id, committed))
    stop = asyncio.Event()
    follower = asyncio.create_task(_follow_offer(db, seen.offer_id, stop))
    try:
        ends = time.monotonic() + talk_s
        line = rng.randrange(len(LINES))
        while True:
            await asyncio.sleep(rng.uniform(1.0, 2.0))
            if time.monotonic() >= ends:
                break
            speaker, text = LINES[line % len(LINES)]
            line += 1
            seq, at = await asyncio.to_thread(_store_turn, db, call.call_id, speaker, text)
            if seq is not None:
                played.turns.append(Stored(call.call_id, seq, seen.agent_id, at))
    finally:
        stop.set()
        await follower
    await _write(db, partial(handover.close_offer, offer_id=seen.offer_id,
                             outcome="withdrawn", at=datetime.now(UTC)))
    await _write(db, partial(handover.set_status, escalation_id=opened.escalation_id,
                             status="abandoned"))


async def play_round(db: Database, calls: list[WaitingCall], *, stagger_s: float,
                     talk_s: float, seed: int, played: Played) -> None:
    """The calls at once, each handed over at a random moment within *stagger_s*."""
    rng = random.Random(seed)
    results = await asyncio.gather(
        *(play_call(db, call, rng.uniform(0, stagger_s), talk_s,
                    random.Random(rng.random()), played) for call in calls),
        return_exceptions=True)
    played.errors.extend(repr(r) for r in results if isinstance(r, BaseException))
