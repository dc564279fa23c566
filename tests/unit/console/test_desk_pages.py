"""The agent desk in the console: presence buttons, refusals shown as messages, logging
out of the desk with the console, after-call work and its disposition (audited, with the
customer's callback), the watcher that ends wrap-up at the cap, and the live pushes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot import accounts
from bot.agents import desk
from bot.agents.presence import PresenceEvent
from bot.console import watch
from bot.console.context import CONSOLE
from bot.store import AuditRepo, Database
from bot.store.models import Callback, Contact, Disposition
from tests.unit.console.conftest import Clock, csrf_of, log_in
from tests.unit.console.desk_helpers import offer, states, take_call

Client = TestClient[web.Request, web.Application]


async def press(client: Client, action: str, reason: str = "",
                token: str | None = None) -> aiohttp.ClientResponse:
    token = token or await csrf_of(client, "/agent")
    return await client.post("/agent/presence", data={
        "csrf_token": token, "action": action, "reason": reason}, allow_redirects=False)


async def test_logging_in_does_not_make_the_agent_available(
        desk_client: Client, users: Any, sqlite_db: Database) -> None:
    await log_in(desk_client, "agent")
    text = await (await desk_client.get("/agent")).text()
    assert 'data-state="offline"' in text and "开始接听" in text
    assert states(sqlite_db, users["agent"].id) == []


async def test_available_away_with_a_reason_back_and_out(
        desk_client: Client, users: Any, sqlite_db: Database, clock: Clock) -> None:
    await log_in(desk_client, "agent")
    assert (await press(desk_client, "available")).headers["Location"] == "/agent"
    clock.advance(minutes=30)
    await press(desk_client, "away", "meeting")
    text = await (await desk_client.get("/agent")).text()
    assert 'data-state="away"' in text and "会议 meeting" in text and "回来接听" in text
    clock.advance(minutes=45)
    await press(desk_client, "back")
    await press(desk_client, "offline")
    assert states(sqlite_db, users["agent"].id) == [
        ("log_in", "available", None), ("go_away", "away", "meeting"),
        ("come_back", "available", None), ("log_out", "offline", None)]
    with sqlite_db.session() as session:
        presence = desk.presence_of(session, users["agent"].id)
    assert presence.since == clock.now


@pytest.mark.parametrize("action, reason, status, message", [
    ("back", "", 409, "现在不能这样操作"),  # available: not away
    ("available", "", 409, "already logged in"),
    ("away", "", 400, "请选择离开原因"),
    ("away", "missed_offer", 400, "请选择离开原因"),  # set by the desk, not chosen
    ("dance", "", 400, "unknown desk action"),
])
async def test_a_refused_change_is_a_message_and_changes_nothing(
        desk_client: Client, users: Any, sqlite_db: Database, action: str, reason: str,
        status: int, message: str) -> None:
    await log_in(desk_client, "agent")
    await press(desk_client, "available")
    response = await press(desk_client, action, reason)
    assert response.status == status
    text = await response.text()
    assert message in text and 'role="alert"' in text and 'id="agent-state"' in text
    assert states(sqlite_db, users["agent"].id) == [("log_in", "available", None)]


async def test_the_administrator_has_no_desk_to_change(desk_client: Client) -> None:
    await log_in(desk_client, "admin")
    response = await press(desk_client, "available")
    assert response.status == 409
    assert "no agent profile" in await response.text()


@pytest.mark.parametrize("path", ["/agent/presence", "/agent/disposition",
                                  "/calls/x/phone"])
async def test_desk_posts_without_the_token_are_refused(desk_client: Client, users: Any,
                                                         sqlite_db: Database,
                                                         path: str) -> None:
    await log_in(desk_client, "agent")
    response = await desk_client.post(path, data={"action": "available"})
    assert response.status == 403
    response = await desk_client.post(path, data={"action": "available",
                                                  "csrf_token": "forged"})
    assert response.status == 403
    assert states(sqlite_db, users["agent"].id) == []


@pytest.mark.parametrize("role", ["supervisor", "qa"])
async def test_only_agents_change_a_desk(desk_client: Client, role: str) -> None:
    await log_in(desk_client, role)
    token = await csrf_of(desk_client, "/qa")
    for path in ("/agent/presence", "/agent/disposition"):
        response = await desk_client.post(path, data={"csrf_token": token,
                                                      "action": "available"})
        assert response.status == 403, path
    assert (await desk_client.get("/agent/figures")).status == 403


async def test_logging_out_of_the_console_logs_out_of_the_desk(
        desk_client: Client, users: Any, sqlite_db: Database) -> None:
    await log_in(desk_client, "agent")
    await press(desk_client, "available")
    token = await csrf_of(desk_client, "/agent")
    response = await desk_client.post("/logout", data={"csrf_token": token},
                                      allow_redirects=False)
    assert response.headers["Location"] == "/login"
    assert states(sqlite_db, users["agent"].id)[-1] == ("log_out", "offline", None)


async def test_no_logging_out_with_a_call_in_hand(desk_client: Client, users: Any,
                                                   sqlite_db: Database, clock: Clock) -> None:
    await log_in(desk_client, "agent")
    await press(desk_client, "available")
    offer(sqlite_db, users["agent"].id, clock.now)
    token = await csrf_of(desk_client, "/agent")
    response = await desk_client.post("/logout", data={"csrf_token": token},
                                      allow_redirects=False)
    assert response.status == 409
    assert "通话处理完毕后才能退出" in await response.text()
    assert (await desk_client.get("/agent", allow_redirects=False)).status == 200  # still in
    assert states(sqlite_db, users["agent"].id)[-1][1] == "offered"


async def test_an_offered_call_shows_its_customer_masked(desk_client: Client, users: Any,
                                                         sqlite_db: Database,
                                                         clock: Clock) -> None:
    await log_in(desk_client, "agent")
    await press(desk_client, "available")
    offer(sqlite_db, users["agent"].id, clock.now)
    text = await (await desk_client.get("/agent")).text()
    assert 'data-state="offered"' in text and "王五" in text
    assert "138****5678" in text and "13812345678" not in text
    assert "客户要求人工" in text


# --- after-call work -----------------------------------------------------------------------


async def _in_wrap_up(client: Client, db: Database, agent_id: int, clock: Clock) -> Any:
    await log_in(client, "agent")
    await press(client, "available")
    taken = take_call(db, agent_id, clock.now + timedelta(seconds=10))  # ends at +75 s
    clock.advance(seconds=100)  # 25 s of after-call work so far
    return taken


async def test_wrap_up_shows_the_form_and_a_disposition_ends_it(
        desk_client: Client, users: Any, sqlite_db: Database, clock: Clock) -> None:
    agent_id = users["agent"].id
    taken = await _in_wrap_up(desk_client, sqlite_db, agent_id, clock)
    text = await (await desk_client.get("/agent")).text()
    ends = (clock.now - timedelta(seconds=25) + timedelta(seconds=90)).isoformat()
    assert 'data-state="wrap_up"' in text and 'id="disposition-form"' in text
    assert f'data-ends="{ends}"' in text and "/ 90 s" in text
    token = await csrf_of(desk_client, "/agent")
    response = await desk_client.post("/agent/disposition", data={
        "csrf_token": token, "escalation_id": str(taken.escalation_id),
        "disposition": "resolved", "notes": "客户问资费，已解释；号码13912345678"},
        allow_redirects=False)
    assert response.headers["Location"] == "/agent?done=recorded"
    text = await (await desk_client.get("/agent?done=recorded")).text()
    assert 'data-state="available"' in text and "处理结果已保存" in text
    with sqlite_db.session() as session:
        row = session.scalar(select(Disposition))
        assert row is not None
        assert (row.disposition, row.wrap_up_s, row.agent_id) == ("resolved", 25.0, agent_id)
        entry = AuditRepo(session).entries(action="disposition.recorded")[0]
    assert entry.actor == "user:agent" and entry.subject == taken.call_id
    assert entry.detail["disposition"] == "resolved" and entry.detail["wrap_up_s"] == 25.0
    assert "139****5678" in entry.detail["notes"]  # numbers masked in the audit log
    assert states(sqlite_db, agent_id)[-1] == ("wrap_up_done", "available", None)


@pytest.mark.parametrize("fields, status, message", [
    ({"disposition": "callback"}, 400, "约定回电须填写时间"),
    ({"disposition": "callback", "callback_at": "2030-05-06T08:00"}, 400,
     "the callback time is in the past"),
    ({"disposition": "callback", "callback_at": "tomorrow"}, 400, "回电时间无效"),
    ({"disposition": "nice"}, 400, "请选择处理结果"),
    ({"disposition": "resolved", "escalation_id": "999"}, 409, "no escalation 999"),
])
async def test_a_refused_disposition_says_why(desk_client: Client, users: Any,
                                              sqlite_db: Database, clock: Clock,
                                              fields: dict[str, str], status: int,
                                              message: str) -> None:
    taken = await _in_wrap_up(desk_client, sqlite_db, users["agent"].id, clock)
    token = await csrf_of(desk_client, "/agent")
    response = await desk_client.post("/agent/disposition", data={
        "csrf_token": token, "escalation_id": str(taken.escalation_id), **fields})
    assert response.status == status
    text = await response.text()
    assert message in text and 'id="disposition-form"' in text  # the form is still there
    with sqlite_db.session() as session:
        assert session.scalar(select(Disposition)) is None


async def test_a_callback_is_scheduled_for_the_dialer_and_a_change_is_audited(
        desk_client: Client, users: Any, sqlite_db: Database, clock: Clock) -> None:
    taken = await _in_wrap_up(desk_client, sqlite_db, users["agent"].id, clock)
    token = await csrf_of(desk_client, "/agent")
    # 13:00 in Shanghai is between the campaign's windows: moved to 14:00
    await desk_client.post("/agent/disposition", data={
        "csrf_token": token, "escalation_id": str(taken.escalation_id),
        "disposition": "callback", "callback_at": "2030-05-07T13:00", "notes": "明天下午"})
    due = datetime(2030, 5, 7, 6, 0, tzinfo=UTC)
    with sqlite_db.session() as session:
        callback = session.scalar(select(Callback))
        assert callback is not None
        assert (callback.kind, callback.status, callback.due_at, callback.call_id) == (
            "customer_request", "pending", due, taken.call_id)
        contact = session.get(Contact, callback.contact_id)
        assert contact is not None
        assert (contact.status, contact.next_attempt_at) == ("pending", due)

    clock.advance(minutes=10)  # from the figures page: a change, with the old values
    token = await csrf_of(desk_client, "/agent/figures")
    response = await desk_client.post("/agent/disposition", data={
        "csrf_token": token, "escalation_id": str(taken.escalation_id), "from": "figures",
        "day": "2030-05-06", "disposition": "sale", "notes": "已成交"},
        allow_redirects=False)
    # a sale the ledger does not prove: saved, with the warning
    assert response.headers["Location"] == "/agent/figures?day=2030-05-06&done=unproven_sale"
    with sqlite_db.session() as session:
        assert session.scalar(select(Callback.status)) == "cancelled"
        row = session.scalar(select(Disposition))
        assert row is not None and row.disposition == "sale" and row.updated_at == clock.now
        entry = AuditRepo(session).entries(action="disposition.changed")[0]
    asked = datetime(2030, 5, 7, 5, 0, tzinfo=UTC)  # what the agent wrote, not the window
    assert entry.detail["before"] == {"disposition": "callback", "notes": "明天下午",
                                      "callback_at": asked.isoformat()}
    assert entry.detail["after"]["disposition"] == "sale"


async def test_only_the_agent_who_took_the_call_records_it(
        desk_client: Client, users: Any, sqlite_db: Database, clock: Clock,
        passwords: accounts.Passwords) -> None:
    taken = await _in_wrap_up(desk_client, sqlite_db, users["agent"].id, clock)
    accounts.create_user(sqlite_db, passwords, "other", "agent", "correct horse 1",
                         actor="test", agent=accounts.AgentOptions(None, ("trial",), 1))
    token = await csrf_of(desk_client, "/agent")
    await desk_client.post("/logout", data={"csrf_token": token})
    await log_in(desk_client, "other")
    token = await csrf_of(desk_client, "/agent")
    response = await desk_client.post("/agent/disposition", data={
        "csrf_token": token, "escalation_id": str(taken.escalation_id),
        "disposition": "resolved"})
    assert response.status == 409
    assert "did not take escalation" in await response.text()


async def test_the_watcher_ends_wrap_up_at_the_cap(desk_client: Client, users: Any,
                                                   sqlite_db: Database, clock: Clock) -> None:
    agent_id = users["agent"].id
    await _in_wrap_up(desk_client, sqlite_db, agent_id, clock)
    c = desk_client.app[CONSOLE]
    await watch.tick(c)
    assert states(sqlite_db, agent_id)[-1][1] == "wrap_up"  # 25 s of 90
    clock.advance(seconds=65)  # the cap
    await watch.tick(c)
    assert states(sqlite_db, agent_id)[-1] == ("wrap_up_expired", "available", None)
    assert c.hub.latest(agent_id)[0]["state"] == "available"
    text = await (await desk_client.get("/agent/figures")).text()
    assert "未记录 not recorded" in text  # it can still be recorded from there


async def test_a_desk_opened_after_the_cap_shows_the_agent_available(
        desk_client: Client, users: Any, sqlite_db: Database, clock: Clock) -> None:
    await _in_wrap_up(desk_client, sqlite_db, users["agent"].id, clock)
    clock.advance(seconds=300)
    text = await (await desk_client.get("/agent")).text()
    assert 'data-state="available"' in text
    assert states(sqlite_db, users["agent"].id)[-1][0] == "wrap_up_expired"


# --- live pushes ------------------------------------------------------------------------------


async def _receive(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    message: dict[str, Any] = await asyncio.wait_for(ws.receive_json(), 5)
    return message


async def test_presence_changes_reach_the_desk_and_the_supervisors(
        desk_client: Client, make_client: Any, users: Any, sqlite_db: Database,
        clock: Clock) -> None:
    supervisor = await make_client(desk_poll_s=0)
    await log_in(supervisor, "supervisor")
    await log_in(desk_client, "agent")
    agent_id = users["agent"].id
    async with desk_client.ws_connect("/ws?page=agent") as mine, \
            supervisor.ws_connect("/ws?page=supervisor") as wall:
        assert (await _receive(mine))["type"] == "hello"
        assert (await _receive(wall))["type"] == "hello"
        assert (await _receive(wall))["type"] == "wall"  # the live wall as it is (wall.py)
        await press(desk_client, "available")
        pushed = await _receive(mine)
        assert pushed == {"type": "presence", "agent_id": agent_id, "username": "agent",
                          "name": "agent", "seq": 1, "state": "available",
                          "since": clock.now.isoformat(), "reason": None, "call_id": None}
        # the supervisor's page is another console here: it sees the change on its watch
        await watch.tick(supervisor.app[CONSOLE])
        assert (await _receive(wall))["state"] == "available"
        # a change made elsewhere (the gateway's offer) reaches the desk through the watch
        offer(sqlite_db, agent_id, clock.now + timedelta(seconds=3))
        await watch.tick(desk_client.app[CONSOLE])
        pushed = await _receive(mine)
        assert (pushed["state"], pushed["seq"]) == ("offered", 2)
        await watch.tick(desk_client.app[CONSOLE])  # nothing new: nothing sent again
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(mine.receive_json(), 0.2)


async def test_an_agent_page_sees_only_its_own_presence(
        desk_client: Client, users: Any, sqlite_db: Database, clock: Clock,
        passwords: accounts.Passwords, make_client: Any) -> None:
    other = accounts.create_user(sqlite_db, passwords, "other", "agent", "correct horse 1",
                                 actor="test", agent=accounts.AgentOptions(None, ("trial",), 1))
    with sqlite_db.session() as session:
        desk.change_presence(session, other.id, PresenceEvent("log_in"), clock.now)
    await watch.tick(desk_client.app[CONSOLE])
    await log_in(desk_client, "agent")
    async with desk_client.ws_connect("/ws?page=agent") as ws:
        assert (await _receive(ws))["type"] == "hello"
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ws.receive_json(), 0.2)
    supervisor = await make_client(desk_poll_s=0)
    await watch.tick(supervisor.app[CONSOLE])
    await log_in(supervisor, "supervisor")
    async with supervisor.ws_connect("/ws?page=supervisor") as ws:
        await _receive(ws)
        assert (await _receive(ws))["username"] == "other"  # the latest, as the page opens
    text = await (await supervisor.get("/supervisor")).text()
    assert f'data-agent-id="{other.id}"' in text and "空闲 available" in text


def test_a_second_identical_change_is_passed_on_once() -> None:
    from bot.console.hub import DeskHub

    hub = DeskHub()
    message = {"type": "presence", "agent_id": 1, "seq": 2, "state": "available"}
    with hub.following(None) as every, hub.following(2) as other:
        assert hub.publish(message) and not hub.publish(dict(message))
        assert not hub.publish({**message, "seq": 1})  # an older change read late
        assert every.qsize() == 1 and other.qsize() == 0
