"""The console's desk watcher: a task that, every `desk_poll_s` seconds, ends the after-call
work that reached its campaign's cap and publishes every agent's latest presence on the hub.

Why a timer task rather than "on the next request": the agent whose wrap-up runs out is
looking at the desk, not clicking it, and must see themselves available (and be offered the
next call) when the countdown ends, not when they next touch the page.  The pages also
check on opening (desk_state.desk_view), so a console stopped or slowed does not leave a
stale desk.  Reading the database rather than an in-process signal shows changes made
anywhere: by another console, or by the gateway that offers the calls.  Several consoles
may run the watcher at once: an expiry is one stored change, and the second attempt to make
it finds the agent available and does nothing.

Offers must pop within 300 ms, and the gateway that makes them may run in another process:
between the full rounds the watcher reads only the number of the latest presence change
(one indexed read) every `OFFER_POLL_S`, and publishes every agent's presence as soon as it
moved (an offer is a presence change: the agent becomes ``offered``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from sqlalchemy import func, select

from bot.console import desk_state
from bot.console.context import CONSOLE, Console
from bot.console.hub import Message
from bot.store.models import AgentStateChange

log = logging.getLogger("waihu.console")
OFFER_POLL_S = 0.15  # between full rounds: has any presence changed?


async def tick(c: Console) -> int:
    """One round: end the due wrap-ups, publish what changed; how many messages were new."""
    now = c.clock()
    await c.run(desk_state.expire_due, c.db, now)
    return await publish_changes(c)


def _every_presence(c: Console) -> list[Message]:
    with c.db.session() as session:
        return desk_state.every_presence(session)


def _latest_change(c: Console) -> int:
    with c.db.session() as session:
        return int(session.scalar(select(func.max(AgentStateChange.id))) or 0)


async def publish_changes(c: Console) -> int:
    """Every agent's presence on the hub; how many messages were new."""
    messages = await c.run(_every_presence, c)
    return sum(c.hub.publish(message) for message in messages)


async def _watch(c: Console) -> None:
    loop = asyncio.get_running_loop()
    full_at, seen = 0.0, -1
    while True:
        try:
            if loop.time() >= full_at:
                full_at = loop.time() + c.settings.desk_poll_s
                seen = await c.run(_latest_change, c)
                await tick(c)
            else:
                latest = await c.run(_latest_change, c)
                if latest != seen:
                    seen = latest
                    await publish_changes(c)
        except asyncio.CancelledError:
            raise
        except Exception:  # a database hiccup must not stop the desk's updates for good
            log.exception("console.desk_watch_failed")
        await asyncio.sleep(min(OFFER_POLL_S, c.settings.desk_poll_s))


async def watching(app: web.Application) -> AsyncIterator[None]:
    """A `cleanup_ctx`: the watcher runs while the application does (not at all with
    ``desk_poll_s`` 0, for tests that call `tick` themselves)."""
    c = app[CONSOLE]
    task = asyncio.create_task(_watch(c)) if c.settings.desk_poll_s > 0 else None
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
