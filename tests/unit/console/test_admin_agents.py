"""The administration page's agent form: POST /admin/agents/{name} (bot/console/pages.py)
changes an agent's SIP address, campaigns and weight for administrators only, with the CSRF
token, and writes the change's before and after values to the audit log."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot import accounts
from bot.store import AuditRepo, CampaignRepo, Database
from tests.unit.console.conftest import csrf_of, log_in

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def campaigns(sqlite_db: Database) -> None:
    with sqlite_db.session() as session:
        for name in ("trial", "survey"):
            CampaignRepo(session).add(name, "marketing", {}, "a" * 64)


def _agent(db: Database) -> accounts.AgentInfo:
    [user] = [u for u in accounts.list_users(db) if u.username == "agent"]
    assert user.agent is not None
    return user.agent


def _changes(db: Database) -> list[tuple[str, dict[str, object]]]:
    with db.session() as session:
        return [(e.actor, e.detail) for e in AuditRepo(session).entries(
            action="agent.changed", subject="agent")]


BEFORE = accounts.AgentInfo("sip:1001@127.0.0.1", ("trial",), 2)  # conftest's agent


async def test_the_page_offers_a_form_per_agent_filled_with_the_settings(
        client: Client) -> None:
    await log_in(client, "admin")
    text = await (await client.get("/admin")).text()
    assert text.count('action="/admin/agents/') == 1  # the one agent; not qa, admin, ...
    assert 'action="/admin/agents/agent"' in text
    assert 'name="sip_uri" maxlength="200" value="sip:1001@127.0.0.1"' in text
    assert 'name="campaigns" maxlength="1000" value="trial"' in text


async def test_the_administrator_changes_an_agent_and_the_audit_log_keeps_it(
        client: Client, sqlite_db: Database, campaigns: None) -> None:
    await log_in(client, "admin")
    token = await csrf_of(client, "/admin")
    response = await client.post("/admin/agents/agent", data={
        "csrf_token": token, "sip_uri": "sip:2001@pbx.example.com:5070",
        "campaigns": "survey, trial", "weight": "5"}, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/admin?done=agent:agent"
    text = await (await client.get("/admin?done=agent:agent")).text()
    assert "已保存坐席设置" in text and "agent.changed" in text
    assert _agent(sqlite_db) == accounts.AgentInfo("sip:2001@pbx.example.com:5070",
                                                   ("survey", "trial"), 5)
    assert _changes(sqlite_db) == [("user:admin", {
        "before": {"sip_uri": "sip:1001@127.0.0.1", "campaigns": ["trial"], "weight": 2},
        "after": {"sip_uri": "sip:2001@pbx.example.com:5070",
                  "campaigns": ["survey", "trial"], "weight": 5}})]


async def test_an_empty_sip_field_keeps_the_address(client: Client, sqlite_db: Database,
                                                    campaigns: None) -> None:
    await log_in(client, "admin")
    token = await csrf_of(client, "/admin")
    await client.post("/admin/agents/agent", data={
        "csrf_token": token, "sip_uri": "", "campaigns": "trial", "weight": "4"})
    assert _agent(sqlite_db) == accounts.AgentInfo("sip:1001@127.0.0.1", ("trial",), 4)
    assert _changes(sqlite_db) == [("user:admin", {"before": {"weight": 2},
                                                   "after": {"weight": 4}})]


@pytest.mark.parametrize("change, message", [
    ({"sip_uri": "tel:2001"}, "starts with sip: or sips:"),
    ({"sip_uri": "sip:2001@pbx;transport=tcp"}, "parameters"),
    ({"sip_uri": "sip:2001@pbx:0"}, "from 1 to 65535"),
    ({"weight": "0"}, "from 1 to 100"),
    ({"weight": "many"}, "权重须为整数"),
    ({"campaigns": "trial, nope"}, "no campaign named &#39;nope&#39;"),
])
async def test_a_refused_change_says_why_keeps_the_form_and_changes_nothing(
        client: Client, sqlite_db: Database, campaigns: None, change: dict[str, str],
        message: str) -> None:
    await log_in(client, "admin")
    token = await csrf_of(client, "/admin")
    data = {"csrf_token": token, "sip_uri": "sip:1001@127.0.0.1", "campaigns": "trial",
            "weight": "2", **change}
    response = await client.post("/admin/agents/agent", data=data)
    assert response.status == 400
    text = await response.text()
    assert message in text
    assert "<details class=\"agent-edit\" open>" in text  # the form is shown again, open
    assert _agent(sqlite_db) == BEFORE and _changes(sqlite_db) == []


async def test_only_agents_have_the_form_behind_them(client: Client,
                                                     sqlite_db: Database) -> None:
    await log_in(client, "admin")
    token = await csrf_of(client, "/admin")
    for name in ("qa", "ghost"):
        response = await client.post(f"/admin/agents/{name}", data={
            "csrf_token": token, "weight": "3"})
        assert response.status == 404
    with sqlite_db.session() as session:
        assert AuditRepo(session).entries(action="agent.changed") == []


@pytest.mark.parametrize("role", ["agent", "supervisor", "qa"])
async def test_other_roles_are_refused(client: Client, sqlite_db: Database, campaigns: None,
                                       role: str) -> None:
    await log_in(client, role)
    token = await csrf_of(client, "/agent" if role == "agent" else f"/{role}")
    response = await client.post("/admin/agents/agent", data={
        "csrf_token": token, "weight": "9"}, allow_redirects=False)
    assert response.status == 403
    assert _agent(sqlite_db) == BEFORE and _changes(sqlite_db) == []


async def test_nobody_logged_in_is_refused_even_with_a_token(client: Client,
                                                             sqlite_db: Database) -> None:
    token = await csrf_of(client, "/login")  # an anonymous session's token
    response = await client.post("/admin/agents/agent", data={
        "csrf_token": token, "weight": "9"}, allow_redirects=False)
    assert response.status == 401
    assert _agent(sqlite_db) == BEFORE


@pytest.mark.parametrize("token", [None, "forged-token"])
async def test_a_change_without_the_sessions_csrf_token_is_refused(
        client: Client, sqlite_db: Database, campaigns: None, token: str | None) -> None:
    await log_in(client, "admin")
    data = {"weight": "9", "sip_uri": "sip:6666@evil.example"}
    if token is not None:
        data["csrf_token"] = token
    response = await client.post("/admin/agents/agent", data=data, allow_redirects=False)
    assert response.status == 403  # an administrator: the refusal is the CSRF guard's
    assert _agent(sqlite_db) == BEFORE and _changes(sqlite_db) == []


async def test_a_cross_site_form_is_refused_even_with_the_token(
        client: Client, sqlite_db: Database, campaigns: None) -> None:
    await log_in(client, "admin")
    token = await csrf_of(client, "/admin")
    response = await client.post("/admin/agents/agent", data={
        "csrf_token": token, "weight": "9"}, headers={"Origin": "http://evil.example"},
        allow_redirects=False)
    assert response.status == 403  # an administrator: the refusal is the CSRF guard's
    assert _agent(sqlite_db) == BEFORE
