"""Issue 16 through the real Rasa server, action server and database (text calls): an
ordinary yes that looks like a request for a person does not reach one, and a no stands
whatever follows it, in the call and in the dialer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date, timedelta

import aiohttp
import pytest
from sqlalchemy import select

from bot.campaigns.definition import CampaignDefinition, load_definition
from bot.campaigns.dialer import Dialer
from bot.campaigns.registry import save_campaign, start_campaign
from bot.channel import BotReply
from bot.demo import calling_day, sample_campaigns
from bot.services import RasaStack
from bot.store import ContactRepo, Database
from bot.store.models import Call, Contact, Escalation
from bot.textcall import TextCall

pytestmark = pytest.mark.rasa

Conversation = Callable[[TextCall], Awaitable[list[BotReply]]]


@pytest.fixture(scope="module")
def db(db_url: str) -> Database:
    """The run's database (tests/e2e/conftest.py), which the shared action server writes to."""
    return Database(db_url)


@pytest.fixture(scope="module")
def stack(rasa_stack: RasaStack) -> RasaStack:
    return rasa_stack


def marketing(name: str) -> CampaignDefinition:
    """marketing.yml under a name of this module's own (the run's database is shared)."""
    return load_definition(sample_campaigns()[0][0]).model_copy(update={"name": name})


@pytest.fixture(scope="module")
def campaign_id(db: Database) -> int:
    return save_campaign(db, marketing("understanding-marketing"))


_phones = iter(range(13900001000, 13900002000))


def converse(db: Database, stack: RasaStack, campaign_id: int, conversation: Conversation
             ) -> tuple[str, list[BotReply]]:
    with db.session() as session:
        contact_id = ContactRepo(session).add(campaign_id, str(next(_phones)), name="王芳",
                                              gender="女").id

    async def run() -> tuple[str, list[BotReply]]:
        async with aiohttp.ClientSession() as http:
            call_id, call = TextCall.dial(stack.endpoint.channel(http), db, campaign_id,
                                          contact_id)
            assert call is not None
            await call.start()
            replies = await conversation(call)
            if not call.ended:
                await call.hang_up()
            return call_id, replies

    return asyncio.run(run())


def call_row(db: Database, call_id: str) -> Call:
    with db.session() as session:
        call = session.get(Call, call_id)
        assert call is not None
        return call


def escalations(db: Database, call_id: str) -> list[Escalation]:
    with db.session() as session:
        return list(session.scalars(select(Escalation).where(Escalation.call_id == call_id)))


def test_an_ordinary_yes_heard_as_could_i_tell_you_goes_on_with_the_call(
        db: Database, stack: RasaStack, campaign_id: int) -> None:
    """"可以你说" heard as "可以跟你说": whatever the classifier makes of it, the call is not
    handed to a person; if it is asked back, "不是，你说吧" goes on."""
    async def talk(call: TextCall) -> list[BotReply]:
        replies = [await call.say("是我")]
        replies.append(await call.hear("可以跟你说", 0.9))
        if any("转接人工客服吗" in t for t in replies[-1].texts):
            replies.append(await call.say("不是，你说吧"))
            replies.append(await call.say("可以"))
        return replies

    call_id, replies = converse(db, stack, campaign_id, talk)
    assert all(r.transfer is None for r in replies), [r.texts for r in replies]
    assert any("每月5元" in t for t in replies[-1].texts), replies[-1].texts  # the pitch
    assert escalations(db, call_id) == []


def test_a_real_request_for_a_person_is_still_transferred(
        db: Database, stack: RasaStack, campaign_id: int) -> None:
    async def talk(call: TextCall) -> list[BotReply]:
        return [await call.say("是我"), await call.say("我要转人工")]

    call_id, replies = converse(db, stack, campaign_id, talk)
    assert replies[-1].transfer is not None
    assert call_row(db, call_id).outcome == "escalated"


def test_no_after_distrust_then_silence_is_a_decline_never_redialled(
        db: Database, stack: RasaStack, pause_running: Callable[[Database], None]) -> None:
    """The case from the field: recorded as no_response and called again the same day.
    Dialled by the real dialer (a campaign of its own, on a virtual calling day), so that
    completing the attempt decides what becomes of the contact."""
    defn = marketing("no-is-no")
    campaign_id = save_campaign(db, defn)
    pause_running(db)  # the dialer below claims from every running campaign
    start, _ = calling_day(defn, date(2026, 12, 3))
    start_campaign(db, defn.name, start)
    with db.session() as session:
        contact_id = ContactRepo(session).add(campaign_id, "13900003000", name="王芳").id
    dialer = Dialer(db, "text")
    [job] = dialer.claim(start, capacity=1)
    assert job.contact_id == contact_id

    async def talk() -> list[BotReply]:
        async with aiohttp.ClientSession() as http:
            call = TextCall.connect(stack.endpoint.channel(http), db, job.call_id, now=start)
            assert call is not None
            await call.start()
            replies = [await call.say("是我"), await call.say("可以"),
                       await call.say("你们是骗子吧"), await call.say("不要")]
            assert any("原因" in t for t in replies[-1].texts), replies[-1].texts
            replies.append(await call.silence())
            if not call.ended:
                replies.append(await call.silence())
            if not call.ended:
                await call.hang_up()
            return replies

    asyncio.run(talk())
    call = call_row(db, job.call_id)
    assert (call.outcome, call.decline_reason) == ("declined", "distrust")
    dialer.complete(job.call_id, start + timedelta(minutes=3))
    with db.session() as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None
        assert (contact.status, contact.next_attempt_at) == ("done", None)
    assert dialer.claim(start + timedelta(hours=3), capacity=1) == []


def test_hanging_up_on_the_reason_question_keeps_the_decline(
        db: Database, stack: RasaStack, campaign_id: int) -> None:
    async def talk(call: TextCall) -> list[BotReply]:
        return [await call.say("是我"), await call.say("可以"), await call.say("不要")]

    call_id, _ = converse(db, stack, campaign_id, talk)  # then converse hangs up
    call = call_row(db, call_id)
    assert (call.outcome, call.decline_reason) == ("declined", "other")
