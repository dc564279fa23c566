"""Every route of the console, for every role and for nobody: who gets the page, who is
refused, and where the anonymous are sent."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot import accounts
from bot.console import access
from bot.console.app import ROUTES, create_app
from bot.console.context import CONSOLE
from bot.console.settings import ConsoleSettings
from tests.unit.console.conftest import ROLES, csrf_of, log_in

Client = TestClient[web.Request, web.Application]
PAGES = ("agent", "supervisor", "qa", "admin")
EXPECTED = {  # role -> the pages it may open (the administrator opens all)
    "admin": {"agent", "supervisor", "qa", "admin"},
    "supervisor": {"supervisor", "qa"},
    "qa": {"qa"},
    "agent": {"agent"},
}


def test_the_access_table_is_the_expected_one() -> None:
    for role in ROLES:
        assert set(access.pages_for(role)) == EXPECTED[role]
        assert access.may_open(role, access.HOME[role])
    assert not access.may_open("agent", "nowhere")


def test_every_route_has_a_mark() -> None:
    from bot.console.security import roles_of

    for route in ROUTES:
        assert isinstance(route, web.RouteDef)
        assert roles_of(route.handler) is not None, route.path


@pytest.mark.parametrize("role", ROLES)
async def test_each_role_opens_its_pages_and_is_refused_the_others(
        client: Client, role: str) -> None:
    response = await log_in(client, role)
    assert response.status == 303
    assert response.headers["Location"] == f"/{access.HOME[role]}"
    for page in PAGES:
        response = await client.get(f"/{page}", allow_redirects=False)
        if page in EXPECTED[role]:
            assert response.status == 200, (role, page)
            text = await response.text()
            assert role in text  # the logged-in user's name is in the top bar
        else:
            assert response.status == 403, (role, page)
            assert "无权访问" in await response.text()
    home = await client.get("/", allow_redirects=False)
    assert home.headers["Location"] == f"/{access.HOME[role]}"


@pytest.mark.parametrize("path", ["/", "/agent", "/supervisor", "/qa", "/admin"])
async def test_nobody_is_sent_to_the_login(client: Client, path: str) -> None:
    response = await client.get(path, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/login"


@pytest.mark.parametrize("path", ["/logout", "/admin/users", "/admin/users/agent/disable",
                                  "/admin/users/agent/enable", "/agent/presence",
                                  "/agent/disposition", "/calls/c1/phone"])
async def test_nobody_may_post_even_with_a_token(client: Client, path: str) -> None:
    token = await csrf_of(client, "/login")  # an anonymous session's token
    response = await client.post(path, data={"csrf_token": token}, allow_redirects=False)
    assert response.status == 401


@pytest.mark.parametrize("role", ["supervisor", "qa", "agent"])
@pytest.mark.parametrize("path", ["/admin/users", "/admin/users/qa/disable"])
async def test_only_the_administrator_changes_accounts(client: Client, role: str,
                                                       path: str) -> None:
    await log_in(client, role)
    token = await csrf_of(client, f"/{access.HOME[role]}")
    response = await client.post(path, data={
        "csrf_token": token, "username": "intruder", "role": "admin",
        "password": "long enough 123"}, allow_redirects=False)
    assert response.status == 403
    admin = await _admin_view(client)
    assert "intruder" not in admin and "已停用" not in admin


async def _admin_view(client: Client) -> str:
    c = client.app[CONSOLE]
    return " ".join(f"{u.username}:{'已停用' if u.disabled else 'ok'}"
                    for u in accounts.list_users(c.db))


async def test_unknown_paths_and_methods(client: Client) -> None:
    assert (await client.get("/nowhere")).status == 404
    assert (await client.put("/admin")).status == 405


async def test_the_login_page_sends_a_logged_in_user_home(client: Client) -> None:
    await log_in(client, "qa")
    response = await client.get("/login", allow_redirects=False)
    assert response.headers["Location"] == "/qa"


async def test_a_handler_without_a_mark_is_refused(
        users: Any, sqlite_db: Any, passwords: Any, clock: Any, bus: Any) -> None:
    async def unmarked(request: web.Request) -> web.Response:
        return web.Response(text="should not be seen")

    app = create_app(ConsoleSettings(), sqlite_db, bus, passwords=passwords, clock=clock)
    app.router.add_get("/unmarked", unmarked)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        await log_in(client, "admin")
        response = await client.get("/unmarked")
        assert response.status == 403
        assert "should not be seen" not in await response.text()
    finally:
        await client.close()


async def test_pages_render_the_menu_of_the_role(client: Client) -> None:
    await log_in(client, "supervisor")
    text = await (await client.get("/supervisor")).text()
    assert 'href="/qa"' in text and 'href="/supervisor"' in text
    assert 'href="/admin"' not in text and 'href="/agent"' not in text


async def test_agent_desk_shows_the_agent_profile(client: Client) -> None:
    await log_in(client, "agent")
    text = await (await client.get("/agent")).text()
    assert "sip:1001@127.0.0.1" in text
    assert "trial" in text
    assert 'data-page="agent"' in text
    assert "暂无转接来电" in text  # the empty offer area
