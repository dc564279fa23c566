"""The agent desk in headless Chromium (Debian's /usr/bin/chromium through Playwright): an
agent starts taking calls, goes away for a meeting while the supervisor watches, comes
back; an escalated call is offered, accepted and ended through bot/agents/desk.py (standing
in for the voice gateway, whose wiring of the offer comes later), the desk follows each
change live, shows the disposition form with its countdown, the agent reveals the number
(audited), records the disposition, is available again, and the figures show the call.

The console runs in this process (a thread of its own, with its desk watcher) on a free
127.0.0.1 port.  Screenshots of each step go to var/test-artifacts/console/ (10-19).
"""

from __future__ import annotations

import asyncio
import queue
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import Browser, Page, expect, sync_playwright

from bot import accounts
from bot.agents import desk
from bot.console.server import running
from bot.console.settings import ConsoleSettings
from bot.events import InProcessBus
from bot.store import AuditRepo, Database
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
        launched = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True)
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
