"""An agent's hand-back through the real Rasa server, action server and database: the
customer asks for a person, the call is offered to an agent who takes it (bot/agents, as the
gateway and the console do), the agent hands it back (bot/agents/handback.py, as the desk's
button does), and the channel's `/agent_handback` resumes the conversation Rasa paused at the
hand-over: the bot says the approved pitch (nothing was pitched before the request) and the
read-back, and the customer's keyed 1 enters the consent ledger naming the agent.  A second
call's "不需要" after the hand-back is a decline and records nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import channel
from bot.agents import desk, handback, handover
from bot.agents.presence import PresenceEvent
from bot.campaigns.definition import load_definition
from bot.campaigns.registry import save_campaign
from bot.channel import BotReply, TurnMeta
from bot.services import RasaStack
from bot.store import ConsentLedger, ContactRepo, Database, in_write
from bot.store.models import Agent, AgentCampaign, Call, Consent, User
from bot.textcall import TextCall

pytestmark = pytest.mark.rasa

REPO = Path(__file__).resolve().parents[2]
MARKETING = REPO / "examples" / "campaigns" / "marketing.yml"


@pytest.fixture(scope="module")
def setup(rasa_stack: RasaStack, db_url: str) -> Iterator[tuple[RasaStack, Database,
                                                               int, int]]:
    """The run's Rasa stack and database (tests/e2e/conftest.py); the campaign has a name
    of this module's own, and alice is the only agent assigned to it."""
    db = Database(db_url)
    defn = load_definition(MARKETING).model_copy(update={"name": "handback-rasa"})
    campaign_id = save_campaign(db, defn)
    with db.session(write=True) as session:
        user = User(username="alice", role="agent", password_hash="-")
        session.add(user)
        session.flush()
        session.add(Agent(user_id=user.id, sip_uri="sip:alice@127.0.0.1"))
        session.add(AgentCampaign(agent_id=user.id, campaign=defn.name))
        session.flush()
        desk.change_presence(session, user.id, PresenceEvent("log_in"), datetime.now(UTC))
        agent_id = user.id
    yield rasa_stack, db, campaign_id, agent_id
    db.dispose()


def take_and_hand_back(db: Database, call_id: str, agent_id: int) -> None:
    """The gateway opens the hand-over and offers it; the agent takes the call, talks, and
    presses "交回机器人确认办理"; the gateway lets the agent go."""
    found = in_write(db, partial(handover.open_handover, call_id=call_id,
                                 reason="request_human"))
    assert found is not None
    seen = in_write(db, partial(handover.offer_next, escalation_id=found.escalation_id,
                                at=datetime.now(UTC)))
    assert seen is not None and seen.agent_id == agent_id
    in_write(db, partial(desk.answer_offer, offer_id=seen.offer_id, outcome="accepted",
                         at=datetime.now(UTC)))
    in_write(db, partial(handback.request, offer_id=seen.offer_id, agent_id=agent_id,
                         at=datetime.now(UTC)))
    in_write(db, partial(handover.end_agent_call, agent_id=agent_id, call_id=call_id,
                         at=datetime.now(UTC)))


def available_again(session: Session, agent_id: int) -> None:
    presence = desk.presence_of(session, agent_id)
    if presence.state == "wrap_up":
        desk.change_presence(session, agent_id,
                             PresenceEvent("wrap_up_done", presence.call_id), datetime.now(UTC))


async def escalated_call(stack: RasaStack, db: Database, http: aiohttp.ClientSession,
                         campaign_id: int, phone: str) -> tuple[str, channel.RasaChannel]:
    with db.session() as session:
        contact_id = ContactRepo(session).add(campaign_id, phone, name="张伟",
                                              gender="male").id
    rasa = stack.endpoint.channel(http)
    call_id, text_call = TextCall.dial(rasa, db, campaign_id, contact_id)
    assert text_call is not None
    await text_call.start()
    await text_call.say("是我")
    # Sent past the text call, which closes the call at a transfer: a voice call stays
    # open while the agent has it, and that is the call a hand-back comes back to.
    reply = await rasa.ask(call_id, "我要转人工", TurnMeta().to_dict())
    assert reply.transfer == {"reason": "request_human"}, reply
    # Paused: Rasa answers nothing until the hand-back resumes it.
    assert await rasa.send(call_id, "好的", TurnMeta().to_dict()) == []
    return call_id, rasa


def test_an_agents_sale_is_confirmed_by_the_bot_and_names_the_agent(
        setup: tuple[RasaStack, Database, int, int]) -> None:
    stack, db, campaign_id, agent_id = setup

    async def converse() -> tuple[str, list[BotReply]]:
        async with aiohttp.ClientSession() as http:
            call_id, rasa = await escalated_call(stack, db, http, campaign_id, "13800001111")
            await asyncio.to_thread(take_and_hand_back, db, call_id, agent_id)
            back = await rasa.ask(call_id, channel.AGENT_HANDBACK, {"input_mode": "text"})
            done = await rasa.ask(call_id, channel.dtmf_message("1"),
                                  TurnMeta("dtmf").to_dict())
            return call_id, [back, done]

    call_id, (back, done) = asyncio.run(converse())
    print(back.texts)
    assert back.texts[0].startswith("您好，我是") and "确认刚才办理的业务" in back.texts[0]
    assert set(back.disclosures) >= {"features", "price", "trial_end", "usage", "cancel"}
    assert back.texts[-1].startswith("跟您确认一下") and back.listen is not None
    assert not back.ends_call
    assert done.hangup and "已为您办理" in done.texts[-1]
    with db.session() as session:
        [consent] = session.scalars(select(Consent).where(Consent.call_id == call_id)).all()
        assert consent.closed_by == "agent:alice" and consent.utterance == "DTMF 1"
        assert ConsentLedger(session).verify().ok
        call = session.get(Call, call_id)
        assert call is not None and call.outcome == "consented"


def test_a_no_after_the_hand_back_is_a_decline(
        setup: tuple[RasaStack, Database, int, int]) -> None:
    stack, db, campaign_id, agent_id = setup

    async def converse() -> str:
        async with aiohttp.ClientSession() as http:
            call_id, rasa = await escalated_call(stack, db, http, campaign_id, "13800002222")
            # the agent's after-call work from the first test may still run: available again
            await asyncio.to_thread(in_write, db, partial(available_again, agent_id=agent_id))
            await asyncio.to_thread(take_and_hand_back, db, call_id, agent_id)
            await rasa.ask(call_id, channel.AGENT_HANDBACK, {"input_mode": "text"})
            await rasa.ask(call_id, channel.dtmf_message("2"), TurnMeta("dtmf").to_dict())
            await rasa.ask(call_id, "用不上", TurnMeta().to_dict())
            return call_id

    call_id = asyncio.run(converse())
    with db.session() as session:
        assert session.scalars(select(Consent).where(Consent.call_id == call_id)).all() == []
        call = session.get(Call, call_id)
        assert call is not None and call.outcome == "declined"
