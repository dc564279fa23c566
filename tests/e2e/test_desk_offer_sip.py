"""The agent desk's whole journey: an escalated call offered through the desk over real SIP
on 127.0.0.1, worked by an agent in headless Chromium.

The gateway calls a Debian baresip phone as the virtual customer (silent through the bot's
lines, then a 1000 Hz tone as its voice) with a dialogue stand-in that asks for a person at
once; the campaign has two agents logged in to the console (`waihu console`, its own
process), each in a browser context of their own.  The chosen agent's SIP phone is a second,
independent Debian baresip (auto-answer, a 2000 Hz tone as its voice, recording what it
hears).  Everything the agent does is a click on the desk: the pop shows the call and its
transcript growing live; 先监听 Listen first rings their phone, which hears the customer
unheard; 接听 Take over bridges them (the customer hears the agent; the recording goes on);
交回机器人确认办理 hands the call back to the bot (their phone hangs up, the customer stays
on with the bot); the disposition form is saved and the agent's figures show the call.  The
other agent sees nothing of it, not even over their page's WebSocket.
Screenshots sip-01..08 in var/test-artifacts/console/.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import accounts, channel, events
from bot.agents import desk
from bot.agents.presence import PresenceEvent
from bot.events import CallEvent, InProcessBus
from bot.store import Database, in_write
from bot.store.models import (
    Agent,
    AgentCampaign,
    Disposition,
    Escalation,
    EscalationOffer,
    TranscriptTurn,
    User,
)
from tests.e2e.browser_thread import ChromiumThread
from tests.e2e.console_process import running_console
from tests.e2e.sip_calls import (
    NOW,
    SAMPLE_BYTES_PER_MS,
    Peers,
    Scripted,
    campaign,
    claim_all,
    compose_wav,
    first,
    level,
    recording_of,
    span,
    stereo_channels,
    voiced_s,
)
from tests.e2e.test_console_desk import (
    CHROMIUM,
    PASSWORD,
    Desk,
    Frames,
    Pop,
    log_in,
    new_page,
    shot,
)
from tests.sip_peers import tone
from voice.gateway import Gateway, GatewayConfig
from voice.session import SessionConfig
from voice.stack import VoiceParts

pytestmark = [pytest.mark.sip, pytest.mark.browser]


def add_agent(db: Database, username: str, sip_uri: str, campaign_name: str) -> int:
    """An agent serving *campaign_name* with *sip_uri* as their phone, logged in now."""
    with db.session(write=True) as session:
        user = User(username=username, role="agent", password_hash="x")
        session.add(user)
        session.flush()
        session.add(Agent(user_id=user.id, sip_uri=sip_uri))
        session.add(AgentCampaign(agent_id=user.id, campaign=campaign_name))
        session.flush()
        desk.change_presence(session, user.id, PresenceEvent("log_in"), datetime.now(UTC))
        return user.id


def ringing_offer(db: Database, agent_id: int) -> int | None:
    with db.session() as session:
        return session.scalar(select(EscalationOffer.id).where(
            EscalationOffer.agent_id == agent_id, EscalationOffer.outcome.is_(None)))


def as_console(db: Database, work: str, offer_id: int) -> None:
    def run(session: Session) -> None:
        if work == "listen":
            desk.listen(session, offer_id, datetime.now(UTC))
        else:
            desk.answer_offer(session, offer_id, "accepted", datetime.now(UTC))
    in_write(db, run)




# -- the desk in Chromium (each function runs on the browser's thread: browser_thread.py) -----
@dataclass
class Desks:
    """The two agents' desks: the chosen one's and the other's, with their sockets' frames."""

    chosen: Page
    other: Page
    chosen_frames: Frames
    other_frames: Frames

    @property
    def pop(self) -> Pop:
        return Pop(self.chosen)


def both_take_calls(browser: Browser, base: str) -> Desks:
    """Both agents log in and start taking calls, the chosen one first (equal_share offers
    the call to the agent idle the longest)."""
    pages = []
    for username in (CHOSEN, OTHER):
        page = new_page(browser)
        frames = Frames(page)
        log_in(page, base, username)
        Desk(page).expect_state("offline")
        Desk(page).press("开始接听 Start taking calls")
        Desk(page).expect_state("available")
        pages.append((page, frames))
    shot(pages[0][0], "sip-01-available")
    return Desks(pages[0][0], pages[1][0], pages[0][1], pages[1][1])


def sees_the_pop(desks: Desks, masked: str) -> int:
    """The chosen desk pops with the call; returns how many turns it shows."""
    page, pop = desks.chosen, desks.pop
    Desk(page).expect_state("offered")
    expect(pop.area).to_have_class(re.compile(r"\boffer-ringing\b"))
    expect(page).to_have_title(re.compile(rf"^【来电 Call offered】{CUSTOMER} · 坐席工作台"))
    expect(page.locator("#call-facts")).to_contain_text(CUSTOMER)
    expect(page.locator("#call-facts")).to_contain_text(masked)
    expect(pop.transcript).to_contain_text("正在为您转接人工客服")
    expect(page.locator("#ringing")).to_be_visible()
    shot(page, "sip-02-offer-pop")
    Desk(desks.other).expect_state("available")
    expect(desks.other.locator("#offer-empty")).to_be_visible()
    return pop.transcript.locator("li.turn").count()


def listens(desks: Desks, turns_at_pop: int) -> None:
    page, pop = desks.chosen, desks.pop
    page.get_by_role("button", name="先监听 Listen first").click()
    expect(page.locator("#listening")).to_be_visible()
    # written by the gateway once the phone answered, after the page was drawn: live
    expect(pop.transcript).to_contain_text("坐席正在监听")
    assert pop.transcript.locator("li.turn").count() > turns_at_pop
    shot(page, "sip-03-listening")


def takes_over(desks: Desks) -> None:
    page, pop = desks.chosen, desks.pop
    page.get_by_role("button", name="接听 Take over").click()
    Desk(page).expect_state("on_call")
    expect(page).to_have_title(re.compile(rf"^【通话中 On call】{CUSTOMER}"))
    expect(pop.area).not_to_have_class(re.compile(r"\boffer-ringing\b"))
    expect(pop.transcript).to_contain_text("已接通坐席")
    expect(page.locator("#handback")).to_be_visible()
    shot(page, "sip-04-on-call")


def hands_back(desks: Desks) -> None:
    page = desks.chosen
    page.get_by_role("button", name="交回机器人确认办理").click()
    expect(page.get_by_role("status")).to_contain_text("已交回机器人")
    shot(page, "sip-05-handed-back")


def records_the_sale(desks: Desks, escalation_id: int) -> None:
    page = desks.chosen
    Desk(page).expect_state("wrap_up")  # once the gateway unbridged the agent
    expect(page.locator("#disposition-form")).to_be_visible()
    expect(page.locator("#call-facts")).to_contain_text(CUSTOMER)
    page.locator("#disposition-form").get_by_label("成交 sale").check()
    page.locator("#disposition-form").get_by_label("备注").fill(NOTES)
    shot(page, "sip-06-wrap-up")
    Desk(page).record("成交 sale", NOTES)
    Desk(page).expect_state("available")
    # saved, with the warning that the ledger holds no confirmation from the customer
    expect(page.get_by_role("status")).to_contain_text("同意账本中没有这位客户的确认")
    page.get_by_role("link", name="我的业绩 My figures").click()
    row = page.locator(f'#calls-taken tr[data-escalation="{escalation_id}"]')
    expect(row).to_contain_text("成交 sale")
    # handed back; the scripted dialogue asks no confirmation: the sale has no proof
    expect(row.locator(".handed-back")).to_be_visible()
    expect(row.locator(".consent-missing")).to_be_visible()
    expect(page.locator('[data-figure="accepted"] .tile-value')).to_have_text("1")
    shot(page, "sip-07-figures")


def the_other_saw_nothing(desks: Desks) -> None:
    other = desks.other
    other.reload()
    Desk(other).expect_state("available")
    expect(other.locator("#offer-empty")).to_be_visible()
    expect(other.locator("body")).not_to_have_attribute("data-chimed-offer", re.compile("."))
    shot(other, "sip-08-other-agent-saw-nothing")


# -- the journey --------------------------------------------------------------------------
CHOSEN, OTHER = "desk_sip_chosen", "desk_sip_other"
CUSTOMER = "赵六"
NOTES = "客户同意开通，已交回机器人确认"


async def test_an_agent_works_an_escalated_sip_call_from_the_desk_in_chromium(
        db_url: str, audio: dict[str, Path], peers: Peers, parts: VoiceParts,
        tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make setup installs it)")
    db = Database(db_url)
    phone = "13800000009"
    # The customer: 4 s of silence (the bot's lines), then a 1000 Hz tone as its voice.
    customer = await peers.phone(phone, compose_wav(
        tmp_path / "customer.wav", [(4.0, tone(1000, 36.0, 12000))], 40.0))
    agent_phone = await peers.phone("agent", audio["agent_tone"])  # 2000 Hz, 25 s
    dialer = campaign(db, "desk-sip", f"sip:{{number}}@127.0.0.1:{customer.sip_port}",
                      {phone: CUSTOMER})
    cheap = accounts.Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))

    def agents_made() -> tuple[int, int]:
        chosen = accounts.create_user(
            db, cheap, CHOSEN, "agent", PASSWORD, actor="test",
            agent=accounts.AgentOptions(agent_phone.uri, ("desk-sip",), 1))
        other = accounts.create_user(  # never dialled: the test fails if she is offered it
            db, cheap, OTHER, "agent", PASSWORD, actor="test",
            agent=accounts.AgentOptions("sip:other@127.0.0.1:9", ("desk-sip",), 1))
        return chosen.id, other.id
    agent_id, other_id = await asyncio.to_thread(agents_made)
    bus = InProcessBus()
    seen: list[CallEvent] = []
    bus.subscribe(seen.append)
    (job,) = claim_all(dialer, 1)
    dialogue = Scripted()
    gw = Gateway(db, parts.telephony, parts.asr, parts.tts, dialogue,
                 GatewayConfig(gateway_id="desk-sip", capacity=1, ring_timeout_s=15.0,
                               session=SessionConfig(recordings_dir=tmp_path / "recordings",
                                                     max_call_s=60.0, agent_answer_s=10.0)),
                 events=bus)
    with running_console(db_url, tmp_path / "console.log") as base:
        async with ChromiumThread.started(CHROMIUM) as chromium:
            desks = await chromium.run(lambda: both_take_calls(chromium.browser, base))
            placing = asyncio.create_task(gw.place_call(job, NOW))
            try:
                offered = await first(seen, events.ESCALATION_OFFERED, 25.0)
                assert offered.data["agent_id"] == agent_id
                offer_id = await asyncio.to_thread(ringing_offer, db, agent_id)
                assert offer_id is not None
                turns_at_pop = await chromium.run(sees_the_pop, desks, "138****0009")
                # the offer rings on the desk, not on the phone
                assert not [e for e in agent_phone.event_types() if e[0].startswith("CALL_")]

                listened_at = time.monotonic()
                await chromium.run(listens, desks, turns_at_pop)
                established = await agent_phone.wait_event("CALL_ESTABLISHED", timeout=10)
                assert established["_t"] > listened_at  # dialled once the agent listened
                await first(seen, events.ESCALATION_LISTENING, 5.0)
                await asyncio.sleep(2.5)  # listening: the agent hears the customer, unheard

                await chromium.run(takes_over, desks)
                await first(seen, events.CALL_BRIDGED, 5.0)
                await asyncio.sleep(2.5)  # the agent talks to the customer

                await chromium.run(hands_back, desks)
                ended = await first(seen, events.ESCALATION_ENDED, 5.0)
                assert ended.data["status"] == "returned_to_bot"
                report = await asyncio.wait_for(placing, 20.0)  # the bot says goodbye
                escalation_id = await asyncio.to_thread(escalation_of, db, job.call_id)
                await chromium.run(records_the_sale, desks, escalation_id)
                await chromium.run(the_other_saw_nothing, desks)
            finally:
                if not placing.done():
                    placing.cancel()
    assert report.error is None and report.session is not None
    # the agent's phone hung up at the hand-back; the customer stayed on with the bot, which
    # was given the call back, said goodbye and hung up
    assert report.session.ended_by == "bot"
    assert dialogue.messages == ["/call_started", channel.AGENT_HANDBACK]
    agent_closed = await agent_phone.wait_event("CALL_CLOSED", timeout=10)
    customer_closed = await customer.wait_event("CALL_CLOSED", timeout=10)
    assert customer_closed["_t"] > agent_closed["_t"]

    # one call to the agent's phone; it heard the customer (listening, then bridged)
    assert len([e for e in agent_phone.event_types() if e[0] == "CALL_ESTABLISHED"]) == 1
    by_agent = agent_phone.heard_pcm()
    print(f"agent heard 1000 Hz {level(by_agent, 1000):.0f} / 2000 Hz "
          f"{level(by_agent, 2000):.0f}, {voiced_s(by_agent):.1f} s voiced")
    assert voiced_s(by_agent) >= 4.0
    assert level(by_agent, 1000) > 5 * level(by_agent, 2000)

    # what the customer heard (the gateway's recording, right channel): no agent while
    # listening, the agent once bridged; the customer's own phone heard the agent too
    listening = next(e for e in seen if e.name == events.ESCALATION_LISTENING).offset_ms
    bridged = next(e for e in seen if e.name == events.CALL_BRIDGED).offset_ms
    left, right = stereo_channels(recording_of(db, job.call_id))
    quiet = span(right, listening + 300, bridged - 100)
    loud = span(right, bridged + 500, bridged + 2000)
    print(f"customer channel 2000 Hz: listening {level(quiet, 2000):.0f}, "
          f"bridged {level(loud, 2000):.0f}")
    assert len(quiet) > 1000 * SAMPLE_BYTES_PER_MS and len(loud) == 1500 * SAMPLE_BYTES_PER_MS
    assert level(loud, 2000) > 20 * max(level(quiet, 2000), 1.0)
    assert level(left, 1000) > 5 * level(left, 2000)
    by_customer = customer.heard_pcm()
    assert level(by_customer, 2000) > 5 * level(by_customer, 1000)

    with db.session() as session:
        offer = session.get(EscalationOffer, offer_id)
        escalation = session.get(Escalation, escalation_id)
        assert offer is not None and escalation is not None
        assert offer.outcome == "accepted" and offer.listened_at is not None
        assert escalation.status == "returned_to_bot"
        assert escalation.context["source"] == "gateway"
        saved = session.scalar(select(Disposition).where(
            Disposition.escalation_id == escalation_id))
        assert saved is not None and (saved.disposition, saved.notes) == ("sale", NOTES)
        assert desk.presence_of(session, agent_id).state == "available"
        assert not session.scalars(select(EscalationOffer).where(
            EscalationOffer.agent_id == other_id)).all()
        texts = list(session.scalars(select(TranscriptTurn.text).where(
            TranscriptTurn.call_id == job.call_id).order_by(TranscriptTurn.seq)))
    assert texts.index("坐席已交回机器人确认办理") < texts.index("再见"), texts
    names = [e.name for e in seen]
    assert names.index(events.ESCALATION_OFFERED) < names.index(events.ESCALATION_LISTENING) \
        < names.index(events.CALL_BRIDGED) < names.index(events.ESCALATION_ENDED)

    # the transcript grew live on the chosen desk (turns over its socket), and the other
    # agent's page received nothing of the call
    pushed = [m["text"] for m in desks.chosen_frames.messages("turn")
              if m["call_id"] == job.call_id]
    assert "坐席正在监听" in pushed and "已接通坐席" in pushed, pushed
    assert desks.other_frames.texts, "the other agent's page had its socket open"
    for text in desks.other_frames.texts:
        assert job.call_id not in text and CUSTOMER not in text and "0009" not in text, text
    assert not any(phone in text for text in desks.chosen_frames.texts)  # masked on the wire


def escalation_of(db: Database, call_id: str) -> int:
    with db.session() as session:
        found = session.scalar(select(Escalation.id).where(Escalation.call_id == call_id))
        assert found is not None
        return found
