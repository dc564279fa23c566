"""Running the console: alone (`waihu console`) or beside the other services (`waihu run`,
which shares its event bus with the gateway)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from bot.console.app import create_app
from bot.console.settings import ConsoleSettings
from bot.events import EventBus, InProcessBus
from bot.store import Database

log = logging.getLogger("waihu.console")


@contextlib.asynccontextmanager
async def running(settings: ConsoleSettings, db: Database, events: EventBus,
                  **options: Any) -> AsyncIterator[str]:
    """The console listening on the settings' host and port (0: a free one) while the
    context is open; yields its base URL."""
    runner = web.AppRunner(create_app(settings, db, events, **options))
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        log.info("console.listening url=%s", url)
        yield url
    finally:
        await runner.cleanup()


def startup_notes(settings: ConsoleSettings, db: Database) -> list[str]:
    """What the operator should know before the first login."""
    from bot.accounts import list_users

    notes = []
    if not settings.loopback:
        notes.append(f"listening on {settings.host}: reachable from other machines"
                     + ("" if settings.secure_cookies else "; without --secure-cookies, so "
                        "put it behind a TLS reverse proxy and add --secure-cookies"))
    if not any(user.role == "admin" and not user.disabled for user in list_users(db)):
        notes.append("no administrator yet: `waihu user add NAME --role admin`")
    return notes


def serve(settings: ConsoleSettings, db: Database, events: EventBus | None = None) -> int:
    """`waihu console`: serve until SIGINT or SIGTERM."""
    for note in startup_notes(settings, db):
        print(f"console: {note}", file=sys.stderr)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with running(settings, db, events or InProcessBus()) as url:
            print(f"console on {url}/login (Ctrl-C stops it)", file=sys.stderr, flush=True)
            await stop.wait()

    asyncio.run(main())
    return 0
