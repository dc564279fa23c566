"""The QA reviewer's review page in headless Chromium (issue 15 item 8): a QA reviewer logs
in, opens a sampled call (constructed in the database, with a real short stereo WAV), the
audio plays (its currentTime advances), a click on a transcript turn moves the player to
the turn's start and highlights it, an automatic flag's button jumps to its moment, and the
scorecard with a non-compliant verdict is submitted: the review and the customer's QA
follow-up callback are in the database.

`waihu console` runs from here on a free 127.0.0.1 port, as in test_console_login.py.
Screenshots qa-01..qa-06 in var/test-artifacts/console/.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import Page, expect, sync_playwright
from sqlalchemy import select

from bot import accounts
from bot.store import Database
from bot.store.models import Callback, QaReview
from tests.e2e.console_process import running_console
from tests.unit.console.qa_helpers import TURNS, sampled_call

pytestmark = pytest.mark.browser
REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "var" / "test-artifacts" / "console"
PASSWORD = "reviewer pass 1"
TIMEOUT_MS = 15_000


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[str, Database, int, str]]:
    url = f"sqlite:///{tmp_path / 'console.db'}"
    db = Database(url)
    db.upgrade()
    cheap = accounts.Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    accounts.create_user(db, cheap, "zhangqa", "qa", PASSWORD, actor="test",
                         display_name="张质检")
    contact_id, call_id = sampled_call(db, tmp_path)
    try:
        yield url, db, contact_id, call_id
    finally:
        db.dispose()


@pytest.fixture
def console(seeded: tuple[str, Database, int, str], tmp_path: Path) -> Iterator[str]:
    with running_console(seeded[0], tmp_path / "console.log") as base:
        yield base


@pytest.fixture
def page() -> Iterator[Page]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make setup installs it)")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                         args=["--autoplay-policy=no-user-gesture-required"])
        context = browser.new_context(viewport={"width": 1280, "height": 900},
                                      locale="zh-CN")
        context.set_default_timeout(TIMEOUT_MS)
        yield context.new_page()
        browser.close()


def current_time(page: Page) -> float:
    return float(page.evaluate("document.getElementById('qa-audio').currentTime"))


def wait_until(page: Page, expression: str, timeout_s: float = TIMEOUT_MS / 1000) -> None:
    """Poll *expression* with evaluate (the pages' CSP refuses the eval that
    wait_for_function uses)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"not true within {timeout_s} s: {expression}"
        page.wait_for_timeout(50)


def test_reviewer_plays_seeks_and_scores_a_non_compliant_sale(
        console: str, page: Page, seeded: tuple[str, Database, int, str]) -> None:
    _, db, contact_id, call_id = seeded
    page.goto(f"{console}/login")
    page.get_by_label("用户名").fill("zhangqa")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录 Log in").click()
    expect(page).to_have_url(f"{console}/qa")
    row = page.locator(f'tr[data-call-id="{call_id}"]')
    expect(row).to_contain_text("待认领 open")
    shot(page, "qa-01-sampled-calls")

    row.get_by_role("button", name="认领 Claim").click()
    expect(page.get_by_role("status")).to_contain_text("Claimed")
    expect(page.locator("#qa-phone")).to_have_text("138****5678")
    expect(page.locator("#qa-turns")).not_to_contain_text("13812345678")
    # metadata loaded: the recording route serves the file to the page
    wait_until(page, "document.getElementById('qa-audio').readyState >= 1")
    shot(page, "qa-02-review-page")

    # play: currentTime advances
    page.evaluate("document.getElementById('qa-audio').play()")
    wait_until(page, "document.getElementById('qa-audio').currentTime > 0.5")
    assert not page.evaluate("document.getElementById('qa-audio').paused")
    page.get_by_role("button", name="只听客户 Customer").click()
    expect(page.locator("body")).to_have_attribute("data-channel", "customer")
    shot(page, "qa-03-playing-customer-channel")

    # a click on the customer's turn (10.5 s) seeks there and highlights it
    customer_turn = page.locator(".qa-turn").nth(1)
    start_s = TURNS[1][2] / 1000
    customer_turn.click()
    wait_until(page, f"document.getElementById('qa-audio').currentTime >= {start_s}")
    assert start_s <= current_time(page) < start_s + 1.5
    expect(customer_turn).to_have_class("qa-turn qa-turn-customer qa-playing")
    shot(page, "qa-04-turn-seek-highlight")

    # the long-silence flag jumps to its moment (the silence starts where the bot stopped)
    flag = page.locator('.qa-flag[data-kind="long_silence"]')
    at_s = float(flag.get_attribute("data-at-ms") or "0") / 1000
    assert 1.0 <= at_s < 10.5
    flag.click()
    wait_until(page, f"Math.abs(document.getElementById('qa-audio').currentTime - {at_s}) < 1.0")
    shot(page, "qa-05-flag-seek")
    page.evaluate("document.getElementById('qa-audio').pause()")

    # the scorecard: everything met but how to cancel -> non-compliant
    form = page.locator("#qa-scorecard")
    for box in form.locator("input[type=checkbox]").all():
        if box.get_attribute("name") not in ("cp.approved_script.cancel_stated",
                                             "instant_fail"):
            box.check()
    form.locator('input[name="comment.approved_script"]').fill("未说明取消方式")
    page.get_by_role("button", name="提交评分 Submit review").click()
    expect(page.get_by_role("status")).to_contain_text("Review submitted")
    expect(page.locator(".qa-reviews")).to_contain_text("不合规 non-compliant")
    shot(page, "qa-06-review-submitted")

    with db.session() as session:
        [review] = session.scalars(select(QaReview).where(QaReview.call_id == call_id))
        assert (review.reviewer, review.compliant) == ("zhangqa", False)
        [callback] = session.scalars(select(Callback).where(
            Callback.contact_id == contact_id, Callback.kind == "qa_followup"))
        assert (callback.call_id, callback.status) == (call_id, "pending")
