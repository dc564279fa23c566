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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from bot.console import desk_state
from bot.console.context import CONSOLE, Console
from bot.console.hub import Message

log = logging.getLogger("waihu.console")


async def tick(c: Console) -> int:
    """One round: end the due wrap-ups, publish what changed; how many messages were new."""
    now = c.clock()
    await c.run(desk_state.expire_due, c.db, now)
    messages = await c.run(_every_presence, c)
    return sum(c.hub.publish(message) for message in messages)


def _every_presence(c: Console) -> list[Message]:
    with c.db.session() as session:
        return desk_state.every_presence(session)


async def _watch(c: Console) -> None:
    while True:
        try:
            await tick(c)
        except asyncio.CancelledError:
            raise
        except Exception:  # a database hiccup must not stop the desk's updates for good
            log.exception("console.desk_watch_failed")
        await asyncio.sleep(c.settings.desk_poll_s)


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
