"""A sale an agent records is proven only by a consent in the ledger (the bot's read-back
after a hand-back): the desk warns when the ledger holds none, the audit entry says so, and
the agent's calls table shows which calls were handed back and whether the customer's
consent is recorded."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.agents import desk
from bot.agents.presence import PresenceEvent
from bot.qa.callview import call_view
from bot.qa.flags import flags
from bot.store import AuditRepo, ConsentLedger, Database
from bot.store.models import Call, Escalation
from tests.unit.console.conftest import Clock, csrf_of, log_in
from tests.unit.console.desk_helpers import Taken, take_call

Client = TestClient[web.Request, web.Application]


def worked(db: Database, agent_id: int, clock: Clock, phone: str) -> Taken:
    with db.session() as session:
        desk.change_presence(session, agent_id, PresenceEvent("log_in"), clock.now)
    taken = take_call(db, agent_id, clock.now + timedelta(seconds=10), phone=phone)
    clock.advance(seconds=100)
    return taken


def confirmed_by_the_bot(db: Database, taken: Taken) -> None:
    """The agent handed the call back and the customer confirmed: the ledger's consent."""
    with db.session() as session:
        escalation = session.get(Escalation, taken.escalation_id)
        call = session.get(Call, taken.call_id)
        assert escalation is not None and call is not None
        escalation.status = "returned_to_bot"
        ConsentLedger(session).append(
            call_id=call.id, contact_id=call.contact_id, campaign_id=call.campaign_id,
            product="彩铃", script_hash="a" * 64, disclosures=["price"], utterance="1",
            input_mode="dtmf", asr_confidence=None, closed_by="agent:agent")


async def record_sale(client: Client, taken: Taken) -> str:
    response = await client.post("/agent/disposition", data={
        "csrf_token": await csrf_of(client, "/agent"),
        "escalation_id": str(taken.escalation_id), "disposition": "sale"},
        allow_redirects=False)
    assert response.status == 303
    return response.headers["Location"]


def review_flags(db: Database, taken: Taken) -> list[str]:
    """The QA flags of the call, from the store (bot/qa/callview.py)."""
    with db.session() as session:
        view = call_view(session, taken.call_id)
    assert view.dispositions == ("sale",)
    return [f.kind for f in flags(view)]


def ledger_cell(text: str, taken: Taken) -> str:
    row = text.split(f'data-escalation="{taken.escalation_id}"', 1)[1].split("</tr>", 1)[0]
    return row.split('class="small ledger"', 1)[1].split("</td>", 1)[0]


async def test_a_sale_without_a_ledger_consent_is_saved_with_a_warning(
        desk_client: Client, users: Any, sqlite_db: Database, clock: Clock) -> None:
    taken = worked(sqlite_db, users["agent"].id, clock, "13812340001")
    await log_in(desk_client, "agent")
    location = await record_sale(desk_client, taken)
    assert location == "/agent?done=unproven_sale"
    text = await (await desk_client.get(location)).text()
    assert 'class="alert alert-warn"' in text and "同意账本中没有这位客户的确认" in text
    with sqlite_db.session() as session:
        [entry] = AuditRepo(session).entries(action="disposition.recorded")
    assert entry.detail["disposition"] == "sale" and entry.detail["ledger_consent"] is False
    cell = ledger_cell(await (await desk_client.get("/agent/figures")).text(), taken)
    assert "consent-missing" in cell and "handed-back" not in cell
    assert "sale_without_consent" in review_flags(sqlite_db, taken)


async def test_a_handed_back_sale_the_customer_confirmed(
        desk_client: Client, users: Any, sqlite_db: Database, clock: Clock) -> None:
    taken = worked(sqlite_db, users["agent"].id, clock, "13812340002")
    confirmed_by_the_bot(sqlite_db, taken)
    await log_in(desk_client, "agent")
    assert await record_sale(desk_client, taken) == "/agent?done=recorded"
    with sqlite_db.session() as session:
        [entry] = AuditRepo(session).entries(action="disposition.recorded")
    assert entry.detail["ledger_consent"] is True
    cell = ledger_cell(await (await desk_client.get("/agent/figures")).text(), taken)
    assert "handed-back" in cell and "consent-yes" in cell and "consent-missing" not in cell
    assert "sale_without_consent" not in review_flags(sqlite_db, taken)


async def test_a_resolved_call_shows_nothing_of_the_ledger(
        desk_client: Client, users: Any, sqlite_db: Database, clock: Clock) -> None:
    taken = worked(sqlite_db, users["agent"].id, clock, "13812340003")
    await log_in(desk_client, "agent")
    response = await desk_client.post("/agent/disposition", data={
        "csrf_token": await csrf_of(desk_client, "/agent"),
        "escalation_id": str(taken.escalation_id), "disposition": "resolved"},
        allow_redirects=False)
    assert response.headers["Location"] == "/agent?done=recorded"
    cell = ledger_cell(await (await desk_client.get("/agent/figures")).text(), taken)
    assert "badge" not in cell and "—" in cell
