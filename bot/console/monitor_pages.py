"""Supervisors listening to, whispering on and barging into live calls from the wall, and
the agent's coaching banner.

The handlers are thin: the rules and the audit entries are bot/monitoring.py's, in one
unit of work per button (`desk_state.in_write`, as the desk's offers).  The gateway
carrying the call reads the session back (voice/call/monitor.py), dials the supervisor's
phone and applies the mode; the wall's script (static/monitor.js) shows the session as the
database has it (``GET /supervisor/monitor``, read every second while the wall is open),
so what the supervisor sees is what the gateway did, wherever it runs.

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

import logging
from typing import Any

from aiohttp import web
from sqlalchemy.orm import Session

from bot import monitoring
from bot.agents import desk
from bot.agents.presence import OFFERED, ON_CALL
from bot.console.access import PAGE_ROLES
from bot.console.context import client_address, console, user_of
from bot.console.desk_state import in_write
from bot.console.security import allow
from bot.monitoring import MonitorRefused, MonitorSeen
from bot.store import Database

log = logging.getLogger("waihu.console")
SUPERVISORS = PAGE_ROLES["supervisor"]


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


ROUTES = [
    web.post("/supervisor/calls/{call_id}/monitor", start),
    web.post(r"/supervisor/monitor/{session_id:\d+}/mode", change),
    web.post(r"/supervisor/monitor/{session_id:\d+}/stop", stop),
    web.get("/supervisor/monitor", current),
    web.get("/agent/coaching", coaching),
]
