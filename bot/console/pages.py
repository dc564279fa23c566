"""The console's pages.  Thin handlers: the guard (auth.py) has checked the role already;
each reads what it shows through a service function and renders its template.

The agent desk is agent_pages.py, the figures figure_pages.py; the supervisors' page shows
the agents' presence and the live wall, the QA pages are qa_pages.py; the administration
page manages the accounts and the agents' settings.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from bot import accounts, agent_settings
from bot.console import desk_state, wall
from bot.console.access import ALL_ROLES, PAGE_ROLES, home_path
from bot.console.context import console, user_of
from bot.console.security import allow
from bot.console.views import render
from bot.store.repos.audit import AuditRepo
from bot.store.vocab import USER_ROLES

log = logging.getLogger("waihu.console")
AUDIT_SHOWN = 30


@allow(*ALL_ROLES)
async def home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther(home_path(user_of(request).role))


def _presence(db: Any) -> dict[int, dict[str, Any]]:
    with db.session() as session:
        return {m["agent_id"]: m for m in desk_state.every_presence(session)}


@allow(*PAGE_ROLES["supervisor"])
async def supervisor_page(request: web.Request) -> web.StreamResponse:
    c = console(request)
    agents = [u for u in await c.run(accounts.list_users, c.db) if u.role == "agent"]
    presence = await c.run(_presence, c.db)
    # The live wall as it is (wall.py), drawn by static/wall.js at once, then kept up to
    # date by the page's socket.
    return await render(request, "supervisor.html", page="supervisor", agents=agents,
                        presence=presence, wall=await wall.current(request),
                        limits=wall.LIMITS)


def _recent_audit(db: Any) -> list[dict[str, Any]]:
    with db.session() as session:
        rows = AuditRepo(session).entries()[-AUDIT_SHOWN:]
        return [{"at": row.at, "actor": row.actor, "action": row.action,
                 "subject": row.subject} for row in reversed(rows)]


async def _admin(request: web.Request, *, status: int = 200, **context: Any
                 ) -> web.Response:
    c = console(request)
    users = await c.run(accounts.list_users, c.db)
    audit = await c.run(_recent_audit, c.db)
    return await render(request, "admin.html", page="admin", users=users, audit=audit,
                        roles=USER_ROLES, status=status, **context)


@allow(*PAGE_ROLES["admin"])
async def admin_page(request: web.Request) -> web.StreamResponse:
    action, _, name = request.query.get("done", "").partition(":")
    notice = (action, name) if action in ("created", "disabled", "enabled", "agent") \
        else None
    return await _admin(request, notice=notice)


@allow(*PAGE_ROLES["admin"])
async def admin_add_user(request: web.Request) -> web.StreamResponse:
    c = console(request)
    form = await request.post()
    field = {key: str(form.get(key, "")).strip() for key in
             ("username", "display_name", "role", "sip_uri", "campaigns", "weight")}
    password = str(form.get("password", ""))
    try:
        weight = int(field["weight"]) if field["weight"] else None
        role = field["role"]
        agent = accounts.AgentOptions(
            field["sip_uri"] or None, accounts.parse_campaigns(field["campaigns"]) or None,
            weight) if role == "agent" else None
        user = await c.run(accounts.create_user, c.db, c.passwords, field["username"], role,
                           password, actor=f"user:{user_of(request).username}",
                           display_name=field["display_name"] or None, agent=agent)
    except ValueError as exc:  # AccountError, or a weight that is not a number
        message = str(exc) if isinstance(exc, accounts.AccountError) else \
            "权重须为整数 The weight is a whole number"
        return await _admin(request, status=400, error=message, form=field)
    log.info("console.user_created user=%s role=%s by=%s", user.username, user.role,
             user_of(request).username)
    raise web.HTTPSeeOther(f"/admin?done=created:{user.username}")


@allow(*PAGE_ROLES["admin"])
async def admin_set_disabled(request: web.Request) -> web.StreamResponse:
    c = console(request)
    name = request.match_info["name"]
    disabled = request.match_info["action"] == "disable"
    me = user_of(request)
    if disabled and name == me.username:
        return await _admin(request, status=400, error="不能停用自己的账号 You cannot "
                            "disable your own account")
    try:
        await c.run(accounts.set_disabled, c.db, name, disabled, actor=f"user:{me.username}")
    except accounts.AccountError as exc:
        return await _admin(request, status=404, error=str(exc))
    raise web.HTTPSeeOther(f"/admin?done={'disabled' if disabled else 'enabled'}:{name}")


@allow(*PAGE_ROLES["admin"])
async def admin_set_agent(request: web.Request) -> web.StreamResponse:
    """An agent's SIP address, campaigns and weight (bot/agent_settings.py); an empty SIP
    field keeps the address, an empty campaigns field takes the agent off every campaign."""
    c = console(request)
    name = request.match_info["name"]
    form = await request.post()
    field = {key: str(form.get(key, "")).strip() for key in ("sip_uri", "campaigns", "weight")}
    me = user_of(request)
    try:
        options = accounts.AgentOptions(
            field["sip_uri"] or None, accounts.parse_campaigns(field["campaigns"]),
            int(field["weight"]) if field["weight"] else None)
        change = await c.run(agent_settings.change_agent, c.db, name, options,
                             actor=f"user:{me.username}")
    except ValueError as exc:  # AccountError, or a weight that is not a number
        message = str(exc) if isinstance(exc, accounts.AccountError) else \
            "权重须为整数 The weight is a whole number"
        status = 404 if isinstance(exc, agent_settings.NotAnAgent) else 400
        return await _admin(request, status=status, error=f"{name}: {message}",
                            agent_form={"name": name, **field})
    log.info("console.agent_changed user=%s fields=%s by=%s", name,
             ",".join(change.after) or "-", me.username)
    raise web.HTTPSeeOther(f"/admin?done=agent:{name}")
