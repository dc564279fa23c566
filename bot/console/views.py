"""Rendering a page: the template plus what every page shows (who is logged in, the menu
of the pages their role may open, the CSRF token for its forms)."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session

from bot.accounts import UserInfo
from bot.console.access import PAGE_TITLES, pages_for
from bot.console.context import USER, console
from bot.console.security import csrf_token


async def render(request: web.Request, template: str, *, status: int = 200,
                 **context: Any) -> web.Response:
    session = await get_session(request)
    user = request.get(USER)
    base: dict[str, Any] = {
        "user": user,
        "csrf_token": csrf_token(session),
        "nav": ([(page, PAGE_TITLES[page]) for page in pages_for(user.role)]
                if isinstance(user, UserInfo) else []),
        "path": request.path,
        "server_now": console(request).clock().isoformat(),  # the pages' timers start here
    }
    return aiohttp_jinja2.render_template(template, request, {**base, **context},
                                          status=status)


ERROR_TEXT = {
    401: "请先登录 Please log in",
    403: "无权访问 You may not open this page",
    404: "页面不存在 No such page",
    405: "不支持的请求 Method not allowed",
}


@web.middleware
async def error_pages(request: web.Request, handler: Any) -> web.StreamResponse:
    """4xx refusals as a page of the console (with its menu), not aiohttp's bare text."""
    try:
        return await handler(request)  # type: ignore[no-any-return]
    except web.HTTPException as exc:
        if exc.status < 400 or exc.status not in ERROR_TEXT \
                or request.headers.get("Upgrade", "").lower() == "websocket":
            raise
        return await render(request, "error.html", status=exc.status,
                            message=ERROR_TEXT[exc.status], detail=exc.reason)
