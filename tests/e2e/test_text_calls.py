"""Every sample persona as a text-mode call through the real Rasa server, action server and
database; then what the business and QA read: outcomes, ledger, DNC, transcript, report."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.campaigns.definition import load_definition
from bot.channel import BotReply
from bot.demo import PersonaResult, run_campaign, sample_campaigns
from bot.events import CallEvent, InProcessBus
from bot.services import RasaStack
from bot.store import CallRepo, CampaignRepo, ConsentLedger, ContactRepo, Database, DncRepo
from bot.store.models import Call, Campaign, Consent, Contact, TranscriptTurn
from bot.textcall import TextCall

pytestmark = pytest.mark.rasa


@pytest.fixture(scope="module")
def sqlite_url(db_url: str) -> str:
    """The run's database (tests/e2e/conftest.py), which the shared action server writes
    to; the sample campaigns keep their names here (no other module uses them)."""
    return db_url


@pytest.fixture(scope="module")
def stack(rasa_stack: RasaStack) -> RasaStack:
    return rasa_stack


@pytest.fixture(scope="module")
def results(stack: RasaStack, sqlite_url: str, pause_running: Callable[[Database], None]
            ) -> dict[str, tuple[list[PersonaResult], dict]]:
    db = Database(sqlite_url)
    pause_running(db)  # the dialer claims from every running campaign
    out = {}
    for campaign_file, personas_dir in sample_campaigns():
        out[campaign_file.stem] = asyncio.run(
            run_campaign(db, stack.endpoint, campaign_file, personas_dir))
    return out


@pytest.mark.parametrize("campaign", ["marketing", "notification", "survey",
                                      "second_confirmation"])
def test_every_persona_gets_its_expected_result(results: dict, campaign: str) -> None:
    persona_results, _ = results[campaign]
    failed = [r.as_json() for r in persona_results if not r.ok]
    assert failed == []
    assert len(persona_results) >= 4


def test_report_figures_match_the_personas(results: dict) -> None:
    persona_results, figures = results["marketing"]
    answered = [r for r in persona_results if r.dial_result == "answered"]
    consented = [r for r in answered if r.outcome == "consented"]
    # the dialer's day: busy, unanswered and silent numbers retried up to max_attempts (3)
    attempts = {r.persona: r.attempts for r in persona_results}
    assert attempts["line_busy"] == attempts["no_answer"] == attempts["silent"] == 3
    assert attempts["empty_number"] == 1  # 空号: never again
    assert attempts["busy_driving"] == 1  # the callback asked for is tomorrow
    assert figures["dialled"] == sum(attempts.values())
    assert figures["connected"] == sum(r.attempts for r in answered)
    assert figures["consents"] == len(consented) == 5
    assert figures["consent_rate_over_connected"] == round(
        len(consented) / figures["connected"], 4)
    assert figures["decline_reasons"] == {"distrust": 1, "too_expensive": 2,
                                          "not_needed": 1, "other": 2}
    assert figures["dial_results"]["busy"] == 3
    assert figures["dial_results"]["invalid_number"] == 1
    assert figures["grades"]["A"] == 5 and figures["funnel"][-1]["count"] == 5


def test_ledger_holds_exactly_the_consents_and_verifies(results: dict, sqlite_url: str) -> None:
    db = Database(sqlite_url)
    consented = {r.call_id for rs, _ in results.values() for r in rs if r.outcome == "consented"}
    with db.session() as session:
        rows = session.scalars(select(Consent).where(
            Consent.campaign_id.in_(sample_campaign_ids(session)))).all()
        assert {c.call_id for c in rows} == consented
        assert ConsentLedger(session).verify().ok
        # the persona who only ever said 嗯 has no ledger entry
        only_en = next(r for r, _ in [results["marketing"]] for r in r
                       if r.persona == "only_says_en")
        assert only_en.call_id not in {c.call_id for c in rows}


def test_dnc_and_blacklist_entries_exist(results: dict, sqlite_url: str) -> None:
    db = Database(sqlite_url)
    with db.session() as session:
        ours = set(session.scalars(select(Contact.phone).where(
            Contact.campaign_id.in_(sample_campaign_ids(session)))))
        kinds = sorted(e.kind for e in DncRepo(session).active() if e.phone in ours)
    assert kinds == ["blacklist", "do_not_call"]


def sample_campaign_ids(session: Session) -> list[int]:
    """This module's campaigns in the run's shared database (other modules add their own)."""
    names = [load_definition(campaign_file).name for campaign_file, _ in sample_campaigns()]
    return list(session.scalars(select(Campaign.id).where(Campaign.name.in_(names))))


def test_transcript_is_recorded_turn_by_turn(results: dict, sqlite_url: str) -> None:
    persona_results, _ = results["marketing"]
    call_id = next(r.call_id for r in persona_results if r.persona == "consents_after_price")
    with Database(sqlite_url).session() as session:
        turns = session.scalars(select(TranscriptTurn).where(TranscriptTurn.call_id == call_id)
                                .order_by(TranscriptTurn.seq)).all()
        call = session.get(Call, call_id)
        assert call is not None and call.outcome == "consented"
    speakers = [t.speaker for t in turns]
    assert speakers[0] == "bot" and "customer" in speakers
    texts = [t.text for t in turns]
    assert any("每月5元" in t for t in texts)  # the price was said
    assert "[按键 1]" in texts
    noted = [(t.text, t.intent) for t in turns if t.speaker == "customer"]
    assert all(intent for _, intent in noted), noted  # what the classifier made of each
    assert ("[按键 1]", "dtmf") in noted
    assert [t.seq for t in turns] == sorted(t.seq for t in turns)


def test_hang_up_mid_pitch_keeps_the_call(results: dict, sqlite_url: str) -> None:
    persona_results, _ = results["marketing"]
    result = next(r for r in persona_results if r.persona == "hangs_up_mid_pitch")
    with Database(sqlite_url).session() as session:
        call = session.get(Call, result.call_id)
        assert call is not None and call.outcome == "hung_up_early" and call.pitched
        turns = session.scalars(select(TranscriptTurn).where(
            TranscriptTurn.call_id == result.call_id)).all()
        assert turns[-1].text == "客户挂机"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    name = f"waihu_e2e_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres",
                                autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("WAIHU_TEST_REQUIRE_PG"):
            raise
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


@pytest.mark.postgres
def test_marketing_calls_on_postgresql(postgres_url: str) -> None:
    db = Database(postgres_url)
    db.upgrade()
    campaign_file, personas_dir = sample_campaigns()[0]
    with RasaStack(postgres_url) as running:
        persona_results, figures = asyncio.run(
            run_campaign(db, running.endpoint, campaign_file, personas_dir))
    db.dispose()
    assert [r.persona for r in persona_results if not r.ok] == []
    assert figures["consents"] == 5


def test_examples_exist() -> None:
    for campaign_file, personas_dir in sample_campaigns():
        assert campaign_file.exists() and Path(personas_dir).is_dir()


def test_a_do_not_call_request_heard_unclearly_is_confirmed_back(
        results: dict, stack: RasaStack, sqlite_url: str) -> None:
    """Through the real Rasa server and actions: a spoken 别再打了 that the recogniser only
    guessed (snapped to a hint) is asked back; "no" goes on with the call, a keyed 1 bars
    the number with the customer's own words."""
    db = Database(sqlite_url)
    phone = "13900009876"
    with db.session() as session:
        campaign = CampaignRepo(session).by_name(load_definition(
            sample_campaigns()[0][0]).name)
        assert campaign is not None
        campaign_id = campaign.id
        contact_id = ContactRepo(session).add(campaign_id, phone, name="测试", gender="男").id

    async def converse() -> tuple[list[BotReply], str]:
        async with aiohttp.ClientSession() as http:
            call_id, call = TextCall.dial(stack.endpoint.channel(http), db, campaign_id,
                                          contact_id)
            assert call is not None
            await call.start()
            await call.say("是我")
            turns = [await call.hear("别再打了", 0.9, snapped=True)]
            turns.append(await call.say("不是"))
            turns.append(await call.hear("别再打了", 0.4))
            turns.append(await call.key("1"))
            return turns, call_id

    (asked, denied, asked_again, barred), call_id = asyncio.run(converse())
    assert any("您是说以后不要再给您打" in t for t in asked.texts), asked.texts
    assert asked.listen is not None and asked.listen["dtmf_max"] == 1 and not asked.ends_call
    assert denied.texts[0] == "好的。" and not denied.ends_call
    assert any("您是说以后不要再给您打" in t for t in asked_again.texts)
    assert barred.hangup and any("已为您登记" in t for t in barred.texts)
    with db.session() as session:
        entries = [e for e in DncRepo(session).active() if e.phone == phone]
        call = session.get(Call, call_id)
        assert call is not None and call.outcome == "do_not_call"
    assert [(e.kind, e.reason) for e in entries] == [("do_not_call", "别再打了")]


def test_a_text_call_is_a_stream_of_events(results: dict, stack: RasaStack,
                                           sqlite_url: str) -> None:
    """Through the real Rasa server and action server: each customer turn is followed by
    what the classifier made of it, sent back by the deciding action."""
    db = Database(sqlite_url)
    with db.session() as session:
        campaign = CampaignRepo(session).by_name(load_definition(
            sample_campaigns()[0][0]).name)
        assert campaign is not None
        campaign_id = campaign.id
        contact_id = ContactRepo(session).add(campaign_id, "13900004321", name="事件").id
    bus = InProcessBus()
    seen: list[CallEvent] = []
    bus.subscribe(seen.append)

    async def converse() -> str:
        async with aiohttp.ClientSession() as http:
            with db.session() as session:
                call_id = CallRepo(session).start_attempt(campaign_id, contact_id).call_id
            call = TextCall.connect(stack.endpoint.channel(http), db, call_id,
                                    events=bus)
            assert call is not None
            await call.start()
            await call.say("是我")
            await call.say("没兴趣，别再打了")
            if not call.ended:
                await call.hang_up()
            return call_id

    call_id = asyncio.run(converse())
    names = [e.name for e in seen]
    assert names[0] == "call.answered" and names[-1] == "call.ended", names
    classified = [e.data for e in seen if e.name == "turn.classified"]
    customer = [e.data["text"] for e in seen if e.name == "turn.customer"]
    assert customer == ["是我", "没兴趣，别再打了"]
    assert classified[0]["intent"] == "affirm" and classified[0]["confidence"] > 0.5
    assert len(classified) == 2
    assert seen[-1].data["outcome"] == "do_not_call" and {e.call_id for e in seen} == {call_id}
