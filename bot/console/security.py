"""The console's guards that do not depend on who is logged in: response headers, CSRF
tokens, the Origin check, and the marks that say who may call a handler.

CSRF: the synchronizer-token pattern bound to the session.  Each session holds a random
token (`secrets.token_urlsafe`, 32 bytes); every form carries it in the hidden field
``csrf_token`` and every script request in the ``X-CSRF-Token`` header; a state-changing
request (anything but GET, HEAD, OPTIONS) without the session's token is refused with 403
before its handler runs, compared in constant time (`hmac.compare_digest`).  The token is
replaced at login.  A cross-site request is also refused by its ``Origin`` (or
``Sec-Fetch-Site``) header when the browser sends one.  docs/architecture.md says why this
is ours rather than a package's.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from aiohttp_session import Session

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
CSRF_SESSION_KEY = "csrf"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)
ROLES_MARK = "_console_roles"
PUBLIC = "public"

# No inline script or style anywhere: the pages load /static files only.  connect-src
# 'self' admits the page's own WebSocket (ws: and wss: of the same host).
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; media-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


def public(handler: H) -> H:
    """Mark *handler* as open to anyone (the login page); every other handler needs one of
    the roles given with `allow`, and a handler with neither mark is refused."""
    setattr(handler, ROLES_MARK, PUBLIC)
    return handler


def allow(*roles: str) -> Callable[[H], H]:
    def mark(handler: H) -> H:
        setattr(handler, ROLES_MARK, tuple(roles))
        return handler
    return mark


def roles_of(handler: Any) -> tuple[str, ...] | str | None:
    return getattr(handler, ROLES_MARK, None)


def add_security_headers(secure: bool) -> Callable[[web.Request, web.StreamResponse],
                                                   Awaitable[None]]:
    """An `on_response_prepare` hook: every response, errors and static files included."""
    async def prepare(request: web.Request, response: web.StreamResponse) -> None:
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if secure:
            response.headers.setdefault("Strict-Transport-Security",
                                        "max-age=31536000; includeSubDomains")
        if not request.path.startswith("/static/"):
            # Pages show customers' data: never kept in a shared cache or the back button.
            response.headers.setdefault("Cache-Control", "no-store")
    return prepare


def csrf_token(session: Session) -> str:
    """The session's token, made on first use."""
    token = session.get(CSRF_SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_SESSION_KEY] = token
    return token


def new_csrf_token(session: Session) -> str:
    session[CSRF_SESSION_KEY] = secrets.token_urlsafe(32)
    return str(session[CSRF_SESSION_KEY])


async def csrf_ok(request: web.Request, session: Session) -> bool:
    """Whether a state-changing *request* carries the session's token."""
    expected = session.get(CSRF_SESSION_KEY)
    if not isinstance(expected, str) or not expected:
        return False
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.content_type in ("application/x-www-form-urlencoded",
                                                  "multipart/form-data"):
        value = (await request.post()).get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def same_origin(request: web.Request, *, tls: bool) -> bool:
    """False when the browser says the request comes from another site.  Requests without
    these headers (older browsers, scripts) are left to the token.  *tls*: the browser
    sees https (a reverse proxy terminates it and forwards the Host header unchanged)."""
    if request.headers.get("Sec-Fetch-Site") in ("cross-site", "same-site"):
        return False
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    scheme = "https" if tls else request.scheme
    return origin == f"{scheme}://{request.host}"
