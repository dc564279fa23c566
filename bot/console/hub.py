"""The desk's live messages inside one console process: each agent's latest presence, fanned
out to the open pages that may see it (the agent's own desk; supervisors' and the
administrator's pages see every agent).

The database is the record of truth: `watch.py` reads every agent's latest presence change
once a second (whoever made it: this console, another console, the gateway) and publishes
it here; a handler that changes a presence publishes at once after its commit, so that its
own page need not wait for the next read.  A message is the same whoever publishes it, and
each agent's change number (``seq``) lets the hub pass each change on once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

Message = dict[str, Any]
QUEUE_LIMIT = 256  # a page that stops reading loses its oldest messages, not the console


@dataclass(eq=False)
class _Subscriber:
    queue: asyncio.Queue[Message]
    agent_id: int | None  # None: every agent


class DeskHub:
    def __init__(self) -> None:
        self._latest: dict[int, Message] = {}
        self._subscribers: list[_Subscriber] = []

    def publish(self, message: Message) -> bool:
        """Pass *message* (``type`` presence, with ``agent_id`` and ``seq``) to the pages
        that may see it, unless that agent's change was passed on already; whether it was
        new.  Call it on the console's event loop."""
        agent_id, seq = int(message["agent_id"]), int(message["seq"])
        known = self._latest.get(agent_id)
        if known is not None and int(known["seq"]) >= seq:
            return False
        self._latest[agent_id] = message
        for subscriber in self._subscribers:
            if subscriber.agent_id in (None, agent_id):
                _offer(subscriber.queue, message)
        return True

    def latest(self, agent_id: int | None = None) -> list[Message]:
        """The latest message of one agent (or of every agent), as a page opens."""
        if agent_id is not None:
            return [self._latest[agent_id]] if agent_id in self._latest else []
        return list(self._latest.values())

    @contextlib.contextmanager
    def following(self, agent_id: int | None) -> Iterator[asyncio.Queue[Message]]:
        """A queue of the messages about *agent_id* (None: every agent) while open."""
        subscriber = _Subscriber(asyncio.Queue(QUEUE_LIMIT), agent_id)
        self._subscribers.append(subscriber)
        try:
            yield subscriber.queue
        finally:
            self._subscribers.remove(subscriber)


def _offer(queue: asyncio.Queue[Message], message: Message) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(message)
