"""The console in headless Chromium (Debian's /usr/bin/chromium driven by Playwright), as
its users see it: `waihu console` started from here on a free 127.0.0.1 port, accounts made
with `waihu user add`, an agent who logs in and is refused the administration, an
administrator who adds an account through the form.

Screenshots of each step go to var/test-artifacts/console/ (the tests have no other place
for artifacts); look at them after a change to the pages.
"""

from __future__ import annotations

import asyncio
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import Browser, Page, expect, sync_playwright

from bot import accounts, events
from bot.console.server import running
from bot.console.settings import ConsoleSettings
from bot.events import InProcessBus, call_event
from bot.store import Database
from tests.e2e.console_process import running_console

pytestmark = pytest.mark.browser
REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "var" / "test-artifacts" / "console"
PASSWORDS = {"boss": "boss password 1", "wangfang": "agent password 1",
             "lina": "new agent pass 1"}
TIMEOUT_MS = 15_000


def _waihu(url: str, *argv: str, stdin: str | None = None) -> None:
    done = subprocess.run([sys.executable, "-m", "voice.cli", "--database", url, *argv],
                          input=stdin, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture(scope="module")
def console_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('console') / 'console.db'}"
    _waihu(url, "user", "add", "boss", "--role", "admin", "--display-name", "李主管",
           "--password-stdin", stdin=PASSWORDS["boss"] + "\n")
    _waihu(url, "user", "add", "wangfang", "--role", "agent", "--display-name", "王芳",
           "--sip", "sip:1001@127.0.0.1", "--campaigns", "vas-call-alert", "--weight", "2",
           "--password-stdin", stdin=PASSWORDS["wangfang"] + "\n")
    with running_console(url, tmp_path_factory.getbasetemp() / "console.log") as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make setup installs it)")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


# --- page objects ----------------------------------------------------------------------


class LoginPage:
    def __init__(self, page: Page, base: str) -> None:
        self.page, self.base = page, base

    def open(self) -> LoginPage:
        self.page.goto(f"{self.base}/login")
        expect(self.page.get_by_role("heading", name="登录")).to_be_visible()
        return self

    def log_in(self, username: str, password: str) -> None:
        self.page.get_by_label("用户名").fill(username)
        self.page.get_by_label("密码").fill(password)
        self.page.get_by_role("button", name="登录 Log in").click()

    def refusal(self) -> str:
        alert = self.page.get_by_role("alert")
        expect(alert).to_be_visible()
        return alert.inner_text()


class TopBar:
    def __init__(self, page: Page) -> None:
        self.page = page

    def wait_live(self) -> None:
        """The page's WebSocket said hello (the dot turns green)."""
        expect(self.page.locator("#live.on")).to_be_visible()

    def log_out(self) -> None:
        self.page.get_by_role("button", name="退出 Log out").click()
        expect(self.page.get_by_role("heading", name="登录")).to_be_visible()


class AgentDesk:
    def __init__(self, page: Page) -> None:
        self.page = page

    def wait(self) -> None:
        expect(self.page.get_by_role("heading", name="坐席工作台")).to_be_visible()
        expect(self.page.locator("#agent-state")).to_have_attribute("data-state", "offline")
        expect(self.page.locator("#offer-empty")).to_be_visible()


class AdminPage:
    def __init__(self, page: Page, base: str) -> None:
        self.page, self.base = page, base

    def open(self) -> AdminPage:
        self.page.goto(f"{self.base}/admin")
        expect(self.page.get_by_role("heading", name="系统管理")).to_be_visible()
        return self

    def add_agent(self, username: str, display: str, password: str, sip: str,
                  campaigns: str, weight: int) -> None:
        form = self.page.locator("#add-user")
        form.get_by_label("用户名").fill(username)
        form.get_by_label("显示名").fill(display)
        form.get_by_label("角色").select_option("agent")
        form.get_by_label("初始密码").fill(password)
        expect(form.locator("#agent-fields")).to_be_visible()
        form.get_by_label("SIP 话机").fill(sip)
        form.get_by_label("服务活动").fill(campaigns)
        form.get_by_label("权重").fill(str(weight))
        form.get_by_role("button", name="创建 Create").click()


# --- the journey -------------------------------------------------------------------------


def test_an_agent_logs_in_and_is_refused_the_administration(page: Page,
                                                             console_url: str) -> None:
    login = LoginPage(page, console_url).open()
    shot(page, "01-login")
    login.log_in("wangfang", "not my password")
    assert "用户名或密码错误" in login.refusal()
    shot(page, "02-login-refused")

    login.log_in("wangfang", PASSWORDS["wangfang"])
    expect(page).to_have_url(f"{console_url}/agent")
    AgentDesk(page).wait()
    TopBar(page).wait_live()
    expect(page.get_by_text("sip:1001@127.0.0.1")).to_be_visible()
    expect(page.get_by_role("link", name="系统管理 Admin")).to_have_count(0)
    shot(page, "03-agent-desk")

    response = page.goto(f"{console_url}/admin")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", name="无权访问")).to_be_visible()
    shot(page, "04-agent-refused-admin")
    response = page.goto(f"{console_url}/supervisor")
    assert response is not None and response.status == 403

    page.goto(f"{console_url}/agent")
    TopBar(page).log_out()
    response = page.goto(f"{console_url}/agent")
    assert response is not None and page.url == f"{console_url}/login"


def test_an_administrator_adds_an_agent_who_then_logs_in(page: Page, browser: Browser,
                                                         console_url: str) -> None:
    LoginPage(page, console_url).open().log_in("boss", PASSWORDS["boss"])
    expect(page).to_have_url(f"{console_url}/admin")
    admin = AdminPage(page, console_url)
    TopBar(page).wait_live()
    expect(page.locator('#users tr[data-user="wangfang"]')).to_be_visible()
    shot(page, "05-admin")

    admin.add_agent("lina", "李娜", PASSWORDS["lina"], "sip:1002@127.0.0.1",
                    "vas-call-alert, survey-2030", 3)
    expect(page.get_by_role("status")).to_contain_text("lina")
    row = page.locator('#users tr[data-user="lina"]')
    expect(row).to_contain_text("李娜")
    expect(row).to_contain_text("sip:1002@127.0.0.1")
    expect(page.locator("table").last).to_contain_text("user.created")
    shot(page, "06-admin-user-added")

    page.goto(f"{console_url}/supervisor")
    expect(page.get_by_text("李娜")).to_be_visible()
    TopBar(page).wait_live()
    shot(page, "07-supervisor")

    other = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    try:
        agent = other.new_page()
        agent.set_default_timeout(TIMEOUT_MS)
        LoginPage(agent, console_url).open().log_in("lina", PASSWORDS["lina"])
        expect(agent).to_have_url(f"{console_url}/agent")
        AgentDesk(agent).wait()
        expect(agent.get_by_text("sip:1002@127.0.0.1")).to_be_visible()
        expect(agent.get_by_text("survey-2030")).to_be_visible()
        shot(agent, "08-new-agent-desk")
    finally:
        other.close()


# --- live events on the supervisors' page ------------------------------------------------


@pytest.fixture
def live_console(tmp_path: Path) -> Iterator[tuple[str, InProcessBus, asyncio.AbstractEventLoop]]:
    """The console in this process (a thread of its own), so that the test can publish call
    events on its bus as a gateway would."""
    db = Database(f"sqlite:///{tmp_path / 'live.db'}")
    db.upgrade()
    cheap = accounts.Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    accounts.create_user(db, cheap, "lead", "supervisor", PASSWORDS["boss"], actor="test")
    bus = InProcessBus()
    loop = asyncio.new_event_loop()
    started: queue.Queue[str] = queue.Queue()
    stop = asyncio.Event()

    async def serve() -> None:
        async with running(ConsoleSettings(port=0), db, bus, passwords=cheap) as url:
            started.put(url)
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    try:
        yield started.get(timeout=30), bus, loop
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
        loop.close()
        db.dispose()


def test_the_supervisor_sees_calls_live_with_numbers_masked(
        page: Page, live_console: tuple[str, InProcessBus, asyncio.AbstractEventLoop]) -> None:
    url, bus, loop = live_console
    LoginPage(page, url).open().log_in("lead", PASSWORDS["boss"])
    expect(page).to_have_url(f"{url}/supervisor")
    TopBar(page).wait_live()
    at = datetime.now(UTC)
    for event in (call_event(events.CALL_DIALLED, "c0ffee00-1", at, campaign="vas-call-alert",
                             phone="13812345678"),
                  call_event(events.CALL_ANSWERED, "c0ffee00-1", at),
                  call_event(events.TURN_CUSTOMER, "c0ffee00-1", at, text="转人工"),
                  call_event(events.CALL_ENDED, "c0ffee00-1", at, outcome="escalated")):
        loop.call_soon_threadsafe(bus.publish, event)
    rows = page.locator("#events li")
    expect(rows).to_have_count(3)  # the customer's words are not on the wall
    expect(rows.first).to_contain_text("结束 Ended")
    expect(rows.last).to_contain_text("138****5678")
    assert "13812345678" not in page.content()
    shot(page, "09-supervisor-live")
