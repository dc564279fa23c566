"""The agent desk in headless Chromium (Debian's /usr/bin/chromium through Playwright): an
agent starts taking calls, goes away for a meeting while the supervisor watches, comes
back; an escalated call is offered, accepted and ended through bot/agents/desk.py (standing
in for the voice gateway, whose wiring of the offer comes later), the desk follows each
change live, shows the disposition form with its countdown, the agent reveals the number
(audited), records the disposition, is available again, and the figures show the call.

The second journey is the offer's pop with two agents logged in: the call is handed over
as the gateway does it (bot/agents/handover.py, without SIP: test_desk_offer_sip.py covers
the phones), the chosen agent's desk pops with its sound, title and highlight, the turns
the gateway stores appear live, the agent listens, takes over, the call ends, the
disposition is saved and the figures show the call; the other agent's page receives
nothing of it, not even over its WebSocket.

The console runs in this process (a thread of its own, with its desk watcher) on a free
127.0.0.1 port.  Screenshots of each step go to var/test-artifacts/console/ (10-18, 20-29).
"""

from __future__ import annotations

import asyncio
import json
import queue
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import select

from bot import accounts
from bot.agents import desk, handover
from bot.console.server import running
from bot.console.settings import ConsoleSettings
from bot.events import InProcessBus
from bot.store import AuditRepo, CallRepo, Database
from bot.store.models import Disposition, Escalation
from tests.unit.agents.seeding import escalate
from tests.unit.console.desk_helpers import CAMPAIGN, add_trial_campaign

pytestmark = pytest.mark.browser
REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "var" / "test-artifacts" / "console"
PASSWORD = "desk password 1"
TIMEOUT_MS = 15_000
PHONE = "13812345678"
COUNTDOWN = re.compile(r"^[12]:\d\d$")  # the campaign's 120 s of after-call work, going down


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[str, Database]]:
    db = Database(f"sqlite:///{tmp_path / 'desk.db'}")
    db.upgrade()
    cheap = accounts.Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    accounts.create_user(db, cheap, "wangfang", "agent", PASSWORD, actor="test",
                         display_name="王芳",
                         agent=accounts.AgentOptions("sip:1001@127.0.0.1", (CAMPAIGN,), 2))
    accounts.create_user(db, cheap, "lead", "supervisor", PASSWORD, actor="test",
                         display_name="李主管")
    add_trial_campaign(db, wrap_up_max_s=120)
    loop = asyncio.new_event_loop()
    started: queue.Queue[str] = queue.Queue()
    stop = asyncio.Event()

    async def serve() -> None:
        async with running(ConsoleSettings(port=0), db, InProcessBus(), passwords=cheap) as url:
            started.put(url)
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    try:
        yield started.get(timeout=30), db
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
        loop.close()
        db.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make setup installs it)")
    with sync_playwright() as driver:
        # No click precedes an offer in a test: let the pop's sound play without one.
        launched = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                          args=["--autoplay-policy=no-user-gesture-required"])
        yield launched
        launched.close()


def new_page(browser: Browser) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def log_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录 Log in").click()
    expect(page.locator("#live.on")).to_be_visible()  # the page's WebSocket said hello


# --- page objects ----------------------------------------------------------------------


class Desk:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.state = page.locator("#agent-state")

    def expect_state(self, state: str) -> None:
        expect(self.state).to_have_attribute("data-state", state)

    def press(self, label: str) -> None:
        self.page.get_by_role("button", name=label).click()

    def go_away(self, reason_label: str) -> None:
        self.page.locator("#away-form select").select_option(label=reason_label)
        self.page.locator("#away-form button").click()

    def record(self, disposition_label: str, notes: str) -> None:
        form = self.page.locator("#disposition-form")
        form.get_by_label(disposition_label).check()
        form.get_by_label("备注").fill(notes)
        form.get_by_role("button", name="保存并结束话后处理").click()


class Wall:
    """The supervisors' page: the agents and their presence."""

    def __init__(self, page: Page, agent_id: int) -> None:
        self.row = page.locator(f'tr[data-agent-id="{agent_id}"]')

    def expect_state(self, state: str) -> None:
        expect(self.row.locator(".state")).to_have_attribute("data-state", state)


# --- the journey -------------------------------------------------------------------------


def test_an_agent_works_a_call_from_the_desk(browser: Browser,
                                            console: tuple[str, Database]) -> None:
    base, db = console
    agent_id = next(u.id for u in accounts.list_users(db) if u.username == "wangfang")
    page = new_page(browser)
    log_in(page, base, "wangfang")
    agent = Desk(page)
    agent.expect_state("offline")  # logging in does not make her available
    expect(page.get_by_role("button", name="开始接听 Start taking calls")).to_be_visible()
    shot(page, "10-desk-offline")

    agent.press("开始接听 Start taking calls")
    agent.expect_state("available")
    shot(page, "11-desk-available")

    lead = new_page(browser)
    log_in(lead, base, "lead")
    wall = Wall(lead, agent_id)
    wall.expect_state("available")
    agent.go_away("会议 meeting")
    agent.expect_state("away")
    expect(page.locator("#away-reason")).to_have_text("会议 meeting")
    shot(page, "12-desk-away")
    wall.expect_state("away")  # pushed to the supervisor's open page
    expect(wall.row).to_contain_text("会议 meeting")
    shot(lead, "13-supervisor-presence")

    agent.press("回来接听 Back to calls")
    agent.expect_state("available")
    wall.expect_state("available")

    # The bot escalates; the desk (as the gateway will) offers the call, it is taken, ended.
    escalation = escalate(db, PHONE, CAMPAIGN, datetime.now(UTC))
    with db.session(write=True) as session:
        made = desk.offer_next(session, escalation.id, datetime.now(UTC))
        assert made.offer is not None and made.offer.agent_id == agent_id
        offer_id = made.offer.id
    agent.expect_state("offered")  # the watcher read it and the desk reloaded its part
    expect(page.locator("#call-facts")).to_contain_text("王五")
    expect(page.locator("#call-facts")).to_contain_text("138****5678")
    shot(page, "14-desk-offered")
    with db.session(write=True) as session:
        desk.answer_offer(session, offer_id, "accepted", datetime.now(UTC))
    agent.expect_state("on_call")
    with db.session(write=True) as session:
        desk.end_call(session, agent_id, escalation.call_id, datetime.now(UTC))
    agent.expect_state("wrap_up")
    expect(page.locator("#disposition-form")).to_be_visible()
    expect(page.locator("#callback-time")).to_be_hidden()
    expect(page.locator("[data-ends]")).to_have_text(COUNTDOWN)

    page.get_by_role("button", name="显示 Show").click()
    expect(page.locator(f'[data-phone-of="{escalation.call_id}"]')).to_have_text(PHONE)
    with db.session() as session:
        viewed = AuditRepo(session).entries(action="phone.viewed")
    assert [(e.actor, e.subject) for e in viewed] == [("user:wangfang", escalation.call_id)]
    page.locator("#disposition-form").get_by_label("约定回电 callback").check()
    expect(page.locator("#callback-time")).to_be_visible()  # the time, for a callback only
    shot(page, "15-desk-wrap-up")

    agent.record("已解决 resolved", "客户询问资费，已解释清楚")
    agent.expect_state("available")
    expect(page.get_by_role("status")).to_contain_text("处理结果已保存")
    expect(page.locator("#offer-empty")).to_be_visible()
    shot(page, "16-desk-after-disposition")
    wall.expect_state("available")

    page.get_by_role("link", name="我的业绩 My figures").click()
    row = page.locator(f'#calls-taken tr[data-escalation="{escalation.id}"]')
    expect(row).to_contain_text("已解决 resolved")
    expect(row).to_contain_text("138****5678")
    expect(page.locator('[data-figure="accepted"] .tile-value')).to_have_text("1")
    shot(page, "17-agent-figures")

    lead.goto(f"{base}/supervisor/agents")
    expect(lead.locator('tr[data-agent-row="wangfang"]')).to_be_visible()
    shot(lead, "18-supervisor-agents")


# --- the offer's pop, two agents ---------------------------------------------------------


class Frames:
    """Every WebSocket frame a page receives (what a page could show, shown or not)."""

    def __init__(self, page: Page) -> None:
        self.texts: list[str] = []
        page.on("websocket", lambda ws: ws.on("framereceived", self._add))

    def _add(self, payload: str | bytes) -> None:
        self.texts.append(payload if isinstance(payload, str) else payload.decode())

    def messages(self, kind: str) -> list[dict[str, Any]]:
        found = [json.loads(text) for text in self.texts]
        return [m for m in found if m.get("type") == kind]


class Pop:
    """The offered call on the desk."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.area = page.locator("#offer-area")
        self.transcript = page.locator("#transcript")

    def expect_turn(self, text: str) -> None:
        expect(self.transcript.locator("li.turn").last).to_contain_text(text)


def store_turn(db: Database, call_id: str, speaker: str, text: str) -> None:
    """As the gateway's transcript writer does (bot/transcript.py)."""
    with db.session() as session:
        CallRepo(session).add_turn(call_id, speaker, text)


def test_the_chosen_agent_gets_the_pop_and_the_live_transcript(
        browser: Browser, console: tuple[str, Database]) -> None:
    base, db = console
    cheap = accounts.Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    lina = accounts.create_user(db, cheap, "lina", "agent", PASSWORD, actor="test",
                                display_name="李娜",
                                agent=accounts.AgentOptions("sip:1002@127.0.0.1", (CAMPAIGN,), 1))
    wangfang_id = next(u.id for u in accounts.list_users(db) if u.username == "wangfang")
    page, other = new_page(browser), new_page(browser)
    seen_by_other = Frames(other)
    seen_by_agent = Frames(page)
    log_in(page, base, "wangfang")
    Desk(page).press("开始接听 Start taking calls")
    Desk(page).expect_state("available")
    log_in(other, base, "lina")  # available after her: equal_share offers the longest idle
    Desk(other).press("开始接听 Start taking calls")
    Desk(other).expect_state("available")

    # The bot escalates a call; the gateway hands it over and offers it (handover.py).
    escalation = escalate(db, PHONE, CAMPAIGN, datetime.now(UTC))
    call_id = escalation.call_id
    with db.session() as session:
        stored = session.get(Escalation, escalation.id)
        assert stored is not None
        stored.context = {"stage_before": "pitch", "pitched": True, "verified": True}
        calls = CallRepo(session)
        calls.add_turn(call_id, "bot", "王先生您好，我们的来电提醒服务首月免费，之后每月5元。")
        calls.add_turn(call_id, "customer", "我要找人工")
        calls.add_turn(call_id, "bot", "好的，正在为您转接人工客服，请稍候。")
    with db.session(write=True) as session:
        handed = handover.open_handover(session, call_id, "request_human")
        assert handed is not None
        seen = handover.offer_next(session, handed.escalation_id, datetime.now(UTC))
        assert seen is not None and seen.agent_id == wangfang_id, seen
    pop = Pop(page)
    agent = Desk(page)
    agent.expect_state("offered")
    expect(pop.area).to_have_class(re.compile(r"\boffer-ringing\b"))
    expect(page).to_have_title(re.compile(r"^【来电 Call offered】王五 · 坐席工作台"))
    expect(page.locator("body")).to_have_attribute("data-chimed-offer", str(seen.offer_id))
    expect(page.locator("body")).to_have_attribute("data-audio-state", "running")
    expect(page.locator("#desk-announcer")).to_contain_text("王五")
    expect(page.locator("#call-facts")).to_contain_text("138****5678")
    expect(page.locator("#collected")).to_contain_text("介绍产品 pitch")
    pop.expect_turn("正在为您转接人工客服")
    shot(page, "20-offer-pop")

    # The conversation goes on while the desk shows it: turns stored -> on the page.
    store_turn(db, call_id, "customer", "我的号码是13812345678，上个月被多扣了钱")
    pop.expect_turn("我的号码是138****5678，上个月被多扣了钱")
    store_turn(db, call_id, "bot", "请您稍等，客服马上接听。")
    pop.expect_turn("客服马上接听")
    expect(pop.transcript.locator("li.turn")).to_have_count(5)
    shot(page, "21-offer-live-transcript")

    page.get_by_role("button", name="先监听 Listen first").click()
    expect(page.locator("#listening")).to_be_visible()
    with db.session() as session:
        assert handover.read_offer(session, seen.offer_id).listened  # the gateway dials
    # the page was drawn again (a form's answer): the same offer does not sound twice
    expect(page.locator("body")).not_to_have_attribute("data-chimed-offer", re.compile("."))
    store_turn(db, call_id, "customer", "喂？还有人吗？")
    pop.expect_turn("还有人吗")
    shot(page, "22-offer-listening")

    page.get_by_role("button", name="接听 Take over").click()
    agent.expect_state("on_call")
    expect(page).to_have_title(re.compile(r"^【通话中 On call】王五"))
    expect(pop.area).not_to_have_class(re.compile(r"\boffer-ringing\b"))
    store_turn(db, call_id, "system", "[坐席已接通 agent on the line]")
    pop.expect_turn("坐席已接通")
    expect(pop.transcript.locator("li.turn")).to_have_count(7)  # none twice, none lost
    shot(page, "23-on-call")

    with db.session(write=True) as session:  # the customer hangs up: the bridge ends
        handover.end_agent_call(session, wangfang_id, call_id, datetime.now(UTC))
    agent.expect_state("wrap_up")
    expect(page).to_have_title(re.compile(r"^坐席工作台"))
    expect(page.locator("#disposition-form")).to_be_visible()
    page.locator("#disposition-form").get_by_label("已解决 resolved").check()
    page.locator("#disposition-form").get_by_label("备注").fill("多扣费已登记，三个工作日内退回")
    shot(page, "24-wrap-up")
    agent.record("已解决 resolved", "多扣费已登记，三个工作日内退回")
    agent.expect_state("available")
    expect(page.get_by_role("status")).to_contain_text("处理结果已保存")
    with db.session() as session:
        saved = session.scalar(select(Disposition))
        assert saved is not None
        assert (saved.escalation_id, saved.disposition) == (escalation.id, "resolved")
    shot(page, "25-after-the-call")

    page.get_by_role("link", name="我的业绩 My figures").click()
    row = page.locator(f'#calls-taken tr[data-escalation="{escalation.id}"]')
    expect(row).to_contain_text("已解决 resolved")
    expect(page.locator('[data-figure="accepted"] .tile-value')).to_have_text("1")
    shot(page, "26-figures-after-the-pop")

    # The other agent saw nothing of the call: not on the page, not over the socket.
    other.reload()
    Desk(other).expect_state("available")
    expect(other.locator("#offer-empty")).to_be_visible()
    expect(other.locator("body")).not_to_have_attribute("data-chimed-offer", re.compile("."))
    shot(other, "27-other-agent-saw-nothing")
    assert other.title().startswith("坐席工作台")
    assert seen_by_other.texts, "the other agent's page had its socket open"
    for text in seen_by_other.texts:
        assert call_id not in text and "王五" not in text and "5678" not in text, text
    assert not seen_by_other.messages("turn")
    assert all(m["agent_id"] == lina.id for m in seen_by_other.messages("presence"))
    turns = seen_by_agent.messages("turn")
    assert {m["call_id"] for m in turns} == {call_id}
    assert not any(PHONE in text for text in seen_by_agent.texts)  # masked on the wire too
