"""The offer's pop travels in the desk's presence message (issue 14 item 4: on the screen
within 300 ms, so the page draws it without asking for the desk again): the agent's own
socket gets the customer, the masked number, the campaign, the reason, the verification,
what the bot collected and the transcript so far; every other page gets the presence
without it.  The watcher reads only the changes it has not seen, and an offer published on
the console's event bus wakes it before its next poll."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot import accounts, events
from bot.agents import desk
from bot.agents.presence import PresenceEvent
from bot.console import desk_state, watch
from bot.console.context import CONSOLE
from bot.console.hub import DeskHub
from bot.events import InProcessBus, call_event
from bot.store import Database
from tests.unit.console.conftest import Clock, log_in
from tests.unit.console.desk_helpers import Taken, add_trial_campaign, offer, pitched

Client = TestClient[web.Request, web.Application]


async def _next(ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float = 5
                ) -> dict[str, Any]:
    """The next message of *kind* (a supervisor's socket also gets the wall's)."""
    async with asyncio.timeout(timeout):
        while True:
            message: dict[str, Any] = await ws.receive_json()
            if message.get("type") == kind:
                return message


def offered(db: Database, agent_id: int, clock: Clock) -> Taken:
    """The agent available, then offered a call the bot pitched in, verified, with two
    turns stored."""
    with db.session() as session:
        desk.change_presence(session, agent_id, PresenceEvent("log_in"), clock.now)
    clock.advance(seconds=5)
    taken = offer(db, agent_id, clock.now)
    pitched(db, taken, said="我的号码是13812345678，我要转人工")
    return taken


async def test_the_offer_carries_its_pop_to_the_agents_own_page_only(
        make_client: Any, users: dict[str, accounts.UserInfo], sqlite_db: Database,
        clock: Clock) -> None:
    add_trial_campaign(sqlite_db)
    mine: Client = await make_client(desk_poll_s=0)  # the test drives the watcher
    lead = TestClient(cast(TestServer, mine.server))  # another page on the same console
    try:
        await log_in(mine, "agent")
        await log_in(lead, "supervisor")
        agent_id = users["agent"].id
        taken = offered(sqlite_db, agent_id, clock)
        async with mine.ws_connect("/ws?page=agent") as ws, \
                lead.ws_connect("/ws?page=supervisor") as wall:
            await _next(ws, "hello")
            await _next(wall, "hello")
            await watch.tick(mine.app[CONSOLE])
            pushed = await _next(ws, "presence")
            seen = await _next(wall, "presence")
    finally:
        await lead.close()
    assert (pushed["state"], pushed["call_id"]) == ("offered", taken.call_id)
    assert pushed["call"] == {
        "offer_id": taken.offer_id, "call_id": taken.call_id,
        "escalation_id": taken.escalation_id, "campaign": "trial",
        "reason": "request_human", "reason_label": "客户要求人工 asked for a person",
        "customer": "王五", "phone_masked": "138****5678", "verified": True,
        "offered_at": clock.now.isoformat(), "listened": False,
        "collected": [["转人工前环节 Stage", "介绍产品 pitch"], ["已介绍产品 Pitched", "是 yes"]],
        "transcript": [[1, "bot", "您好，请问是王先生吗"],
                       [2, "customer", "我的号码是138****5678，我要转人工"]]}
    assert "13812345678" not in json.dumps(pushed, ensure_ascii=False)
    # The supervisors' page: the same presence, without the customer or the transcript.
    assert seen == {key: value for key, value in pushed.items() if key != "call"}


def test_the_hub_keeps_the_pop_for_the_agents_own_pages() -> None:
    hub = DeskHub()
    message = {"type": "presence", "agent_id": 1, "seq": 3, "state": "offered",
               "call_id": "c1", "call": {"customer": "王五"}}
    with hub.following(None) as every, hub.following(1) as own, hub.following(2) as other:
        assert hub.publish(message)
        assert own.get_nowait() == message
        assert "call" not in every.get_nowait() and other.empty()
    assert hub.latest(1) == [message]  # a desk that opens now draws the pop at once
    assert hub.latest() == [{k: v for k, v in message.items() if k != "call"}]
    assert hub.seqs() == {1: 3}


def test_the_quick_read_brings_only_the_changes_not_seen(
        users: dict[str, accounts.UserInfo], sqlite_db: Database, clock: Clock) -> None:
    add_trial_campaign(sqlite_db)
    agent_id = users["agent"].id
    with sqlite_db.session() as session:
        assert desk_state.changed_since(session, 0) == ([], 0)
    taken = offered(sqlite_db, agent_id, clock)  # two changes: available, offered
    with sqlite_db.session() as session:
        [message], last = desk_state.changed_since(session, 0)
        assert (message["state"], message["seq"]) == ("offered", 2)
        assert message["call"]["offer_id"] == taken.offer_id
        assert desk_state.changed_since(session, last) == ([], last)
        # The full round reads the pop only of an offer the hub has not passed on.
        [again] = desk_state.every_presence(session, pops_after={agent_id: 2})
        assert "call" not in again
        [table] = desk_state.every_presence(session)  # the supervisors' table: never
        assert "call" not in table


async def test_an_offer_on_the_event_bus_wakes_the_watcher(
        make_client: Any, users: dict[str, accounts.UserInfo], sqlite_db: Database,
        clock: Clock, bus: InProcessBus, monkeypatch: pytest.MonkeyPatch) -> None:
    add_trial_campaign(sqlite_db)
    monkeypatch.setattr(watch, "OFFER_POLL_S", 10.0)  # no poll within the test
    client: Client = await make_client(desk_poll_s=30.0)
    agent_id = users["agent"].id
    with sqlite_db.session() as session:
        desk.change_presence(session, agent_id, PresenceEvent("log_in"), clock.now)
    await log_in(client, "agent")
    async with client.ws_connect("/ws?page=agent") as ws:
        await _next(ws, "hello")
        assert (await _next(ws, "presence"))["state"] == "available"
        await asyncio.sleep(0.2)  # the watcher's first round is behind it: it waits now
        taken = offer(sqlite_db, agent_id, clock.now)  # as a gateway does
        with pytest.raises(TimeoutError):  # not read yet: the next poll is 10 s away
            await _next(ws, "presence", timeout=0.5)
        loop = asyncio.get_running_loop()
        started = loop.time()
        # The gateway in this process publishes the offer after its commit (desk_offer.py).
        bus.publish(call_event(events.ESCALATION_OFFERED, taken.call_id, clock.now,
                               agent_id=agent_id, offer_id=taken.offer_id))
        pushed = await _next(ws, "presence", timeout=2)
        took = loop.time() - started
    print(f"offer event -> desk socket in {took * 1000:.0f} ms")
    assert pushed["state"] == "offered" and pushed["call"]["offer_id"] == taken.offer_id
    assert took < 0.5
