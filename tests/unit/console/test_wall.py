"""The supervisors' live wall (bot/console/wall.py, issue 15 item 1): what the page and its
socket get from the database (calls in progress, last intent, masked last words, waiting
escalations, the day's figures, wrap-up caps), its updates on events and without them,
and the campaign buttons' roles, CSRF and audit."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot import callrecord, events
from bot.agents import desk
from bot.agents.presence import PresenceEvent
from bot.console.wall import WALL
from bot.events import InProcessBus, call_event
from bot.store import CallRepo, CampaignRepo, ContactRepo, Database, EscalationRepo
from bot.store.models import Campaign, Complaint
from bot.store.repos.audit import AuditRepo
from tests.unit.console.conftest import Clock, csrf_of, log_in
from tests.unit.console.desk_helpers import CAMPAIGN, add_trial_campaign, offer, take_call

Client = TestClient[web.Request, web.Application]
WALL_DATA = re.compile(r'<script type="application/json" id="wall-data">(.*?)</script>', re.S)


def live_call(db: Database, at: datetime, phone: str = "13812345678", *,
              answered: bool = True, stage: str | None = "permission") -> str:
    """A call handed out by the dialer (holding a lease), answered at *at*."""
    with db.session() as session:
        campaign = CampaignRepo(session).by_name(CAMPAIGN)
        assert campaign is not None
        contact = ContactRepo(session).add(campaign.id, phone, name="王五")
        attempt = CallRepo(session).start_attempt(
            campaign.id, contact.id, gateway="gw-1", at=at,
            lease_expires_at=at + timedelta(minutes=10))
        if answered:
            callrecord.record_dial_result(session, attempt.call_id, "answered", at)
            if stage:
                CallRepo(session).update_call(attempt.call_id, stage=stage)
        return attempt.call_id


def customer_says(db: Database, call_id: str, text: str, intent: str | None = None) -> None:
    """As the transcript writer stores the turn and the action notes its intent."""
    with db.session() as session:
        CallRepo(session).add_turn(call_id, "customer", text)
        if intent:
            callrecord.note_intent(session, call_id, intent, 0.93)


def end_call(db: Database, call_id: str, at: datetime) -> None:
    with db.session() as session:
        callrecord.close(session, call_id, ended_at=at, ended_by="caller")


async def page_wall(client: Client) -> dict[str, Any]:
    response = await client.get("/supervisor")
    assert response.status == 200
    text = await response.text()
    found = WALL_DATA.search(text)
    assert found, "no wall data on the page"
    wall: dict[str, Any] = json.loads(found.group(1))
    return wall


async def _wall_message(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5
                        ) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = await asyncio.wait_for(ws.receive_json(), timeout)
        if message["type"] == "wall":
            return message


@pytest.fixture
def trial(sqlite_db: Database) -> Database:
    add_trial_campaign(sqlite_db, wrap_up_max_s=45)
    return sqlite_db


async def test_the_page_shows_the_calls_in_progress_with_their_last_words_masked(
        client: Client, trial: Database, clock: Clock) -> None:
    talking = live_call(trial, clock.now - timedelta(seconds=40))
    customer_says(trial, talking, "是我", "affirm")
    customer_says(trial, talking, "我的手机是13812345678，身份证后四位一二三四")
    dialling = live_call(trial, clock.now, "13900001111", answered=False)
    over = live_call(trial, clock.now - timedelta(minutes=5), "13700002222")
    customer_says(trial, over, "别再打了", "do_not_call")
    end_call(trial, over, clock.now - timedelta(minutes=1))

    await log_in(client, "supervisor")
    wall = await page_wall(client)
    calls = {c["call_id"]: c for c in wall["calls"]}
    assert set(calls) == {talking, dialling}  # the ended call is gone
    call = calls[talking]
    assert (call["campaign"], call["stage"], call["handler"], call["answered"]) == \
        (CAMPAIGN, "permission", "bot", True)
    assert call["stage_label"] == "征求同意 permission"
    assert call["last_intent"] == "affirm"  # the latest turn with an intent
    assert call["last_words"] == "我的手机是***********，身份证后四位****"
    assert call["phone"] == "138****5678"
    assert datetime.fromisoformat(call["since"]) == clock.now - timedelta(seconds=40)
    assert calls[dialling]["answered"] is False and calls[dialling]["last_words"] is None
    assert not calls[talking]["stale"]
    text = await (await client.get("/supervisor")).text()
    for secret in ("13812345678", "13900001111", "一二三四", "别再打了"):
        assert secret not in text
    assert wall["limits"] == {"offered_s": 20, "away_s": 900}


async def test_a_call_an_agent_took_shows_the_agent(
        client: Client, trial: Database, clock: Clock, users: Any) -> None:
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
    await log_in(client, "supervisor")
    [call] = (await page_wall(client))["calls"]
    assert (call["call_id"], call["handler"], call["agent"]) == \
        (taken.call_id, "agent", "agent")


async def test_a_call_whose_gateway_stopped_renewing_its_lease_is_marked(
        client: Client, trial: Database, clock: Clock) -> None:
    call_id = live_call(trial, clock.now - timedelta(minutes=11))  # leased for 10 minutes
    await log_in(client, "supervisor")
    [call] = (await page_wall(client))["calls"]
    assert call["call_id"] == call_id and call["stale"] is True


async def test_waiting_escalations_figures_and_wrap_up_caps(
        client: Client, trial: Database, clock: Clock, users: Any) -> None:
    call_id = live_call(trial, clock.now - timedelta(seconds=30))
    with trial.session() as session:
        campaign = CampaignRepo(session).by_name(CAMPAIGN)
        assert campaign is not None
        attempt = CallRepo(session).get_attempt(call_id)
        assert attempt is not None
        escalation = EscalationRepo(session).add(call_id, campaign.id, attempt.contact_id,
                                                 "complaint", {})
        escalation.status, escalation.created_at = "waiting", clock.now - timedelta(seconds=12)
    with trial.session() as session:
        desk.change_presence(session, users["agent"].id, PresenceEvent("log_in"),
                             clock.now - timedelta(minutes=4))
    # in after-call work for 5 s (the console's watcher ends it at the cap, 45 s)
    take_call(trial, users["agent"].id, clock.now - timedelta(seconds=70), talk_s=60,
              phone="13600003333")

    await log_in(client, "supervisor")
    wall = await page_wall(client)
    [waiting] = wall["escalations"]
    assert (waiting["call_id"], waiting["reason"], waiting["status"]) == \
        (call_id, "complaint", "waiting")
    assert datetime.fromisoformat(waiting["since"]) == clock.now - timedelta(seconds=12)
    assert wall["agents"] == {str(users["agent"].id): 45}
    [row] = wall["campaigns"]
    assert row == {"campaign": CAMPAIGN, "type": "marketing", "status": "draft",
                   "dialled": 2, "connected": 2, "consents": 0, "escalations": 2,
                   "complaints": 0}


async def test_the_socket_brings_the_wall_and_its_changes_until_the_call_ends(
        client: Client, trial: Database, clock: Clock, bus: InProcessBus) -> None:
    call_id = live_call(trial, clock.now)
    await log_in(client, "supervisor")
    async with client.ws_connect("/ws?page=supervisor") as ws:
        first = await _wall_message(ws)  # a page opened mid-call sees the call at once
        assert [c["call_id"] for c in first["calls"]] == [call_id]
        # a turn of this process's bus: read again at once
        customer_says(trial, call_id, "太贵了", "too_expensive")
        bus.publish(call_event(events.TURN_CUSTOMER, call_id, clock.now, text="太贵了"))
        changed = await _wall_message(ws, timeout=0.9)
        assert changed["calls"][0]["last_words"] == "太贵了"
        assert changed["calls"][0]["last_intent"] == "too_expensive"
        # a turn stored by a gateway in another process: no event, the safety poll reads it
        client.app[WALL].safety_poll_s = 1.0
        customer_says(trial, call_id, "我要投诉", "complain")
        changed = await _wall_message(ws, timeout=3)
        assert changed["calls"][0]["last_words"] == "我要投诉"
        end_call(trial, call_id, clock.now + timedelta(seconds=50))
        bus.publish(call_event(events.CALL_ENDED, call_id, clock.now, outcome="complaint"))
        changed = await _wall_message(ws, timeout=3)
        assert changed["calls"] == []


async def test_an_open_wall_with_nothing_happening_reads_nothing_for_seconds(
        client: Client, trial: Database, clock: Clock) -> None:
    live_call(trial, clock.now)
    await log_in(client, "supervisor")
    wall = client.app[WALL]
    async with client.ws_connect("/ws?page=supervisor") as ws:
        await _wall_message(ws)
        read = wall.reads
        await asyncio.sleep(1.6)  # it read every second, open or idle
        assert wall.reads == read


async def test_an_agent_state_change_on_the_desk_hub_wakes_the_wall(
        client: Client, trial: Database, clock: Clock, users: Any) -> None:
    """No call event, no poll: the desk's watcher reads the presence change and passes it
    on the hub, which wakes the wall."""
    with trial.session() as session:
        desk.change_presence(session, users["agent"].id, PresenceEvent("log_in"),
                             clock.now - timedelta(minutes=4))
    await log_in(client, "supervisor")
    async with client.ws_connect("/ws?page=supervisor") as ws:
        first = await _wall_message(ws)
        assert first["agents"] == {}
        take_call(trial, users["agent"].id, clock.now - timedelta(seconds=70), talk_s=60,
                  phone="13600003333")  # in after-call work now
        changed = await _wall_message(ws, timeout=2.5)
        while changed["agents"] == {}:
            changed = await _wall_message(ws, timeout=2.5)
        assert changed["agents"] == {str(users["agent"].id): 45}


async def test_complaints_today_are_the_complaints_recorded_today(
        client: Client, trial: Database, clock: Clock) -> None:
    """One owner of the count, the period report's: a complaint a supervisor entered today
    about yesterday's call counts, though no call of today ended in a complaint."""
    earlier = live_call(trial, clock.now - timedelta(days=1))
    end_call(trial, earlier, clock.now - timedelta(days=1) + timedelta(minutes=1))
    with trial.session() as session:
        call = CallRepo(session).get_call(earlier)
        assert call is not None
        session.add(Complaint(
            campaign_id=call.campaign_id, contact_id=call.contact_id, call_id=earlier,
            source="supervisor", words="推销员态度不好", severity="medium", status="new",
            created_at=clock.now - timedelta(minutes=1), created_by="supervisor",
            contact_due_at=clock.now + timedelta(days=1),
            resolve_due_at=clock.now + timedelta(days=5), blacklist_policy="on_decision"))
    await log_in(client, "supervisor")
    [row] = (await page_wall(client))["campaigns"]
    assert row["complaints"] == 1


@pytest.mark.parametrize("role", ["agent", "qa"])
async def test_agents_and_qa_see_no_wall_and_control_no_campaign(
        client: Client, trial: Database, role: str) -> None:
    await log_in(client, role)
    assert (await client.get("/supervisor", allow_redirects=False)).status == 403
    token = await csrf_of(client, "/qa" if role == "qa" else "/agent/figures")
    for action in ("start", "pause", "resume"):
        response = await client.post(f"/supervisor/campaigns/{CAMPAIGN}/{action}",
                                     headers={"X-CSRF-Token": token})
        assert response.status == 403, action
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await client.ws_connect("/ws?page=supervisor")
    assert _status(trial) == "draft"


async def test_a_campaign_button_without_the_csrf_token_is_refused(
        client: Client, trial: Database) -> None:
    await log_in(client, "supervisor")
    for action in ("start", "pause", "resume"):
        for headers in ({}, {"X-CSRF-Token": "forged"}):
            response = await client.post(f"/supervisor/campaigns/{CAMPAIGN}/{action}",
                                         headers=headers)
            assert response.status == 403, (action, headers)
    assert _status(trial) == "draft"
    with trial.session() as session:
        assert AuditRepo(session).entries(subject=CAMPAIGN) == []


async def test_start_pause_and_resume_go_through_the_registry_and_are_audited(
        client: Client, trial: Database) -> None:
    await log_in(client, "supervisor")
    token = await csrf_of(client, "/supervisor")
    headers = {"X-CSRF-Token": token}
    url = f"/supervisor/campaigns/{CAMPAIGN}"
    refused = await client.post(f"{url}/resume", headers=headers)  # a draft is started
    assert refused.status == 409 and "start" in (await refused.json())["error"]
    for action, status in (("start", "running"), ("pause", "paused"), ("resume", "running")):
        response = await client.post(f"{url}/{action}", headers=headers)
        assert response.status == 200, action
        assert (await response.json())["status"] == status
        assert _status(trial) == status
    unknown = await client.post("/supervisor/campaigns/nope/pause", headers=headers)
    assert unknown.status == 409
    with trial.session() as session:
        entries = [(e.actor, e.action, e.detail["status"])
                   for e in AuditRepo(session).entries(subject=CAMPAIGN)]
    assert entries == [("user:supervisor", "campaign.start", "running"),
                       ("user:supervisor", "campaign.pause", "paused"),
                       ("user:supervisor", "campaign.resume", "running")]
    wall = await page_wall(client)
    assert wall["campaigns"][0]["status"] == "running"


def _status(db: Database) -> str:
    with db.session() as session:
        campaign = CampaignRepo(session).by_name(CAMPAIGN)
        assert isinstance(campaign, Campaign)
        return campaign.status
