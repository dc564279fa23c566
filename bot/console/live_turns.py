"""The live transcript on the desk's pop: each new turn of the call an agent has offered or
is on reaches that agent's desk while it happens.

The gateway stores the turns (bot/transcript.py) and publishes them on the call event
stream of its own process; the console may run in another, so, as watch.py does for the
offers, it reads the database: every `TURN_POLL_S`, and only while some agent holds a
call (offered or on the call, as the hub's latest presence says), one indexed read of the
turns after the last one passed on for each (call, agent).  A call newly in an agent's hand
starts from its first turn, so that the desk, whenever it was drawn, misses none (the page
skips the turns it shows already, by their number).  The turns go through the hub to that
agent's own pages only (hub.publish_turn), their text masked as the pop masks it
(call_pop.mask_text: phone numbers as in the disposition notes, ID card numbers hidden).

A turn message::

    {"type": "turn", "agent_id", "call_id", "seq", "speaker", "text", "at"}
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web
from sqlalchemy import and_, or_, select

from bot.agents.presence import OFFERED, ON_CALL
from bot.console.call_pop import mask_text
from bot.console.context import CONSOLE, Console
from bot.console.hub import TURN_BACKLOG, Message
from bot.store import Database
from bot.store.models import TranscriptTurn

log = logging.getLogger("waihu.console")
TURN_POLL_S = 0.05  # the target is 300 ms from the stored turn to the screen (p95)
FOLLOWED_STATES = (OFFERED, ON_CALL)  # in after-call work the call is over


def calls_in_hand(presences: list[Message]) -> set[tuple[str, int]]:
    """(call id, agent id) of every call offered to an agent or taken by one, from the
    agents' latest presence messages."""
    return {(str(m["call_id"]), int(m["agent_id"])) for m in presences
            if m.get("state") in FOLLOWED_STATES and m.get("call_id")}


@dataclass(frozen=True)
class Turn:
    call_id: str
    seq: int
    speaker: str
    text: str
    at: str


def read_turns(db: Database, after: dict[str, int]) -> list[Turn]:
    """The turns of each call in *after* numbered above the given one, by call and number;
    a call starting from 0 gives its latest `TURN_BACKLOG` only."""
    if not after:
        return []
    with db.session() as session:
        rows = session.execute(
            select(TranscriptTurn.call_id, TranscriptTurn.seq, TranscriptTurn.speaker,
                   TranscriptTurn.text, TranscriptTurn.started_at)
            .where(or_(*(and_(TranscriptTurn.call_id == call_id, TranscriptTurn.seq > seq)
                         for call_id, seq in after.items())))
            .order_by(TranscriptTurn.call_id, TranscriptTurn.seq)).all()
    turns = [Turn(call_id, seq, speaker, mask_text(text), started.isoformat())
             for call_id, seq, speaker, text, started in rows]
    fresh = {call_id for call_id, seq in after.items() if seq == 0}
    if not fresh:
        return turns
    last = {call_id: max(t.seq for t in turns if t.call_id == call_id)
            for call_id in fresh if any(t.call_id == call_id for t in turns)}
    return [t for t in turns if t.call_id not in last or t.seq > last[t.call_id] - TURN_BACKLOG]


@dataclass
class TurnFollower:
    """Which turn of each (call, agent) was passed on last."""

    passed: dict[tuple[str, int], int] = field(default_factory=dict)

    async def poll(self, c: Console) -> int:
        """One read: publish the new turns of the calls in the agents' hands; how many."""
        hands = calls_in_hand(c.hub.latest())
        for call_id, agent_id in set(self.passed) - hands:
            del self.passed[(call_id, agent_id)]
            c.hub.forget_turns(agent_id)
        for key in hands:
            self.passed.setdefault(key, 0)
        if not self.passed:
            return 0
        # One read per call; a call passed between agents is read from the earlier turn.
        after: dict[str, int] = {}
        for (call_id, _agent), seq in self.passed.items():
            after[call_id] = min(seq, after.get(call_id, seq))
        turns = await c.run(read_turns, c.db, after)
        published = 0
        for turn in turns:
            for (call_id, agent_id), seq in list(self.passed.items()):
                if call_id != turn.call_id or turn.seq <= seq:
                    continue
                c.hub.publish_turn({"type": "turn", "agent_id": agent_id, "call_id": call_id,
                                    "seq": turn.seq, "speaker": turn.speaker,
                                    "text": turn.text, "at": turn.at})
                self.passed[(call_id, agent_id)] = turn.seq
                published += 1
        return published


async def _follow(c: Console) -> None:
    follower = TurnFollower()
    while True:
        try:
            await follower.poll(c)
        except asyncio.CancelledError:
            raise
        except Exception:  # a database hiccup must not stop the live transcript for good
            log.exception("console.turn_follow_failed")
        await asyncio.sleep(TURN_POLL_S)


async def following(app: web.Application) -> AsyncIterator[None]:
    """A `cleanup_ctx`: the follower runs while the application does (not with the desk
    watcher off, ``desk_poll_s`` 0: tests then poll a `TurnFollower` themselves)."""
    c = app[CONSOLE]
    task = asyncio.create_task(_follow(c)) if c.settings.desk_poll_s > 0 else None
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
