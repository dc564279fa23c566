"""Who may open what: the console's pages and the roles allowed on each.

Pure data and functions, read by the route table (app.py), the WebSocket (ws.py) and the
navigation (templates).  The administrator may open every page.
"""

from __future__ import annotations

from bot.store.vocab import USER_ROLES

ALL_ROLES: tuple[str, ...] = USER_ROLES
# page -> roles allowed; supervisors also review their weekly QA sample.
PAGE_ROLES: dict[str, tuple[str, ...]] = {
    "agent": ("agent", "admin"),
    "supervisor": ("supervisor", "admin"),
    "qa": ("qa", "supervisor", "admin"),
    "admin": ("admin",),
}
PAGE_TITLES = {
    "agent": "坐席工作台 Agent desk",
    "supervisor": "班组长 Supervisor",
    "qa": "质检 QA",
    "admin": "系统管理 Admin",
}
ROLE_LABELS = {
    "admin": "管理员 Admin",
    "supervisor": "班组长 Supervisor",
    "qa": "质检员 QA",
    "agent": "坐席 Agent",
}
HOME = {"agent": "agent", "supervisor": "supervisor", "qa": "qa", "admin": "admin"}


def may_open(role: str, page: str) -> bool:
    return role in PAGE_ROLES.get(page, ())


def pages_for(role: str) -> list[str]:
    """The pages *role* may open, in menu order."""
    return [page for page in PAGE_ROLES if may_open(role, page)]


def home_path(role: str) -> str:
    return "/" + HOME[role]
