"""`create_app`: the console as one aiohttp application -- its route table, sessions,
templates, security headers and static files."""

from __future__ import annotations

import base64
import hashlib
import hmac
import weakref
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import session_middleware
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from cryptography.fernet import Fernet, MultiFernet

from bot import keys
from bot.accounts import Passwords
from bot.console import (
    agent_pages,
    auth,
    complaint_pages,
    figure_pages,
    library_pages,
    live_turns,
    monitor_pages,
    pages,
    phones,
    qa_pages,
    wall,
    watch,
    weekly_pages,
    ws,
)
from bot.console.access import ROLE_LABELS
from bot.console.context import CONSOLE, Console
from bot.console.labels import GLOBALS as LABELS
from bot.console.security import add_security_headers
from bot.console.settings import ConsoleSettings
from bot.console.throttle import AddressThrottle
from bot.console.views import error_pages
from bot.events import EventBus
from bot.privacy import mask_phone
from bot.store import Database, utcnow

HERE = Path(__file__).resolve().parent
COOKIE = "waihu_console"
MAX_BODY = 64 * 1024  # forms only: nothing the console accepts is larger

ROUTES = [
    web.get("/", pages.home),
    web.get("/login", auth.login_page),
    web.post("/login", auth.login_submit),
    web.post("/logout", auth.logout),
    web.get("/agent", agent_pages.agent_page),
    web.post("/agent/presence", agent_pages.change_presence),
    web.post("/agent/disposition", agent_pages.record_disposition),
    web.post(r"/agent/offers/{offer_id:\d+}/{action:listen|accept|decline}",
             agent_pages.answer_offer),
    web.post(r"/agent/offers/{offer_id:\d+}/handback", agent_pages.hand_back),
    web.get("/agent/figures", figure_pages.own_figures),
    web.get("/supervisor", pages.supervisor_page),
    web.get("/supervisor/agents", figure_pages.team_figures),
    web.post("/calls/{call_id}/phone", phones.reveal_phone),
    web.get("/admin", pages.admin_page),
    web.post("/admin/users", pages.admin_add_user),
    web.post(r"/admin/users/{name}/{action:disable|enable}", pages.admin_set_disabled),
    web.post("/admin/agents/{name}", pages.admin_set_agent),
    web.get("/ws", ws.websocket),
    *qa_pages.ROUTES,
    *complaint_pages.ROUTES,
    *library_pages.ROUTES,
    *weekly_pages.ROUTES,
    *wall.ROUTES,
    *monitor_pages.ROUTES,
]


class SessionCipher(Fernet):
    """Fernet that encrypts with the keyring's current key and decrypts with any of its
    keys, so that `waihu keys rotate console-session` does not log everybody out (the
    sessions move to the new key as they are written again)."""

    def __init__(self, ring: keys.Keyring) -> None:
        fernets = [Fernet(_fernet_key(key.secret)) for key in ring.keys]
        super().__init__(_fernet_key(ring.current.secret))
        self._all = MultiFernet(fernets)

    def decrypt(self, token: bytes | str, ttl: int | None = None) -> bytes:
        return self._all.decrypt(token, ttl)


def _fernet_key(secret: bytes) -> bytes:
    # A key of its own for this use, whatever the keyring's secret length.
    return base64.urlsafe_b64encode(
        hmac.new(secret, b"waihu console session cookie", hashlib.sha256).digest())


def create_app(settings: ConsoleSettings, db: Database, events: EventBus, *,
               passwords: Passwords | None = None,
               clock: Callable[[], datetime] = utcnow,
               session_keys: keys.Keyring | None = None) -> web.Application:
    """The console.  *session_keys*: the cookie keyring (default: `console-session` from
    bot.keys, which refuses a missing or world-readable key file)."""
    ring = session_keys or keys.load(keys.CONSOLE_SESSION)
    storage = EncryptedCookieStorage(
        SessionCipher(ring), cookie_name=f"__Host-{COOKIE}" if settings.secure_cookies
        else COOKIE, max_age=int(settings.session_lifetime.total_seconds()), httponly=True,
        secure=settings.secure_cookies, samesite="Lax", path="/")
    app = web.Application(middlewares=[session_middleware(storage), error_pages, auth.guard],
                          client_max_size=MAX_BODY)
    app[CONSOLE] = Console(settings, db, events, passwords or Passwords(),
                           AddressThrottle(settings.address_failures, settings.address_window),
                           clock)
    app[ws.SOCKETS] = weakref.WeakSet()
    env = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(HERE / "templates"),
                               autoescape=True, undefined=jinja2.StrictUndefined)
    zone = ZoneInfo(settings.timezone)
    env.filters["mask_phone"] = lambda phone: mask_phone(str(phone)) if phone else ""
    env.filters["when"] = lambda at: _when(at, zone)
    env.filters.update(figure_pages.FILTERS)
    env.globals["ROLE_LABELS"] = ROLE_LABELS
    env.globals.update(LABELS)
    app.router.add_routes(ROUTES)
    app.router.add_static("/static/", HERE / "static", name="static")
    app.on_response_prepare.append(add_security_headers(settings.secure_cookies))
    app.on_shutdown.append(ws.close_sockets)
    app.cleanup_ctx.append(watch.watching)
    app.cleanup_ctx.append(live_turns.following)
    app.cleanup_ctx.append(wall.running)
    return app


def _when(at: Any, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if isinstance(at, datetime) else "—"
