"""The desk's live messages inside one console process: each agent's latest presence, fanned
out to the open pages that may see it (the agent's own desk; supervisors' and the
administrator's pages see every agent).

The database is the record of truth: `watch.py` reads the agents' presence changes
(whoever made them: this console, another console, the gateway) and publishes them here; a
handler that changes a presence publishes at once after its commit, so that its own page
need not wait for the next read.  A message is the same whoever publishes it, and each
agent's change number (``seq``) lets the hub pass each change on once.  An offer's message
carries the pop (``call``: the customer, the transcript so far): that part goes to the
agent's own pages only, the others get the presence without it.

Pages that show more than presence follow it here too: the wall reads again on a new
presence (`on_presence`), and the coaching banner and the monitor panel when a supervisor's
session changed (`on_monitor`; watch.py passes the gateway's ``monitor.*`` events on).

The hub also carries the live transcript of the call in each agent's hand (live_turns.py
publishes its turns): a turn goes to that agent's own pages only -- never to another
agent, nor to the supervisors' page, whose wall shows only each call's last customer
words, masked, read by wall.py -- and the agent's latest turns are kept for a desk page
that opens (or reconnects) while the call goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

Message = dict[str, Any]
QUEUE_LIMIT = 256  # a page that stops reading loses its oldest messages, not the console
TURN_BACKLOG = 60  # the turns kept per agent for a page that opens (the pop shows as many)


@dataclass(eq=False)
class _Subscriber:
    queue: asyncio.Queue[Message]
    agent_id: int | None  # None: every agent


class DeskHub:
    def __init__(self) -> None:
        self._latest: dict[int, Message] = {}
        self._subscribers: list[_Subscriber] = []
        self._turns: dict[int, deque[Message]] = {}
        self._presence_listeners: list[Callable[[Message], None]] = []
        self._monitor_listeners: list[Callable[[str], None]] = []

    def publish(self, message: Message) -> bool:
        """Pass *message* (``type`` presence, with ``agent_id`` and ``seq``) to the pages
        that may see it, unless that agent's change was passed on already; whether it was
        new.  Call it on the console's event loop."""
        agent_id, seq = int(message["agent_id"]), int(message["seq"])
        known = self._latest.get(agent_id)
        if known is not None and int(known["seq"]) >= seq:
            return False
        self._latest[agent_id] = message
        public = _public(message)
        for subscriber in self._subscribers:
            if subscriber.agent_id == agent_id:
                _offer(subscriber.queue, message)
            elif subscriber.agent_id is None:
                _offer(subscriber.queue, public)
        for listener in list(self._presence_listeners):
            listener(public)
        return True

    def on_presence(self, listener: Callable[[Message], None]) -> Callable[[], None]:
        """Call *listener* (on the console's loop; it must not block) with each new
        presence, without the pop; returns the function that stops it (the wall reads
        again when an agent's state changed)."""
        return _listen(self._presence_listeners, listener)

    def monitor_changed(self, call_id: str) -> None:
        """A supervisor's session on *call_id* changed (the gateway's ``monitor.*`` event,
        passed on by watch.py): the pages that show it read it again."""
        for listener in list(self._monitor_listeners):
            listener(call_id)

    def on_monitor(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Call *listener* with the call id of each `monitor_changed`."""
        return _listen(self._monitor_listeners, listener)

    def seqs(self) -> dict[int, int]:
        """The change number passed on last for each agent."""
        return {agent_id: int(m["seq"]) for agent_id, m in self._latest.items()}

    def publish_turn(self, message: Message) -> None:
        """Pass a turn of the call in an agent's hand (``type`` turn, with ``agent_id``,
        ``call_id`` and the turn's ``seq``) to that agent's own pages, and keep it for the
        pages that open later.  A turn of another call than the kept ones starts afresh."""
        agent_id = int(message["agent_id"])
        kept = self._turns.get(agent_id)
        if kept is None or (kept and kept[0]["call_id"] != message["call_id"]):
            kept = self._turns[agent_id] = deque(maxlen=TURN_BACKLOG)
        kept.append(message)
        for subscriber in self._subscribers:
            if subscriber.agent_id == agent_id:
                _offer(subscriber.queue, message)

    def turns(self, agent_id: int) -> list[Message]:
        """The latest turns of the call in the agent's hand, oldest first."""
        return list(self._turns.get(agent_id, ()))

    def forget_turns(self, agent_id: int) -> None:
        """The call left the agent's hand: its turns are no longer theirs to see."""
        self._turns.pop(agent_id, None)

    def latest(self, agent_id: int | None = None) -> list[Message]:
        """The latest message of one agent (or of every agent), as a page opens."""
        if agent_id is not None:
            return [self._latest[agent_id]] if agent_id in self._latest else []
        return [_public(m) for m in self._latest.values()]

    @contextlib.contextmanager
    def following(self, agent_id: int | None) -> Iterator[asyncio.Queue[Message]]:
        """A queue of the messages about *agent_id* (None: every agent) while open."""
        subscriber = _Subscriber(asyncio.Queue(QUEUE_LIMIT), agent_id)
        self._subscribers.append(subscriber)
        try:
            yield subscriber.queue
        finally:
            self._subscribers.remove(subscriber)


def _listen(listeners: list[Callable[[Any], None]], listener: Callable[[Any], None]
            ) -> Callable[[], None]:
    listeners.append(listener)

    def stop() -> None:
        if listener in listeners:
            listeners.remove(listener)
    return stop


def _public(message: Message) -> Message:
    """A presence as every agent's pages see it: without the pop of the agent's call."""
    if "call" not in message:
        return message
    return {key: value for key, value in message.items() if key != "call"}


def _offer(queue: asyncio.Queue[Message], message: Message) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(message)
