"""The supervisors' live wall in headless Chromium while a simulated campaign runs (issue 15
items 1 and 8).

`waihu console` runs in its own process (tests/e2e/console_process.py); this test process
plays the gateway's part: the real dialer claims the campaign's contacts under leases, and
each call is a text-mode call (bot/textcall.py: its turns published on its own event bus and
stored by the transcript writer) with a scripted dialogue standing in for Rasa and the
action server (it notes each turn's intent and the flow's stage in the database as the
actions do).  The console sees none of this process's events: the wall follows the calls
through the database, as it does for gateways on other machines.

The supervisor starts the campaign from the wall, watches two calls appear with their
stage, ticking duration, last intent and masked last words, an escalation wait, the day's
figures, an agent away too long in red, pauses the campaign, and sees a call disappear
when it ends.  Screenshots wall-01..wall-03 in var/test-artifacts/console/.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import Page, expect, sync_playwright

from bot import accounts, callrecord, channel, events
from bot.agents import desk
from bot.agents.presence import PresenceEvent
from bot.campaigns.definition import load_definition
from bot.campaigns.dialer import Dialer
from bot.campaigns.registry import save_campaign
from bot.events import InProcessBus
from bot.store import CallRepo, CampaignRepo, ContactRepo, Database, EscalationRepo
from bot.textcall import TextCall
from tests.e2e.console_process import running_console

pytestmark = pytest.mark.browser
REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "var" / "test-artifacts" / "console"
PASSWORD = "lead pass 1"
CAMPAIGN = "wall-demo"
PHONES = ("13812345678", "13987654321")
TIMEOUT_MS = 15_000
T = TypeVar("T")
expect.set_options(timeout=TIMEOUT_MS)  # the figures are read again every few seconds

# What the scripted dialogue answers each customer message with: (intent, next stage,
# the bot's reply).
SCRIPT = {
    channel.CALL_STARTED: (None, "identity", "您好，请问是王先生吗？"),
    "是我": ("affirm", "permission", "现在方便占用您一分钟吗？"),
    "你们是哪里": ("ask_who", "identity", "我们是客服中心。请问是王女士吗？"),
    "我要投诉你们，我的电话13987654321": ("complain", "permission", "正在为您转接人工。"),
}


class ScriptedDialogue:
    """Rasa and the action server, as far as the wall can see them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def send(self, sender: str, message: str,
                   metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        if message not in SCRIPT:
            return []
        intent, stage, reply = SCRIPT[message]
        with self.db.session() as session:
            if intent is not None:
                callrecord.note_intent(session, sender, intent, 0.95)
            CallRepo(session).update_call(sender, stage=stage)
        answer: dict[str, Any] = {"text": reply}
        if intent is not None:
            answer["custom"] = {"classified": {"intent": intent, "confidence": 0.95}}
        return [answer]


class Gateway:
    """This test's stand-in gateway: an event loop in a thread of its own (the browser's
    driver owns this thread's), the dialer and the text calls."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.bus = InProcessBus()
        self.dialer = Dialer(db, "wall-test", lease_s=600)
        self.client = ScriptedDialogue(db)
        self.calls: dict[str, TextCall] = {}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(30)

    def dial(self) -> dict[str, str]:
        """Claim the due contacts; answer each: phone -> call id."""
        async def work() -> dict[str, str]:
            placed = {}
            for job in self.dialer.claim(datetime.now(UTC), 5):
                call = TextCall.connect(self.client, self.db, job.call_id, "answered",
                                        events=self.bus)
                assert call is not None
                await call.start()
                self.calls[job.call_id] = call
                placed[job.phone] = job.call_id
            return placed
        return self.run(work())

    def say(self, call_id: str, text: str) -> None:
        self.run(self.calls[call_id].say(text))

    def escalate(self, call_id: str) -> None:
        with self.db.session() as session:
            attempt = CallRepo(session).get_attempt(call_id)
            assert attempt is not None
            escalation = EscalationRepo(session).add(call_id, attempt.campaign_id,
                                                     attempt.contact_id, "complaint", {})
            escalation.status = "waiting"
        self.bus.publish(events.call_event(events.ESCALATION_REQUESTED, call_id,
                                           datetime.now(UTC), reason="complaint"))

    def hang_up(self, call_id: str) -> None:
        self.run(self.calls[call_id].hang_up())
        self.dialer.complete(call_id, datetime.now(UTC))

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[str, Database]]:
    url = f"sqlite:///{tmp_path / 'console.db'}"
    db = Database(url)
    db.upgrade()
    cheap = accounts.Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    accounts.create_user(db, cheap, "wanglead", "supervisor", PASSWORD, actor="test",
                         display_name="王组长")
    agent = accounts.create_user(db, cheap, "liagent", "agent", PASSWORD, actor="test",
                                 display_name="李坐席",
                                 agent=accounts.AgentOptions("sip:1001@127.0.0.1",
                                                             (CAMPAIGN,), 1))
    now = datetime.now(UTC)
    with db.session() as session:  # away for 20 minutes: past the 15-minute limit
        desk.change_presence(session, agent.id, PresenceEvent("log_in"),
                             now - timedelta(minutes=21))
        desk.change_presence(session, agent.id, PresenceEvent("go_away", reason="meal"),
                             now - timedelta(minutes=20))
    defn = load_definition(REPO / "examples" / "campaigns" / "marketing.yml")
    defn = defn.model_copy(update={
        "name": CAMPAIGN,
        "schedule": defn.schedule.model_copy(update={"windows": ["00:00-23:59"],
                                                     "start_date": None,
                                                     "end_date": None})})
    campaign_id = save_campaign(db, defn)
    with db.session() as session:
        assert CampaignRepo(session).by_name(CAMPAIGN) is not None
        for phone, name in zip(PHONES, ("王先生", "王女士"), strict=True):
            ContactRepo(session).add(campaign_id, phone, name=name)
    try:
        yield url, db
    finally:
        db.dispose()


@pytest.fixture
def console(seeded: tuple[str, Database], tmp_path: Path) -> Iterator[str]:
    with running_console(seeded[0], tmp_path / "console.log") as base:
        yield base


@pytest.fixture
def gateway(seeded: tuple[str, Database]) -> Iterator[Gateway]:
    made = Gateway(seeded[1])
    try:
        yield made
    finally:
        made.stop()


@pytest.fixture
def page() -> Iterator[Page]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make setup installs it)")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        context = browser.new_context(viewport={"width": 1440, "height": 1000},
                                      locale="zh-CN")
        context.set_default_timeout(TIMEOUT_MS)
        yield context.new_page()
        browser.close()


def test_the_wall_follows_a_running_campaign(console: str, page: Page,
                                             gateway: Gateway) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{console}/login")
    page.get_by_label("用户名").fill("wanglead")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录 Log in").click()
    expect(page).to_have_url(f"{console}/supervisor")
    expect(page.locator("#live")).to_have_class("live on")  # the socket is open
    campaign = page.locator(f'#wall-campaigns tr[data-campaign="{CAMPAIGN}"]')
    expect(campaign).to_contain_text("草稿 draft")
    expect(page.locator("#wall-calls-empty")).to_be_visible()
    away = page.locator("#wall-agents tr[data-agent-id]")
    expect(away).to_have_class("wall-over")  # away 20 min > 15 min
    shot(page, "wall-01-before-the-campaign")

    campaign.get_by_role("button", name="启动 Start").click()
    expect(campaign).to_contain_text("进行中 running")
    notice = page.locator("#wall-notice")
    expect(notice).to_contain_text("running")
    # the start's note (no second-confirmation campaign yet) is a warning, not a success
    expect(notice).to_contain_text("does not exist yet")
    expect(notice).to_have_class(re.compile(r"\bwall-notice-warn\b"))

    placed = gateway.dial()
    assert sorted(placed) == sorted(PHONES)
    first, second = placed[PHONES[0]], placed[PHONES[1]]
    rows = page.locator("#wall-calls tbody tr")
    expect(rows).to_have_count(2)
    one = page.locator(f'#wall-calls tr[data-key="{first}"]')
    two = page.locator(f'#wall-calls tr[data-key="{second}"]')
    expect(one).to_contain_text("核实身份 identity")

    gateway.say(first, "是我")
    expect(one).to_contain_text("征求同意 permission")
    expect(one.locator(".wall-intent")).to_have_text("affirm")
    expect(one.locator(".wall-words")).to_have_text("是我")
    gateway.say(second, "你们是哪里")
    gateway.say(second, "我要投诉你们，我的电话13987654321")
    expect(two.locator(".wall-intent")).to_have_text("complain")
    expect(two.locator(".wall-words")).to_have_text("我要投诉你们，我的电话***********")
    expect(two).to_contain_text("139****4321")  # the number column, masked
    gateway.escalate(second)
    expect(page.locator("#wall-escalations tbody tr")).to_have_count(1)
    expect(page.locator("#wall-escalations")).to_contain_text("投诉 complaint")
    expect(two.locator(".wall-waiting")).to_have_text("等待人工 waiting")
    # the figures of the day follow (read at most every few seconds)
    expect(campaign.locator(".wall-dialled")).to_have_text("2")
    expect(campaign.locator(".wall-connected")).to_have_text("2")
    expect(campaign.locator(".wall-escalations")).to_have_text("1")
    # the durations tick in the browser
    timer = one.locator(".wall-timer")
    expect(timer).to_have_text(re.compile(r"^0:[0-5]\d$"))  # under a minute
    before = timer.inner_text()
    page.wait_for_timeout(2100)
    assert timer.inner_text() != before
    body = page.locator("body").inner_text()
    assert "13812345678" not in body and "13987654321" not in body
    shot(page, "wall-02-calls-in-progress")

    campaign.get_by_role("button", name="暂停 Pause").click()
    expect(campaign).to_contain_text("已暂停 paused")
    gateway.hang_up(first)
    expect(rows).to_have_count(1)
    expect(one).to_have_count(0)
    expect(two).to_be_visible()
    shot(page, "wall-03-paused-one-call-ended")
    content = page.content()
    assert "13812345678" not in content and "13987654321" not in content
    assert errors == []  # no script error on the wall
