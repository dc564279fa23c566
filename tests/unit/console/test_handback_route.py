"""The desk's "交回机器人确认办理" (hand the call back to the bot to confirm the sale): only the
agent on the call of their accepted offer, with the CSRF token; audited; the escalation
becomes ``returned_to_bot``, which the gateway reads (voice/call/desk_offer.py); refused
with the reason for a call that is not on, a complaint, a failed verification or a
campaign that sells nothing."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot import accounts
from bot.agents import desk, handback
from bot.store import AuditRepo, Database
from bot.store.models import Campaign, Escalation
from tests.unit.console.conftest import Clock, csrf_of, log_in
from tests.unit.console.desk_helpers import Taken, offer, pitched

Client = TestClient[web.Request, web.Application]


async def on_call(client: Client, db: Database, agent_id: int, clock: Clock) -> Taken:
    """The agent logged in, offered a call and on it (taken)."""
    await log_in(client, "agent")
    token = await csrf_of(client, "/agent")
    await client.post("/agent/presence", data={"csrf_token": token, "action": "available"},
                      allow_redirects=False)
    clock.advance(seconds=5)
    taken = offer(db, agent_id, clock.now)
    pitched(db, taken)
    clock.advance(seconds=2)
    response = await client.post(f"/agent/offers/{taken.offer_id}/accept",
                                 data={"csrf_token": await csrf_of(client, "/agent")},
                                 allow_redirects=False)
    assert response.status == 303
    return taken


async def hand_back(client: Client, offer_id: int, token: str | None = None,
                    **headers: str) -> aiohttp.ClientResponse:
    data = {} if token == "" else {"csrf_token": token or await csrf_of(client, "/agent")}
    return await client.post(f"/agent/offers/{offer_id}/handback", data=data,
                             allow_redirects=False, headers=headers)


def status(db: Database, taken: Taken) -> str:
    with db.session() as session:
        escalation = session.get(Escalation, taken.escalation_id)
        assert escalation is not None
        return escalation.status


def handbacks(db: Database) -> list[tuple[str, str | None, dict[str, Any]]]:
    with db.session() as session:
        return [(e.actor, e.subject, e.detail) for e in AuditRepo(session).entries()
                if e.action == "call.handed_back"]


async def test_the_agent_on_the_call_hands_it_back_audited(
        desk_client: Client, users: Any, sqlite_db: Database, clock: Clock) -> None:
    taken = await on_call(desk_client, sqlite_db, users["agent"].id, clock)
    text = await (await desk_client.get("/agent")).text()
    assert f'action="/agent/offers/{taken.offer_id}/handback"' in text
    assert "交回机器人确认办理" in text
    response = await hand_back(desk_client, taken.offer_id)
    assert (response.status, response.headers["Location"]) == (303, "/agent?done=handback")
    assert status(sqlite_db, taken) == "returned_to_bot"
    [(actor, subject, detail)] = handbacks(sqlite_db)
    assert (actor, subject) == ("user:agent", taken.call_id)
    assert detail["offer_id"] == taken.offer_id
    assert detail["escalation_id"] == taken.escalation_id
    with sqlite_db.session() as session:  # the gateway's read, and the ledger's name
        assert handback.requested(session, taken.escalation_id)
        assert handback.closed_by(session, taken.call_id) == "agent:agent"
        # still on the call until the gateway lets the agent go
        assert desk.presence_of(session, users["agent"].id).state == "on_call"
    text = await (await desk_client.get("/agent?done=handback")).text()
    assert "已交回机器人" in text
    # no button to press twice while the gateway takes the call back
    assert 'id="handed-back"' in text and 'id="handback"' not in text
    again = await hand_back(desk_client, taken.offer_id)  # once
    assert again.status == 409 and "already handed back" in await again.text()
    assert len(handbacks(sqlite_db)) == 1


async def test_another_agent_cannot_hand_the_call_back(
        desk_client: Client, users: Any, sqlite_db: Database, clock: Clock,
        make_client: Any, passwords: accounts.Passwords) -> None:
    taken = await on_call(desk_client, sqlite_db, users["agent"].id, clock)
    accounts.create_user(sqlite_db, passwords, "bob", "agent", "correct horse 1", actor="test",
                         agent=accounts.AgentOptions("sip:1002@127.0.0.1", ("trial",), 1))
    bob: Client = await make_client(desk_poll_s=0)
    await log_in(bob, "bob")
    assert (await hand_back(bob, taken.offer_id)).status == 403
    assert (await hand_back(bob, 999)).status == 403  # no such offer: the same answer
    assert status(sqlite_db, taken) == "bridged" and handbacks(sqlite_db) == []


@pytest.mark.parametrize("role", ["admin", "supervisor", "qa"])
async def test_only_agents_hand_back(desk_client: Client, users: Any, sqlite_db: Database,
                                     clock: Clock, make_client: Any, role: str) -> None:
    taken = await on_call(desk_client, sqlite_db, users["agent"].id, clock)
    other: Client = await make_client(desk_poll_s=0)
    await log_in(other, role)
    token = await csrf_of(other, f"/{'agent' if role == 'admin' else 'qa'}")
    assert (await hand_back(other, taken.offer_id, token)).status == 403
    assert status(sqlite_db, taken) == "bridged"


async def test_without_the_token_nothing_happens(desk_client: Client, users: Any,
                                                 sqlite_db: Database, clock: Clock) -> None:
    taken = await on_call(desk_client, sqlite_db, users["agent"].id, clock)
    assert (await hand_back(desk_client, taken.offer_id, token="")).status == 403
    assert (await hand_back(desk_client, taken.offer_id, token="forged")).status == 403
    cross = await hand_back(desk_client, taken.offer_id, Origin="https://evil.example")
    assert cross.status == 403
    assert status(sqlite_db, taken) == "bridged" and handbacks(sqlite_db) == []


async def test_an_offer_not_taken_is_not_handed_back(
        desk_client: Client, users: Any, sqlite_db: Database, clock: Clock) -> None:
    await log_in(desk_client, "agent")
    token = await csrf_of(desk_client, "/agent")
    await desk_client.post("/agent/presence", data={"csrf_token": token, "action": "available"},
                           allow_redirects=False)
    taken = offer(sqlite_db, users["agent"].id, clock.now)
    assert (await hand_back(desk_client, taken.offer_id)).status == 403  # ringing only
    assert status(sqlite_db, taken) == "offered"


@pytest.mark.parametrize(("reason", "campaign_type", "why"), [
    ("complaint", "marketing", "complaint"),
    ("verification_failed", "marketing", "identity check failed"),
    ("request_human", "survey", "sells nothing"),
])
async def test_refused_with_the_reason(desk_client: Client, users: Any, sqlite_db: Database,
                                       clock: Clock, reason: str, campaign_type: str,
                                       why: str) -> None:
    taken = await on_call(desk_client, sqlite_db, users["agent"].id, clock)
    with sqlite_db.session() as session:
        escalation = session.get(Escalation, taken.escalation_id)
        assert escalation is not None
        escalation.reason = reason
        campaign = session.get(Campaign, escalation.campaign_id)
        assert campaign is not None
        campaign.type = campaign_type
    response = await hand_back(desk_client, taken.offer_id)
    assert response.status == 409 and why in await response.text()
    assert status(sqlite_db, taken) == "bridged" and handbacks(sqlite_db) == []


def test_the_rule() -> None:
    def why(**kw: Any) -> str | None:
        args = {"status": "bridged", "on_call": True, "campaign_type": "marketing",
                "reason": "request_human", **kw}
        return handback.refusal(**args)

    assert why() is None
    assert why(campaign_type="second_confirmation") is None
    assert "not on this call" in str(why(on_call=False))
    assert "not on this call" in str(why(status="offered"))
    assert "already handed back" in str(why(status="returned_to_bot"))
    assert "complaint" in str(why(reason="complaint"))
    assert "identity" in str(why(reason="verification_failed"))
    assert "sells nothing" in str(why(campaign_type="notification"))
