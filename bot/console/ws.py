"""`/ws?page=P`: one WebSocket per open page.

The guard (auth.py) has found the session's user; here the page is checked against the
user's role (`access.may_open`) and the Origin against the console's own, before the
upgrade.  The page is greeted with ``{"type": "hello", "page", "username", "name",
"role"}``, then receives its feed of the call event stream (feeds.py) and the desk's
presence messages (hub.py: the agent desk its own agent's, the supervisors' and the
administrator's pages every agent's; the latest first, as the page opens), the agent desk
the live transcript of the call in the agent's hand (``{"type": "turn", ...}``,
live_turns.py; the latest turns first, as the page opens), the supervisors' page the
live wall (``{"type": "wall", ...}``, wall.py; the current wall first), the agent desk
and the supervisors' page the monitor session they show (``{"type": "monitor", ...}``,
monitor_pages.py: the coaching banner, the monitor panel), and answers
``ping`` with ``{"type": "pong"}``.  Every `ws_recheck_s` the account is read again: a
disabled account, a changed password or an expired session closes the socket (code 4401).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp_session import get_session

from bot import accounts
from bot.console import monitor_pages, wall
from bot.console.access import ALL_ROLES, may_open
from bot.console.auth import whoami
from bot.console.context import console, user_of
from bot.console.feeds import DESK_SCOPE, FEEDS, Feed
from bot.console.security import allow, same_origin
from bot.events import CallEvent, following

log = logging.getLogger("waihu.console")
SOCKETS = web.AppKey("console.sockets", weakref.WeakSet[web.WebSocketResponse])
SESSION_ENDED = 4401


@allow(*ALL_ROLES)
async def websocket(request: web.Request) -> web.StreamResponse:
    c = console(request)
    user = user_of(request)
    page = request.query.get("page", "")
    if not may_open(user.role, page):
        log.warning("console.ws_forbidden user=%s role=%s page=%s", user.username, user.role,
                    page)
        raise web.HTTPForbidden()
    if not same_origin(request, tls=c.settings.secure_cookies):
        log.warning("console.ws_cross_origin user=%s origin=%s", user.username,
                    request.headers.get("Origin"))
        raise web.HTTPForbidden()
    issued = (await get_session(request)).get("iat", 0.0)
    ws = web.WebSocketResponse(heartbeat=30.0)
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    await ws.send_json({"type": "hello", "page": page, **whoami(user)})
    tasks = [asyncio.create_task(_recheck(request, ws, user, float(issued)))]
    feed = FEEDS.get(page)
    async with _feeding(request, ws, feed), _desk(request, ws, user, page), \
            wall.streaming(request, ws, page), \
            monitor_pages.streaming(request, ws, user, page):
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT and message.data == "ping":
                    await ws.send_json({"type": "pong"})
        finally:
            for task in tasks:
                task.cancel()
    return ws


@contextlib.asynccontextmanager
async def _feeding(request: web.Request, ws: web.WebSocketResponse, feed: Feed | None
                   ) -> AsyncIterator[None]:
    if feed is None:
        yield
        return
    async with following(console(request).events) as queue:
        task = asyncio.create_task(_forward(ws, queue, feed))
        try:
            yield
        finally:
            task.cancel()


@contextlib.asynccontextmanager
async def _desk(request: web.Request, ws: web.WebSocketResponse, user: accounts.UserInfo,
                page: str) -> AsyncIterator[None]:
    scope = DESK_SCOPE.get(page)
    if scope is None:
        yield
        return
    hub = console(request).hub
    agent_id = user.id if scope == "own" else None
    with hub.following(agent_id) as queue:
        for message in hub.latest(agent_id):
            await ws.send_json(message)
        if agent_id is not None:  # the live transcript of the call in their hand
            for message in hub.turns(agent_id):
                await ws.send_json(message)
        task = asyncio.create_task(_pass_on(ws, queue))
        try:
            yield
        finally:
            task.cancel()


async def _pass_on(ws: web.WebSocketResponse, queue: asyncio.Queue[dict[str, Any]]) -> None:
    while not ws.closed:
        message = await queue.get()
        if not ws.closed:
            await ws.send_json(message)


async def _forward(ws: web.WebSocketResponse, queue: asyncio.Queue[CallEvent], feed: Feed
                   ) -> None:
    while not ws.closed:
        message = feed(await queue.get())
        if message is not None and not ws.closed:
            await ws.send_json(message)


async def _recheck(request: web.Request, ws: web.WebSocketResponse,
                   user: accounts.UserInfo, issued: float) -> None:
    c = console(request)
    lifetime = c.settings.session_lifetime.total_seconds()
    while not ws.closed:
        await asyncio.sleep(c.settings.ws_recheck_s)
        now = await c.run(accounts.current_user, c.db, user.id)
        if (now is None or now.disabled or now.session_version != user.session_version
                or c.clock().timestamp() - issued > lifetime):
            log.info("console.ws_session_ended user=%s", user.username)
            await ws.close(code=SESSION_ENDED, message=b"session ended")
            return


async def close_sockets(app: web.Application) -> None:
    """`on_shutdown`: close the open pages' sockets so the server can stop."""
    sockets: weakref.WeakSet[web.WebSocketResponse] = app[SOCKETS]
    for ws in tuple(sockets):
        await ws.close(code=1001, message=b"server shutting down")
