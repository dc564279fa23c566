"""What every handler of the console reaches through its request: the settings, the
database, the event bus, the password hasher, the address throttle, the clock and the
desk's hub of live messages."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from aiohttp import web

from bot.accounts import Passwords, UserInfo
from bot.console.hub import DeskHub
from bot.console.settings import ConsoleSettings
from bot.console.throttle import AddressThrottle
from bot.events import EventBus
from bot.store import Database

T = TypeVar("T")


@dataclass
class Console:
    settings: ConsoleSettings
    db: Database
    events: EventBus
    passwords: Passwords
    throttle: AddressThrottle
    clock: Callable[[], datetime]
    hub: DeskHub = field(default_factory=DeskHub)  # the desk's live messages (hub.py)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """*fn* (database work, password hashing) in a thread: never on the event loop,
        where a WebSocket of every open page is waiting."""
        return await asyncio.to_thread(partial(fn, *args, **kwargs))


CONSOLE = web.AppKey("console", Console)
# The logged-in user, or None on a public page.
USER: web.RequestKey[UserInfo | None] = web.RequestKey("console.user")


def console(request: web.Request) -> Console:
    return request.app[CONSOLE]


def user_of(request: web.Request) -> UserInfo:
    """The logged-in user of a handler that is not public (the guard put it there)."""
    user = request.get(USER)
    if not isinstance(user, UserInfo):
        raise web.HTTPUnauthorized()
    return user


def client_address(request: web.Request) -> str:
    """The client's address; a trusted reverse proxy's X-Forwarded-For (its last entry,
    the one the proxy itself appended) where the settings name that proxy."""
    peer = request.remote or "unknown"
    proxy = console(request).settings.trusted_proxy
    forwarded = request.headers.get("X-Forwarded-For")
    if proxy is not None and peer == proxy and forwarded:
        return forwarded.split(",")[-1].strip() or peer
    return peer
