"""The administration page's forms and the pages' WebSocket."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot import accounts, events
from bot.console.feeds import wall
from bot.events import InProcessBus, call_event
from bot.store import AuditRepo, Database
from tests.unit.console.conftest import csrf_of, log_in

Client = TestClient[web.Request, web.Application]
AT = datetime(2030, 5, 6, 9, 0, tzinfo=UTC)


def _user(db: Database, name: str) -> accounts.UserInfo:
    return next(u for u in accounts.list_users(db) if u.username == name)


# --- administration ----------------------------------------------------------------------


async def test_the_administrator_adds_an_agent(client: Client, sqlite_db: Database) -> None:
    await log_in(client, "admin")
    token = await csrf_of(client, "/admin")
    response = await client.post("/admin/users", data={
        "csrf_token": token, "username": "wangfang", "display_name": "王芳", "role": "agent",
        "password": "a good password", "sip_uri": "sip:1002@127.0.0.1",
        "campaigns": "trial, survey", "weight": "3"})
    assert response.status == 200  # after the redirect
    text = await response.text()
    assert "已创建账号" in text and "wangfang" in text and "王芳" in text
    made = _user(sqlite_db, "wangfang")
    assert made.role == "agent" and made.agent is not None
    assert made.agent.campaigns == ("survey", "trial") and made.agent.weight == 3  # by name
    with sqlite_db.session() as session:
        entry = AuditRepo(session).entries(action="user.created", subject="wangfang")[0]
    assert entry.actor == "user:admin"
    assert entry.detail["campaigns"] == ["trial", "survey"]
    # and the new agent can log in
    other = client
    await other.post("/logout", data={"csrf_token": await csrf_of(client, "/admin")})
    assert (await log_in(other, "wangfang", "a good password")).headers["Location"] == "/agent"


@pytest.mark.parametrize("change, message", [
    ({"username": "Bad Name"}, "user name"),
    ({"password": "short"}, "at least 10"),
    ({"role": "root"}, "role must be"),
    ({"weight": "heavy"}, "权重须为整数"),
    ({"username": "qa"}, "exists already"),
    ({"sip_uri": "tel:123"}, "SIP address"),
])
async def test_a_refused_form_says_why_and_creates_nothing(
        client: Client, sqlite_db: Database, change: dict[str, str], message: str) -> None:
    await log_in(client, "admin")
    token = await csrf_of(client, "/admin")
    data = {"csrf_token": token, "username": "newagent", "role": "agent",
            "password": "a good password", "weight": "1", **change}
    before = {u.username for u in accounts.list_users(sqlite_db)}
    response = await client.post("/admin/users", data=data)
    assert response.status == 400
    assert message in await response.text()
    assert {u.username for u in accounts.list_users(sqlite_db)} == before


async def test_disable_and_enable_through_the_page(client: Client,
                                                   sqlite_db: Database) -> None:
    await log_in(client, "admin")
    token = await csrf_of(client, "/admin")
    response = await client.post("/admin/users/agent/disable", data={"csrf_token": token})
    assert "已停用" in await response.text()
    assert _user(sqlite_db, "agent").disabled
    await client.post("/admin/users/agent/enable", data={"csrf_token": token})
    assert not _user(sqlite_db, "agent").disabled
    with sqlite_db.session() as session:
        actions = [e.action for e in AuditRepo(session).entries(subject="agent")
                   if e.actor == "user:admin"]
    assert actions == ["user.disabled", "user.enabled"]


async def test_the_administrator_cannot_disable_themself(client: Client,
                                                         sqlite_db: Database) -> None:
    await log_in(client, "admin")
    token = await csrf_of(client, "/admin")
    response = await client.post("/admin/users/admin/disable", data={"csrf_token": token})
    assert response.status == 400
    assert not _user(sqlite_db, "admin").disabled
    response = await client.post("/admin/users/ghost/disable", data={"csrf_token": token})
    assert response.status == 404


async def test_the_admin_page_lists_accounts_and_the_audit_log(client: Client) -> None:
    await log_in(client, "admin")
    text = await (await client.get("/admin")).text()
    for name in ("admin", "supervisor", "qa", "agent"):
        assert f'data-user="{name}"' in text
    assert "login.succeeded" in text
    assert "argon2" not in text  # no hash on any page


async def test_a_notice_is_only_one_of_the_known_ones(client: Client) -> None:
    await log_in(client, "admin")
    text = await (await client.get("/admin?done=pwned:<b>x</b>")).text()
    assert "pwned" not in text and "<b>x</b>" not in text


# --- WebSocket -------------------------------------------------------------------------


async def _hello(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    message: dict[str, Any] = await asyncio.wait_for(ws.receive_json(), 5)
    return message


@pytest.mark.parametrize("role, page", [("agent", "agent"), ("supervisor", "supervisor"),
                                        ("qa", "qa"), ("admin", "admin"), ("admin", "agent"),
                                        ("supervisor", "qa")])
async def test_the_socket_greets_with_the_role(client: Client, role: str, page: str) -> None:
    await log_in(client, role)
    async with client.ws_connect(f"/ws?page={page}") as ws:
        hello = await _hello(ws)
        assert hello == {"type": "hello", "page": page, "username": role, "name": role,
                         "role": role}
        if page == "supervisor":  # the live wall as it is (test_wall.py)
            assert (await _hello(ws))["type"] == "wall"
        await ws.send_str("ping")
        assert (await _hello(ws))["type"] == "pong"


@pytest.mark.parametrize("role, page", [("agent", "admin"), ("agent", "supervisor"),
                                        ("agent", "qa"), ("qa", "agent"), ("qa", "admin"),
                                        ("supervisor", "agent"), ("admin", "nowhere")])
async def test_the_socket_refuses_a_page_of_another_role(client: Client, role: str,
                                                         page: str) -> None:
    await log_in(client, role)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(f"/ws?page={page}")
    assert refused.value.status == 403


async def test_the_socket_refuses_nobody_and_other_sites(client: Client) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws?page=agent")
    assert refused.value.status == 401
    await log_in(client, "agent")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws?page=agent", headers={"Origin": "http://evil.example"})
    assert refused.value.status == 403


async def test_the_supervisor_socket_follows_the_calls_with_numbers_masked(
        client: Client, bus: InProcessBus) -> None:
    console_wide = bus.subscribers  # the desk watcher's wake-up (watch.py)
    await log_in(client, "supervisor")
    async with client.ws_connect("/ws?page=supervisor") as ws:
        await _hello(ws)
        assert (await _hello(ws))["type"] == "wall"
        bus.publish(call_event(events.TURN_CUSTOMER, "c1", AT, text="我的号码是13812345678"))
        bus.publish(call_event(events.CALL_DIALLED, "c1", AT, campaign="trial",
                               phone="13812345678", contact_id=7))
        message = await _hello(ws)
    assert message["name"] == "call.dialled" and message["call_id"] == "c1"
    assert message["data"] == {"campaign": "trial", "phone": "138****5678"}
    assert bus.subscribers == console_wide or await _settled(bus, console_wide)


async def _settled(bus: InProcessBus, count: int) -> bool:
    for _ in range(50):  # the server side unsubscribes once it sees the close
        if bus.subscribers == count:
            return True
        await asyncio.sleep(0.02)
    return False


async def test_the_agent_socket_gets_no_call_events_yet(client: Client,
                                                        bus: InProcessBus) -> None:
    console_wide = bus.subscribers  # the desk watcher's wake-up (watch.py)
    await log_in(client, "agent")
    async with client.ws_connect("/ws?page=agent") as ws:
        await _hello(ws)
        assert bus.subscribers == console_wide  # the desk page follows no call's events
        bus.publish(call_event(events.CALL_DIALLED, "c1", AT, phone="13812345678"))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ws.receive_json(), 0.2)


async def test_a_disabled_account_loses_its_socket(make_client: Any, users: Any,
                                                   sqlite_db: Database) -> None:
    client = await make_client(ws_recheck_s=0.05)
    await log_in(client, "agent")
    async with client.ws_connect("/ws?page=agent") as ws:
        await _hello(ws)
        accounts.set_disabled(sqlite_db, "agent", True, actor="test")
        closed = await asyncio.wait_for(ws.receive(), 5)
        assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == 4401


def test_the_wall_feed_keeps_only_call_level_fields() -> None:
    assert wall(call_event(events.TURN_BOT, "c", AT, text="您好")) is None
    message = wall(call_event(events.CALL_ENDED, "c", AT, outcome="declined",
                              decline_reason="distrust", error=None, contact_id=3))
    assert message is not None
    assert message["data"] == {"outcome": "declined", "decline_reason": "distrust"}


async def test_templates_mask_phone_numbers(client: Client) -> None:
    import aiohttp_jinja2

    env = aiohttp_jinja2.get_env(client.app)
    shown = env.from_string("{{ phone | mask_phone }}").render(phone="13812345678")
    assert shown == "138****5678"
