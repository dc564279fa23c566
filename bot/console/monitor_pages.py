"""Supervisors listening to, whispering on and barging into live calls from the wall, and
the agent's coaching banner.

The handlers are thin: the rules and the audit entries are bot/monitoring.py's, in one
unit of work per button (`desk_state.in_write`, as the desk's offers).  The gateway
carrying the call reads the session back (voice/call/monitor.py), dials the supervisor's
phone and applies the mode; the wall's script (static/monitor.js) and the agent's banner
(static/coaching.js) show the session as the database has it, so what the supervisor sees
is what the gateway did, wherever it runs.  The page reads it as it opens (``GET``);
its socket brings each change (`streaming`: ``{"type": "monitor", "session"}``), read
again when the gateway's ``monitor.*`` events reach this console's bus (watch.py passes
them on the desk hub), when the agent's presence changes on the hub (the call in their
hand), and, as the safety net for a gateway in another process, every
`MONITOR_SAFETY_POLL_S` (every `SETTING_UP_POLL_S` while the supervisor's phone is being
called: the gateway publishes no event for that).  The pages used to ask every second
(docs/benchmarks.md, "Live wall").

Routes (CSRF like every console POST; supervisor and administrator only, the banner the
agent's):

- ``POST /supervisor/calls/{call_id}/monitor`` (``mode``): start;
- ``POST /supervisor/monitor/{session_id}/mode`` (``mode``): switch mode;
- ``POST /supervisor/monitor/{session_id}/stop``: stop;
- ``GET /supervisor/monitor``: the supervisor's open session, or their last one;
- ``GET /agent/coaching``: the open session on the call in the agent's hand, if any.

Each answers JSON: the session (``MonitorSeen.as_json``), or ``{"error"}`` with 409 when
the rules refuse (no phone on the account, the call over, someone else monitoring it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from sqlalchemy.orm import Session

from bot import monitoring
from bot.accounts import UserInfo
from bot.agents import desk
from bot.agents.presence import OFFERED, ON_CALL
from bot.console.access import PAGE_ROLES
from bot.console.context import Console, client_address, console, user_of
from bot.console.desk_state import in_write
from bot.console.security import allow
from bot.monitoring import MonitorRefused, MonitorSeen
from bot.store import Database

log = logging.getLogger("waihu.console")
SUPERVISORS = PAGE_ROLES["supervisor"]
MONITOR_SAFETY_POLL_S = 5.0  # a gateway in another process: its events do not reach here
SETTING_UP_POLL_S = 1.0  # while the gateway takes the session and rings the phone
SETTING_UP = ("requested", "dialling")


async def _mode_of(request: web.Request) -> str:
    if request.content_type == "application/json":
        body: Any = await request.json()
        return str(body.get("mode", "")) if isinstance(body, dict) else ""
    return str((await request.post()).get("mode", ""))


def _answer(seen: MonitorSeen | None) -> web.Response:
    return web.json_response({"session": None if seen is None else seen.as_json()})


def _refused(exc: Exception) -> web.Response:
    return web.json_response({"error": str(exc)}, status=409)


@allow(*SUPERVISORS)
async def start(request: web.Request) -> web.StreamResponse:
    c = console(request)
    user = user_of(request)
    call_id, mode = request.match_info["call_id"], await _mode_of(request)
    try:
        seen = await c.run(in_write, c.db, lambda s: monitoring.request(
            s, user, call_id, mode, c.clock(), address=client_address(request)))
    except MonitorRefused as exc:
        log.info("console.monitor_refused user=%s call_id=%s why=%s", user.username,
                 call_id, exc)
        return _refused(exc)
    log.info("console.monitor_requested user=%s call_id=%s mode=%s session=%d",
             user.username, call_id, mode, seen.session_id)
    return _answer(seen)


@allow(*SUPERVISORS)
async def change(request: web.Request) -> web.StreamResponse:
    c = console(request)
    user = user_of(request)
    session_id, mode = int(request.match_info["session_id"]), await _mode_of(request)
    try:
        seen = await c.run(in_write, c.db, lambda s: monitoring.change_mode(
            s, user, session_id, mode, c.clock(), address=client_address(request)))
    except PermissionError:
        raise web.HTTPForbidden(reason="not your monitor session") from None
    except MonitorRefused as exc:
        return _refused(exc)
    log.info("console.monitor_mode user=%s session=%d mode=%s", user.username, session_id,
             mode)
    return _answer(seen)


@allow(*SUPERVISORS)
async def stop(request: web.Request) -> web.StreamResponse:
    c = console(request)
    user = user_of(request)
    session_id = int(request.match_info["session_id"])
    try:
        seen = await c.run(in_write, c.db, lambda s: monitoring.stop(
            s, user, session_id, c.clock(), address=client_address(request)))
    except PermissionError:
        raise web.HTTPForbidden(reason="not your monitor session") from None
    except MonitorRefused as exc:
        return _refused(exc)
    log.info("console.monitor_stopped user=%s session=%d", user.username, session_id)
    return _answer(seen)


def _latest(db: Database, supervisor_id: int) -> MonitorSeen | None:
    with db.session() as session:
        return monitoring.latest_of_supervisor(session, supervisor_id)


@allow(*SUPERVISORS)
async def current(request: web.Request) -> web.StreamResponse:
    c = console(request)
    return _answer(await c.run(_latest, c.db, user_of(request).id))


def coaching_of(session: Session, agent_id: int) -> MonitorSeen | None:
    """The open monitor session on the call the agent is offered or on, if any."""
    presence = desk.presence_of(session, agent_id)
    if presence.state not in (OFFERED, ON_CALL) or presence.call_id is None:
        return None
    return monitoring.open_sessions(session, [presence.call_id]).get(presence.call_id)


def _coaching(db: Database, agent_id: int) -> MonitorSeen | None:
    with db.session() as session:
        return coaching_of(session, agent_id)


@allow(*PAGE_ROLES["agent"])
async def coaching(request: web.Request) -> web.StreamResponse:
    c = console(request)
    return _answer(await c.run(_coaching, c.db, user_of(request).id))


def _shown(db: Database, user_id: int, page: str) -> MonitorSeen | None:
    with db.session() as session:
        if page == "agent":
            return coaching_of(session, user_id)
        return monitoring.latest_of_supervisor(session, user_id)


@contextlib.asynccontextmanager
async def streaming(request: web.Request, ws: web.WebSocketResponse, user: UserInfo,
                    page: str) -> AsyncIterator[None]:
    """The session the page shows, on its socket (ws.py): the agent desk's coaching banner,
    the supervisors' monitor panel."""
    if page not in ("agent", "supervisor"):
        yield
        return
    c = console(request)
    wake = asyncio.Event()

    def on_presence(presence: dict[str, Any]) -> None:
        if page == "agent" and int(presence["agent_id"]) == user.id:
            wake.set()
    stop_monitors = c.hub.on_monitor(lambda _call_id: wake.set())
    stop_presences = c.hub.on_presence(on_presence)
    task = asyncio.create_task(_follow(c, ws, user.id, page, wake))
    try:
        yield
    finally:
        stop_monitors()
        stop_presences()
        task.cancel()


async def _follow(c: Console, ws: web.WebSocketResponse, user_id: int, page: str,
                  wake: asyncio.Event) -> None:
    sent: dict[str, Any] = {"type": "monitor", "session": None}  # the page's own reading
    while not ws.closed:
        wake.clear()
        poll_s = MONITOR_SAFETY_POLL_S
        try:
            seen = await c.run(_shown, c.db, user_id, page)
            message = {"type": "monitor", "session": None if seen is None else seen.as_json()}
            if message != sent and not ws.closed:
                await ws.send_json(message)
                sent = message
            if seen is not None and seen.state in SETTING_UP:
                poll_s = SETTING_UP_POLL_S
        except asyncio.CancelledError:
            raise
        except Exception:  # a database hiccup must not stop the page's updates for good
            log.exception("console.monitor_follow_failed user_id=%s", user_id)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), poll_s)


ROUTES = [
    web.post("/supervisor/calls/{call_id}/monitor", start),
    web.post(r"/supervisor/monitor/{session_id:\d+}/mode", change),
    web.post(r"/supervisor/monitor/{session_id:\d+}/stop", stop),
    web.get("/supervisor/monitor", current),
    web.get("/agent/coaching", coaching),
]
