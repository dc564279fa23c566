"""Who is asking: the guard every request passes, the login and the logout.

The guard (a middleware) refuses a state-changing request without the session's CSRF token
or from another site, finds the session's user (and ends the session when the account was
disabled, its password changed or the session outlived `session_lifetime`), then lets the
handler run only if it is marked public or the user's role is among those it allows
(security.py's marks; a handler with no mark is refused: closed by default).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp_session import Session, get_session, new_session

from bot import accounts
from bot.agents.presence import PresenceRefused
from bot.console import agent_pages, desk_state
from bot.console.access import ALL_ROLES, home_path
from bot.console.context import USER, client_address, console, user_of
from bot.console.security import (
    PUBLIC,
    SAFE_METHODS,
    Handler,
    allow,
    csrf_ok,
    new_csrf_token,
    public,
    roles_of,
    same_origin,
)
from bot.console.views import render

log = logging.getLogger("waihu.console")

LOGIN_FAILED = "用户名或密码错误，或尝试过多已被暂时锁定。Wrong user name or password, or " \
               "too many attempts (try again later)."
ADDRESS_BLOCKED = "尝试次数过多，请稍后再试。Too many attempts from this address: try again " \
                  "later."


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    match = request.match_info
    if match.http_exception is not None:  # no such route (404) or method (405)
        raise match.http_exception
    if isinstance(match.route.resource, web.StaticResource):
        return await handler(request)
    roles = roles_of(match.handler)
    if roles is None:
        log.error("console.unmarked_handler path=%s", request.path)
        raise web.HTTPForbidden()
    c = console(request)
    session = await get_session(request)
    if request.method not in SAFE_METHODS and not (
            same_origin(request, tls=c.settings.secure_cookies)
            and await csrf_ok(request, session)):
        log.warning("console.csrf_refused path=%s address=%s", request.path,
                    client_address(request))
        raise web.HTTPForbidden(reason="CSRF check failed")
    user = await _session_user(request, session)
    request[USER] = user
    if roles == PUBLIC:
        return await handler(request)
    if user is None:
        if request.method == "GET" and request.headers.get("Upgrade", "").lower() != \
                "websocket":
            raise web.HTTPSeeOther("/login")
        raise web.HTTPUnauthorized()
    if user.role not in roles:
        log.warning("console.forbidden user=%s role=%s path=%s", user.username, user.role,
                    request.path)
        raise web.HTTPForbidden()
    return await handler(request)


async def _session_user(request: web.Request, session: Session) -> accounts.UserInfo | None:
    user_id, issued = session.get("uid"), session.get("iat")
    if not isinstance(user_id, int):
        return None
    c = console(request)
    user = await c.run(accounts.current_user, c.db, user_id)
    expired = (not isinstance(issued, int | float) or c.clock().timestamp() - issued
               > c.settings.session_lifetime.total_seconds())
    if user is None or user.disabled or user.session_version != session.get("ver") \
            or expired:
        session.invalidate()
        return None
    return user


@public
async def login_page(request: web.Request) -> web.StreamResponse:
    user = request[USER]
    if user is not None:
        raise web.HTTPSeeOther(home_path(user.role))
    return await render(request, "login.html")


@public
async def login_submit(request: web.Request) -> web.StreamResponse:
    c = console(request)
    address, now = client_address(request), c.clock()
    if c.throttle.blocked_until(address, now) is not None:
        log.warning("console.login_throttled address=%s", address)
        return await render(request, "login.html", error=ADDRESS_BLOCKED, status=429)
    form = await request.post()
    username = str(form.get("username", "")).strip().lower()[:200]
    password = str(form.get("password", ""))
    if len(password) > accounts.MAX_PASSWORD:
        password = ""  # never hash a megabyte: a refusal like any other
    result = await c.run(accounts.login, c.db, c.passwords, username, password, at=now,
                         address=address, policy=c.settings.login)
    if result.user is None:
        c.throttle.failed(address, now)
        blocked = c.throttle.blocked_until(address, now)
        if blocked is not None:
            await c.run(accounts.record, c.db, "system", "login.address_blocked", None,
                        address=address, until=blocked.isoformat())
        log.info("console.login_failed address=%s", address)
        return await render(request, "login.html", error=LOGIN_FAILED, username=username,
                            status=401)
    session = await new_session(request)  # nothing of the anonymous session carries over
    session["uid"] = result.user.id
    session["ver"] = result.user.session_version
    session["iat"] = now.timestamp()
    new_csrf_token(session)
    log.info("console.login user=%s role=%s", result.user.username, result.user.role)
    raise web.HTTPSeeOther(home_path(result.user.role))


@allow(*ALL_ROLES)
async def logout(request: web.Request) -> web.StreamResponse:
    """Logging out of the console logs an agent out of the desk too (they are offered no
    more calls); not while a call is in their hand: the desk says so instead."""
    c = console(request)
    user = user_of(request)
    if user.agent is not None:
        try:
            message = await c.run(desk_state.leave_desk, c.db, user.id, c.clock())
        except PresenceRefused as exc:
            return await agent_pages.desk_page(request, status=409, error=(
                "通话处理完毕后才能退出 Finish the call before logging out: " + str(exc)))
        if message is not None:
            c.hub.publish(message)
    await c.run(accounts.record, c.db, f"user:{user.username}", "logout", user.username,
                address=client_address(request))
    (await get_session(request)).invalidate()
    raise web.HTTPSeeOther("/login")


def whoami(user: accounts.UserInfo) -> dict[str, Any]:
    return {"username": user.username, "name": user.label, "role": user.role}
