"""The console's desk watcher: the task that publishes the agents' presence changes on the
hub, whoever made them, and every `desk_poll_s` seconds ends the after-call work that
reached its campaign's cap.

Why a timer task rather than "on the next request": the agent whose wrap-up runs out is
looking at the desk, not clicking it, and must see themselves available (and be offered the
next call) when the countdown ends, not when they next touch the page.  The pages also
check on opening (desk_state.desk_view), so a console stopped or slowed does not leave a
stale desk.  Several consoles may run the watcher at once: an expiry is one stored change,
and the second attempt to make it finds the agent available and does nothing.

Offers must pop within 300 ms (issue 14), and the gateway that makes them may run in this
process or in another.  The database is the record of truth and the only channel that
reaches every console, so the watcher reads it:

- between the full rounds, every `OFFER_POLL_S`, the changes stored after the last one seen
  (one indexed read when there is none), and publishes those agents' presence at once; an
  offer is a presence change (the agent becomes ``offered``) and its message carries the
  pop (desk_state.pop_message), so the desk draws it without another request;
- the call event stream wakes that read early: an offer or its end published on this
  console's bus (the gateway in the same process, `waihu run`; across machines the bus is
  Redis) is read at once instead of at the next poll.  The event only says "read now":
  what is shown still comes from the database, so a lost or late event costs one poll;
- the gateway's ``monitor.*`` events are passed on to the hub (`DeskHub.monitor_changed`):
  the coaching banners and monitor panels read their session again;
- every `desk_poll_s`, the full round: every agent's latest presence (a change whose id
  was taken before another's but committed after it, on PostgreSQL, is caught here) and
  the wrap-up expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from sqlalchemy import func, select

from bot import events
from bot.console import desk_state
from bot.console.context import CONSOLE, Console
from bot.console.hub import Message
from bot.events import CallEvent
from bot.store.models import AgentStateChange

log = logging.getLogger("waihu.console")
OFFER_POLL_S = 0.05  # between full rounds: any presence changed? (one indexed read)
# The call events that follow a presence change the gateway made: read it now.
WAKING_EVENTS = frozenset({events.ESCALATION_OFFERED, events.ESCALATION_ACCEPTED,
                           events.ESCALATION_ENDED, events.CALL_BRIDGED})
# A supervisor's session changed: the pages that show it read it again (monitor_pages.py).
MONITOR_EVENTS = frozenset({events.MONITOR_STARTED, events.MONITOR_MODE,
                            events.MONITOR_ENDED})


async def tick(c: Console) -> int:
    """One full round: end the due wrap-ups, publish what changed; how many messages were
    new."""
    now = c.clock()
    await c.run(desk_state.expire_due, c.db, now)
    return await publish_changes(c)


def _every_presence(c: Console, known: dict[int, int]) -> list[Message]:
    with c.db.session() as session:
        return desk_state.every_presence(session, pops_after=known)


def _changed_since(c: Console, after_id: int) -> tuple[list[Message], int]:
    with c.db.session() as session:
        return desk_state.changed_since(session, after_id)


def _latest_change(c: Console) -> int:
    with c.db.session() as session:
        return int(session.scalar(select(func.max(AgentStateChange.id))) or 0)


async def publish_changes(c: Console) -> int:
    """Every agent's presence on the hub; how many messages were new."""
    messages = await c.run(_every_presence, c, c.hub.seqs())
    return sum(c.hub.publish(message) for message in messages)


async def publish_new(c: Console, after_id: int) -> tuple[int, int]:
    """The presence of the agents changed after change *after_id* on the hub: how many
    messages were new, and the last change's id."""
    messages, latest = await c.run(_changed_since, c, after_id)
    return sum(c.hub.publish(message) for message in messages), latest


async def _watch(c: Console, wake: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    full_at, seen = 0.0, 0
    while True:
        wake.clear()
        try:
            if loop.time() >= full_at:
                full_at = loop.time() + c.settings.desk_poll_s
                seen = await c.run(_latest_change, c)  # the full round covers up to here
                await tick(c)
            else:
                _new, seen = await publish_new(c, seen)
        except asyncio.CancelledError:
            raise
        except Exception:  # a database hiccup must not stop the desk's updates for good
            log.exception("console.desk_watch_failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), min(OFFER_POLL_S, c.settings.desk_poll_s))


def waker(wake: asyncio.Event, loop: asyncio.AbstractEventLoop) -> events.Handler:
    """A bus subscriber that wakes the watcher; the bus may call it from any thread."""
    def handler(_event: CallEvent) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nothing to wake
            loop.call_soon_threadsafe(wake.set)
    return handler


async def watching(app: web.Application) -> AsyncIterator[None]:
    """A `cleanup_ctx`: the watcher runs while the application does (not at all with
    ``desk_poll_s`` 0, for tests that call `tick` themselves)."""
    c = app[CONSOLE]
    if c.settings.desk_poll_s <= 0:
        yield
        return
    wake = asyncio.Event()
    loop = asyncio.get_running_loop()
    unsubscribe = c.events.subscribe(waker(wake, loop), names=WAKING_EVENTS)

    def monitor_changed(event: CallEvent) -> None:  # from any thread
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(c.hub.monitor_changed, event.call_id)
    stop_monitors = c.events.subscribe(monitor_changed, names=MONITOR_EVENTS)
    task = asyncio.create_task(_watch(c, wake))
    try:
        yield
    finally:
        unsubscribe()
        stop_monitors()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
