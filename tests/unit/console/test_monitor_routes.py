"""Listen, whisper, barge from the wall (bot/console/monitor_pages.py, bot/monitoring.py):
a supervisor with a phone starts a session on a live call, switches mode and stops, each
step audited; the agent on the call sees the coaching banner's data; an agent or a QA
reviewer cannot monitor, nor can anyone without the CSRF token; a supervisor without a
phone, a call that is over and a second session on the same call are refused with the
reason.  The supervisor's phone is set as an agent's is (`change_agent`, SIP only)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot import accounts, events
from bot.agent_settings import NotAnAgent, change_agent
from bot.agents import desk
from bot.agents.presence import PresenceEvent
from bot.events import InProcessBus, call_event
from bot.store import CallRepo, Database
from bot.store.models import MonitorSession
from bot.store.repos.audit import AuditRepo
from tests.unit.console.conftest import PASSWORD, Clock, Factory, csrf_of, log_in
from tests.unit.console.desk_helpers import add_trial_campaign, offer
from tests.unit.console.test_wall import end_call, live_call
from voice.call.monitor import DatabaseMonitors

Client = TestClient[web.Request, web.Application]
BOSS_PHONE = "sip:boss@127.0.0.1:5099"


@pytest.fixture
def trial(sqlite_db: Database, users: dict[str, accounts.UserInfo]) -> Database:
    add_trial_campaign(sqlite_db, wrap_up_max_s=45)
    change_agent(sqlite_db, "supervisor", accounts.AgentOptions(BOSS_PHONE), actor="test")
    return sqlite_db


def audit(db: Database, call_id: str) -> list[tuple[str, str, str, object]]:
    with db.session() as session:
        return [(e.actor, e.action, e.detail["mode"], e.detail.get("before"))
                for e in AuditRepo(session).entries(subject=call_id)
                if e.action.startswith("monitor.")]


async def post(client: Client, url: str, token: str, mode: str | None = None
               ) -> tuple[int, dict[str, object]]:
    response = await client.post(url, data={} if mode is None else {"mode": mode},
                                 headers={"X-CSRF-Token": token})
    return response.status, await response.json()


async def test_a_supervisor_starts_switches_and_stops_each_step_audited(
        client: Client, trial: Database, clock: Clock) -> None:
    call_id = live_call(trial, clock.now - timedelta(seconds=30))
    await log_in(client, "supervisor")
    token = await csrf_of(client, "/supervisor")
    status, body = await post(client, f"/supervisor/calls/{call_id}/monitor", token, "listen")
    assert status == 200, body
    session = body["session"]
    assert isinstance(session, dict)
    assert session["mode"] == "listen" and session["state"] == "requested"
    sid = session["session_id"]
    with trial.session() as s:
        row = s.get(MonitorSession, sid)
        assert row is not None and row.sip_uri == BOSS_PHONE  # the phone of their profile

    status, body = await post(client, f"/supervisor/monitor/{sid}/mode", token, "barge")
    assert status == 200 and body["session"]["mode"] == "barge"  # type: ignore[index]
    current = await (await client.get("/supervisor/monitor")).json()
    assert current["session"]["mode"] == "barge"
    status, body = await post(client, f"/supervisor/monitor/{sid}/stop", token)
    assert status == 200 and body["session"]["state"] == "ended"  # type: ignore[index]
    assert body["session"]["end_reason"] == "stopped"  # type: ignore[index]
    status, body = await post(client, f"/supervisor/monitor/{sid}/mode", token, "listen")
    assert status == 409  # it has ended
    assert audit(trial, call_id) == [
        ("user:supervisor", "monitor.requested", "listen", None),
        ("user:supervisor", "monitor.mode", "barge", "listen"),
        ("user:supervisor", "monitor.stopped", "barge", None)]


async def test_the_rules_refuse_with_their_reason(
        client: Client, trial: Database, clock: Clock, passwords: accounts.Passwords
        ) -> None:
    call_id = live_call(trial, clock.now - timedelta(seconds=30))
    over = live_call(trial, clock.now - timedelta(seconds=90), "13900000000")
    end_call(trial, over, clock.now)
    accounts.create_user(trial, passwords, "lead2", "supervisor", PASSWORD, actor="test")
    await log_in(client, "lead2")  # no phone yet
    token = await csrf_of(client, "/supervisor")
    status, body = await post(client, f"/supervisor/calls/{call_id}/monitor", token, "listen")
    assert status == 409 and "SIP phone" in str(body["error"])
    await log_in(client, "supervisor")
    token = await csrf_of(client, "/supervisor")
    status, body = await post(client, f"/supervisor/calls/{over}/monitor", token, "listen")
    assert status == 409 and "not live" in str(body["error"])
    status, body = await post(client, f"/supervisor/calls/{call_id}/monitor", token, "shout")
    assert status == 409 and "unknown mode" in str(body["error"])
    assert (await post(client, f"/supervisor/calls/{call_id}/monitor", token, "whisper"))[0] \
        == 200
    change_agent(trial, "lead2", accounts.AgentOptions("sip:lead2@127.0.0.1"), actor="test")
    await log_in(client, "lead2")
    token = await csrf_of(client, "/supervisor")
    status, body = await post(client, f"/supervisor/calls/{call_id}/monitor", token, "listen")
    assert status == 409 and "already" in str(body["error"])
    with trial.session() as s:  # nor may they change the other supervisor's session
        sid = s.query(MonitorSession.id).scalar()
    response = await client.post(f"/supervisor/monitor/{sid}/stop",
                                 headers={"X-CSRF-Token": token})
    assert response.status == 403


@pytest.mark.parametrize("role", ["agent", "qa"])
async def test_agents_and_qa_cannot_monitor(client: Client, trial: Database, clock: Clock,
                                            role: str) -> None:
    call_id = live_call(trial, clock.now - timedelta(seconds=30))
    await log_in(client, role)
    token = await csrf_of(client, "/qa" if role == "qa" else "/agent/figures")
    status = (await client.post(f"/supervisor/calls/{call_id}/monitor",
                                data={"mode": "listen"}, headers={"X-CSRF-Token": token})
              ).status
    assert status == 403
    assert (await client.get("/supervisor/monitor")).status == 403
    with trial.session() as s:
        assert s.query(MonitorSession).count() == 0
    assert audit(trial, call_id) == []


async def test_without_the_csrf_token_nothing_starts(client: Client, trial: Database,
                                                     clock: Clock) -> None:
    call_id = live_call(trial, clock.now - timedelta(seconds=30))
    await log_in(client, "supervisor")
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        response = await client.post(f"/supervisor/calls/{call_id}/monitor",
                                     data={"mode": "listen"}, headers=headers)
        assert response.status == 403
    with trial.session() as s:
        assert s.query(MonitorSession).count() == 0
    assert audit(trial, call_id) == []


async def test_the_agent_on_the_call_sees_they_are_coached(
        client: Client, make_client: Factory, trial: Database, clock: Clock,
        users: dict[str, accounts.UserInfo]) -> None:
    agent_id = users["agent"].id
    with trial.session() as session:
        desk.change_presence(session, agent_id, PresenceEvent("log_in"),
                             clock.now - timedelta(minutes=1))
    taken = offer(trial, agent_id, clock.now - timedelta(seconds=30))
    with trial.session() as session:
        desk.answer_offer(session, taken.offer_id, "accepted", clock.now)
        attempt = CallRepo(session).get_attempt(taken.call_id)
        assert attempt is not None
        attempt.lease_expires_at = clock.now + timedelta(minutes=5)  # as the dialer's
    await log_in(client, "agent")
    assert (await (await client.get("/agent/coaching")).json())["session"] is None
    page = await (await client.get("/agent")).text()
    assert 'id="coaching-banner"' in page and "/static/coaching.js" in page

    boss = await make_client()
    await log_in(boss, "supervisor")
    token = await csrf_of(boss, "/supervisor")
    status, _ = await post(boss, f"/supervisor/calls/{taken.call_id}/monitor", token,
                           "whisper")
    assert status == 200
    coached = (await (await client.get("/agent/coaching")).json())["session"]
    assert coached["mode"] == "whisper" and coached["supervisor"] == "supervisor"


async def _monitor_message(ws: aiohttp.ClientWebSocketResponse, timeout: float
                           ) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = await asyncio.wait_for(ws.receive_json(), timeout)
        if message["type"] == "monitor":
            return message


async def test_the_banner_and_the_panel_follow_the_gateways_events_not_a_timer(
        client: Client, make_client: Factory, trial: Database, clock: Clock,
        bus: InProcessBus, users: dict[str, accounts.UserInfo]) -> None:
    """The gateway's monitor.* events on this console's bus bring the session to the
    agent's banner and the supervisor's panel at once; nothing is read every second."""
    agent_id = users["agent"].id
    with trial.session() as session:
        desk.change_presence(session, agent_id, PresenceEvent("log_in"),
                             clock.now - timedelta(minutes=1))
    taken = offer(trial, agent_id, clock.now - timedelta(seconds=30))
    with trial.session() as session:
        desk.answer_offer(session, taken.offer_id, "accepted", clock.now)
        attempt = CallRepo(session).get_attempt(taken.call_id)
        assert attempt is not None
        attempt.lease_expires_at = clock.now + timedelta(minutes=5)
    await log_in(client, "agent")
    boss = await make_client()
    await log_in(boss, "supervisor")
    token = await csrf_of(boss, "/supervisor")
    async with client.ws_connect("/ws?page=agent") as agent_ws, \
            boss.ws_connect("/ws?page=supervisor") as boss_ws:
        assert (await post(boss, f"/supervisor/calls/{taken.call_id}/monitor", token,
                           "whisper"))[0] == 200
        port = DatabaseMonitors(trial, clock)
        waiting = await port.waiting(taken.call_id)
        assert waiting is not None
        await port.dialling(waiting.session_id)
        await port.active(waiting.session_id, "agent")
        bus.publish(call_event(events.MONITOR_STARTED, taken.call_id, clock.now,
                               session_id=waiting.session_id, mode="whisper"))
        for ws in (agent_ws, boss_ws):
            shown = (await _monitor_message(ws, 0.9))["session"]
            while shown["state"] != "active":  # the supervisor's panel saw it being set up
                shown = (await _monitor_message(ws, 0.9))["session"]
            assert (shown["mode"], shown["heard_by"]) == ("whisper", "agent")
        await port.ended(waiting.session_id, "call_ended")
        bus.publish(call_event(events.MONITOR_ENDED, taken.call_id, clock.now,
                               session_id=waiting.session_id))
        assert (await _monitor_message(agent_ws, 0.9))["session"] is None
        assert (await _monitor_message(boss_ws, 0.9))["session"]["state"] == "ended"


def test_a_supervisors_phone_is_a_sip_address_only(
        sqlite_db: Database, users: dict[str, accounts.UserInfo]) -> None:
    change = change_agent(sqlite_db, "supervisor", accounts.AgentOptions("sip:b@127.0.0.1"),
                          actor="test")
    assert change.after == {"sip_uri": "sip:b@127.0.0.1"}
    with pytest.raises(NotAnAgent):
        change_agent(sqlite_db, "supervisor", accounts.AgentOptions(weight=3), actor="test")
    with pytest.raises(NotAnAgent):
        change_agent(sqlite_db, "qa", accounts.AgentOptions("sip:q@127.0.0.1"), actor="test")
    with pytest.raises(accounts.AccountError):
        accounts.create_user(sqlite_db, accounts.Passwords(), "lead3", "supervisor", PASSWORD,
                             actor="test", agent=accounts.AgentOptions(campaigns=("trial",)))


async def test_the_gateway_takes_the_request_and_writes_how_it_went(
        client: Client, trial: Database, clock: Clock,
        users: dict[str, accounts.UserInfo]) -> None:
    """The gateway's side on the same rows (voice/call/monitor.py's DatabaseMonitors): the
    request is taken once, started with who hears, and ended with the reason, audited as
    the gateway's when the supervisor did not stop it; the wall then shows how it ended."""
    call_id = live_call(trial, clock.now - timedelta(seconds=30))
    await log_in(client, "supervisor")
    token = await csrf_of(client, "/supervisor")
    assert (await post(client, f"/supervisor/calls/{call_id}/monitor", token, "barge"))[0] \
        == 200
    port = DatabaseMonitors(trial, clock)
    waiting = await port.waiting(call_id)
    assert waiting is not None and waiting.sip_uri == BOSS_PHONE
    await port.dialling(waiting.session_id)
    assert await port.waiting(call_id) is None  # taken: no second gateway dials it
    await port.active(waiting.session_id, "customer")
    ended = await port.ended(waiting.session_id, "supervisor_hung_up")
    assert (ended.state, ended.end_reason, ended.heard_by) == \
        ("ended", "supervisor_hung_up", "customer")
    assert (await port.ended(waiting.session_id, "call_ended")).end_reason == \
        "supervisor_hung_up"  # the first reason stands
    with trial.session() as s:
        entries = [(e.actor, e.action, e.detail.get("reason"))
                   for e in AuditRepo(s).entries(subject=call_id)]
    assert entries[-1] == ("service:gateway", "monitor.ended", "supervisor_hung_up")
    shown = (await (await client.get("/supervisor/monitor")).json())["session"]
    assert (shown["state"], shown["end_reason"]) == ("ended", "supervisor_hung_up")
