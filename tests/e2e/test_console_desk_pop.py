"""The offer's pop drawn from its WebSocket message, in headless Chromium (Debian's, through
Playwright; the console and its fixtures as test_console_desk.py has them):

- the chosen agent's desk shows the offered call -- customer, masked number, campaign,
  reason, verification, what the bot collected, the transcript so far -- without asking
  the console for /agent again, the same as the server draws it, and its buttons work;
- a presence change that arrives while the desk is reloading its live part is not lost:
  the reload that comes back stale is followed by another.

Screenshots go to var/test-artifacts/console/ (30-33).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Browser, Page, Request, Route, expect

from bot import accounts
from bot.agents import desk, handover
from bot.store import CallRepo, Database
from bot.store.models import Escalation
from tests.e2e.test_console_desk import (  # noqa: F401 - fixtures used by name
    PHONE,
    Desk,
    Frames,
    browser,
    console,
    log_in,
    new_page,
    shot,
)
from tests.unit.agents.seeding import escalate
from tests.unit.console.desk_helpers import CAMPAIGN

pytestmark = pytest.mark.browser


def _agent_id(db: Database) -> int:
    return next(u.id for u in accounts.list_users(db) if u.username == "wangfang")


def _available(page: Page, base: str) -> Page:
    log_in(page, base, "wangfang")
    Desk(page).press("开始接听 Start taking calls")
    Desk(page).expect_state("available")
    return page


def test_the_pop_is_drawn_from_the_message_without_fetching_the_desk(
        browser: Browser, console: tuple[str, Database]) -> None:  # noqa: F811
    base, db = console
    page = _available(new_page(browser), base)
    fetched: list[str] = []

    def note(request: Request) -> None:
        if request.method == "GET" and urlparse(request.url).path == "/agent":
            fetched.append(request.resource_type)
    page.on("request", note)

    escalation = escalate(db, PHONE, CAMPAIGN, datetime.now(UTC))
    call_id = escalation.call_id
    with db.session() as session:
        stored = session.get(Escalation, escalation.id)
        assert stored is not None
        stored.context = {"stage_before": "pitch", "pitched": True, "verified": True}
        CallRepo(session).add_turn(call_id, "customer", "我的号码是13812345678，我要找人工")
    with db.session(write=True) as session:
        handed = handover.open_handover(session, call_id, "request_human")
        assert handed is not None
        seen = handover.offer_next(session, handed.escalation_id, datetime.now(UTC))
        assert seen is not None and seen.agent_id == _agent_id(db)

    area, facts = page.locator("#offer-area"), page.locator("#call-facts")
    Desk(page).expect_state("offered")
    expect(area).to_have_attribute("data-offer", str(seen.offer_id))
    expect(area).to_have_class(re.compile(r"\boffer-ringing\b"))
    expect(facts).to_contain_text("王五")
    expect(facts).to_contain_text("138****5678")
    expect(facts).to_contain_text(CAMPAIGN)
    expect(facts).to_contain_text("客户要求人工 asked for a person")
    expect(facts).to_contain_text("已核实 yes")
    expect(facts).not_to_contain_text("未核实")
    expect(page.locator("#collected")).to_contain_text("介绍产品 pitch")
    expect(page.locator("#transcript li.turn")).to_have_text(
        [re.compile("我的号码是138\\*\\*\\*\\*5678，我要找人工")])
    expect(page.locator("#ringing")).to_be_visible()
    expect(page).to_have_title(re.compile(r"^【来电 Call offered】王五 · 坐席工作台"))
    expect(page.locator("body")).to_have_attribute("data-chimed-offer", str(seen.offer_id))
    shot(page, "30-pop-from-the-message")
    assert fetched == [], f"the desk asked for /agent again: {fetched}"
    assert PHONE not in page.content()

    # What the script drew is what the server draws for the same desk.
    drawn = facts.inner_text(), page.locator("#call-pop").inner_text()
    drawn_title = page.title()
    page.reload()
    expect(page.locator("#live.on")).to_be_visible()
    assert (facts.inner_text(), page.locator("#call-pop").inner_text()) == drawn
    assert page.title() == drawn_title

    # Declined elsewhere (a reload of the desk), then another offer drawn by the script,
    # taken with its drawn button: the form posts to that offer with the session's token.
    with db.session(write=True) as session:
        desk.answer_offer(session, seen.offer_id, "declined", datetime.now(UTC))
    Desk(page).expect_state("available")
    fetched.clear()
    again = escalate(db, "13900001111", CAMPAIGN, datetime.now(UTC))
    with db.session(write=True) as session:
        handed = handover.open_handover(session, again.call_id, "complaint")
        assert handed is not None
        second = handover.offer_next(session, handed.escalation_id, datetime.now(UTC))
        assert second is not None
    expect(page.locator("#offer-area")).to_have_attribute("data-offer", str(second.offer_id))
    expect(facts).to_contain_text("139****1111")
    expect(facts.locator("[data-verified]")).to_have_text(["—"])  # verification unknown
    expect(page.locator("#collected-none")).to_be_visible()
    expect(page.locator("#transcript li.turn")).to_have_count(0)
    assert fetched == []
    page.get_by_role("button", name="接听 Take over").click()
    Desk(page).expect_state("on_call")
    with db.session() as session:
        assert handover.read_offer(session, second.offer_id).outcome == "accepted"
    shot(page, "31-taken-from-the-drawn-pop")


def _wait(page: Page, done: object, what: str) -> None:
    for _ in range(200):
        if callable(done) and done():
            return
        page.wait_for_timeout(25)  # Playwright's events (routes, frames) run meanwhile
    raise AssertionError(f"timed out waiting for {what}")


def test_a_change_during_a_reload_of_the_desk_is_not_lost(
        browser: Browser, console: tuple[str, Database]) -> None:  # noqa: F811
    base, db = console
    agent_id = _agent_id(db)
    page = new_page(browser)
    frames = Frames(page)  # before the page opens its socket
    _available(page, base)
    escalation = escalate(db, PHONE, CAMPAIGN, datetime.now(UTC))
    with db.session(write=True) as session:
        made = desk.offer_next(session, escalation.id, datetime.now(UTC))
        assert made.offer is not None
    Desk(page).expect_state("offered")

    # The desk's reload of its live part is held, and answered with the desk as it was
    # when it was asked for (on the call), after the next change reached the page.
    held: list[tuple[Route, object]] = []

    def hold(route: Route) -> None:
        if route.request.resource_type != "fetch":
            route.continue_()
            return
        held.append((route, route.fetch()))
    page.route(re.compile(r"/agent$"), hold)
    with db.session(write=True) as session:
        desk.answer_offer(session, made.offer.id, "accepted", datetime.now(UTC))
    _wait(page, lambda: len(held) == 1, "the desk's reload on the call")
    with db.session(write=True) as session:  # the customer hangs up: after-call work
        desk.end_call(session, agent_id, escalation.call_id, datetime.now(UTC))
    _wait(page, lambda: any(m["state"] == "wrap_up" for m in frames.messages("presence")),
          "the wrap-up message")
    route, stale = held[0]
    route.fulfill(response=stale)  # type: ignore[arg-type]
    page.unroute(re.compile(r"/agent$"))
    Desk(page).expect_state("wrap_up")  # reloaded again: the change was kept
    expect(page.locator("#disposition-form")).to_be_visible()
    shot(page, "32-change-during-a-reload")
