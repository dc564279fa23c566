"""The agent figures pages (the agent's own, every agent's for supervisors) and the audited
unmasked number."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.agents import desk
from bot.agents.presence import PresenceEvent
from bot.agents.report import agent_figures
from bot.console import phones
from bot.store import AuditRepo, Database
from tests.unit.console.conftest import Clock, csrf_of, log_in
from tests.unit.console.desk_helpers import offer, take_call

Client = TestClient[web.Request, web.Application]
SHANGHAI = ZoneInfo("Asia/Shanghai")


def a_worked_call(db: Database, agent_id: int, clock: Clock) -> Any:
    """The agent logs in at the clock, takes a call 10 s later (60 s of talk), records it
    resolved after 20 s of after-call work; the clock is then 5 minutes on."""
    start = clock.now
    with db.session() as session:
        desk.change_presence(session, agent_id, PresenceEvent("log_in"), start)
    taken = take_call(db, agent_id, start + timedelta(seconds=10))
    with db.session(write=True) as session:
        desk.record_disposition(session, taken.escalation_id, agent_id, "resolved",
                                start + timedelta(seconds=95), notes="好了")
    clock.advance(minutes=5)
    return taken


async def test_the_agent_sees_their_day_and_the_call(desk_client: Client, users: Any,
                                                     sqlite_db: Database,
                                                     clock: Clock) -> None:
    taken = a_worked_call(sqlite_db, users["agent"].id, clock)
    await log_in(desk_client, "agent")
    text = await (await desk_client.get("/agent/figures")).text()
    assert "2030-05-06" in text and "Asia/Shanghai" in text
    assert f'data-escalation="{taken.escalation_id}"' in text
    assert "已解决 resolved" in text and "138****5678" in text and "13812345678" not in text
    assert "1:00" in text  # the mean talk time, 60 s
    assert "20 s" in text  # after-call work
    assert "100.0%" in text  # service level: taken in 5 s of 10


async def test_the_figures_are_those_of_waihu_report_agents(
        desk_client: Client, users: Any, sqlite_db: Database, clock: Clock) -> None:
    a_worked_call(sqlite_db, users["agent"].id, clock)
    with sqlite_db.session() as session:
        expected = agent_figures(session, clock.now.astimezone(SHANGHAI).date(), SHANGHAI,
                                 clock.now)
    [row] = expected["agents"]
    await log_in(desk_client, "supervisor")
    text = await (await desk_client.get("/supervisor/agents?day=2030-05-06")).text()
    assert 'data-agent-row="agent"' in text
    assert f"<td class=\"num\">{row['offers']}</td><td class=\"num\">{row['accepted']}</td>" in text
    assert "waihu report --agents --day 2030-05-06" in text


async def test_another_day_and_a_bad_day(desk_client: Client, users: Any,
                                         sqlite_db: Database, clock: Clock) -> None:
    a_worked_call(sqlite_db, users["agent"].id, clock)
    await log_in(desk_client, "agent")
    text = await (await desk_client.get("/agent/figures?day=2030-05-05")).text()
    assert "当天没有记录" in text and "当天没有接听的通话" in text
    response = await desk_client.get("/agent/figures?day=yesterday")
    assert response.status == 400
    assert "日期无效" in await response.text()


@pytest.mark.parametrize("role, path, status", [
    ("agent", "/supervisor/agents", 403),
    ("qa", "/supervisor/agents", 403),
    ("qa", "/agent/figures", 403),
    ("supervisor", "/agent/figures", 403),
    ("supervisor", "/supervisor/agents", 200),
    ("admin", "/supervisor/agents", 200),
    ("admin", "/agent/figures", 200),  # the administrator sees the desk's pages (empty)
    ("agent", "/agent/figures", 200),
])
async def test_who_opens_the_figures(desk_client: Client, role: str, path: str,
                                     status: int) -> None:
    await log_in(desk_client, role)
    assert (await desk_client.get(path, allow_redirects=False)).status == status


@pytest.mark.parametrize("path", ["/agent/figures", "/supervisor/agents"])
async def test_nobody_is_sent_to_log_in(desk_client: Client, path: str) -> None:
    response = await desk_client.get(path, allow_redirects=False)
    assert response.headers["Location"] == "/login"


# --- the unmasked number ---------------------------------------------------------------------


async def _reveal(client: Client, call_id: str, page: str) -> Any:
    token = await csrf_of(client, page)
    return await client.post(f"/calls/{call_id}/phone", headers={"X-CSRF-Token": token})


def _viewed(db: Database) -> list[tuple[str, str | None, dict[str, Any]]]:
    with db.session() as session:
        return [(e.actor, e.subject, e.detail)
                for e in AuditRepo(session).entries(action="phone.viewed")]


async def test_the_agent_sees_the_number_of_their_own_call_audited(
        desk_client: Client, users: Any, sqlite_db: Database, clock: Clock) -> None:
    with sqlite_db.session() as session:
        desk.change_presence(session, users["agent"].id, PresenceEvent("log_in"), clock.now)
    taken = offer(sqlite_db, users["agent"].id, clock.now)
    await log_in(desk_client, "agent")
    response = await _reveal(desk_client, taken.call_id, "/agent")
    assert response.status == 200
    assert await response.json() == {"call_id": taken.call_id, "phone": "13812345678"}
    [(actor, subject, detail)] = _viewed(sqlite_db)
    assert (actor, subject, detail["phone"]) == ("user:agent", taken.call_id, "138****5678")


async def test_not_the_number_of_another_call_nor_after_it(
        desk_client: Client, users: Any, sqlite_db: Database, clock: Clock) -> None:
    taken = a_worked_call(sqlite_db, users["agent"].id, clock)  # over: available again
    await log_in(desk_client, "agent")
    assert (await _reveal(desk_client, taken.call_id, "/agent")).status == 403
    assert (await _reveal(desk_client, "no-such-call", "/agent")).status == 403
    assert _viewed(sqlite_db) == []


async def test_supervisors_see_any_number_and_qa_none(desk_client: Client, users: Any,
                                                       sqlite_db: Database,
                                                       clock: Clock) -> None:
    taken = a_worked_call(sqlite_db, users["agent"].id, clock)
    await log_in(desk_client, "qa")
    assert (await _reveal(desk_client, taken.call_id, "/qa")).status == 403
    await desk_client.post("/logout", data={"csrf_token": await csrf_of(desk_client, "/qa")})
    await log_in(desk_client, "supervisor")
    response = await _reveal(desk_client, taken.call_id, "/supervisor")
    assert (await response.json())["phone"] == "13812345678"
    assert (await _reveal(desk_client, "no-such-call", "/supervisor")).status == 404
    assert [(a, s) for a, s, _ in _viewed(sqlite_db)] == [("user:supervisor", taken.call_id)]


async def test_the_number_needs_the_token_and_a_login(desk_client: Client, users: Any,
                                                      sqlite_db: Database,
                                                      clock: Clock) -> None:
    taken = a_worked_call(sqlite_db, users["agent"].id, clock)
    token = await csrf_of(desk_client, "/login")
    response = await desk_client.post(f"/calls/{taken.call_id}/phone",
                                      headers={"X-CSRF-Token": token})
    assert response.status == 401
    await log_in(desk_client, "supervisor")
    response = await desk_client.post(f"/calls/{taken.call_id}/phone")
    assert response.status == 403
    response = await desk_client.post(f"/calls/{taken.call_id}/phone", headers={
        "X-CSRF-Token": await csrf_of(desk_client, "/supervisor"),
        "Origin": "http://evil.example"})
    assert response.status == 403
    assert _viewed(sqlite_db) == []


def test_who_may_see_a_number() -> None:
    from bot.agents.presence import Presence

    on_call = Presence("on_call", clock_start := Clock().now, call_id="c1")
    assert phones.may_reveal("agent", on_call, "c1")
    assert not phones.may_reveal("agent", on_call, "c2")
    assert not phones.may_reveal("agent", Presence("available", clock_start), "c1")
    assert not phones.may_reveal("agent", None, "c1")
    assert not phones.may_reveal("qa", on_call, "c1")
    assert phones.may_reveal("supervisor", None, "c1") and phones.may_reveal("admin", None, "x")
