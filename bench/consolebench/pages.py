"""The agents' desks in one headless Chromium (Debian's, driven by Playwright): a browser
context per agent (its own session cookie), logged in, on /agent, available, with probe.js
noting what appears on the page and when."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Page, Playwright

from bench.consolebench.measure import PageNotes
from bench.consolebench.world import PASSWORD, Agent

CHROMIUM = Path("/usr/bin/chromium")
PROBE = (Path(__file__).with_name("probe.js")).read_text(encoding="utf-8")
TIMEOUT_MS = 60_000
LOGINS_AT_ONCE = 5  # the console hashes each password (argon2): a few at a time
CLOCK = "performance.timeOrigin + performance.now()"


@dataclass
class Desk:
    agent: Agent
    context: BrowserContext
    page: Page


async def launch(driver: Playwright) -> Browser:
    # No click precedes an offer: let the pop's sound play without one (as the e2e tests).
    return await driver.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                        args=["--autoplay-policy=no-user-gesture-required"])


async def open_desk(browser: Browser, base: str, agent: Agent) -> Desk:
    context = await browser.new_context(viewport={"width": 1280, "height": 860},
                                        locale="zh-CN", timezone_id="Asia/Shanghai")
    context.set_default_timeout(TIMEOUT_MS)
    await context.add_init_script(script=PROBE)
    page = await context.new_page()
    await page.goto(f"{base}/login")
    await page.get_by_label("用户名").fill(agent.username)
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录 Log in").click()
    await page.wait_for_url(f"{base}/agent")
    await page.locator("#live.on").wait_for()  # the desk's WebSocket said hello
    await page.get_by_role("button", name="开始接听 Start taking calls").click()
    await page.locator('#agent-state[data-state="available"]').wait_for()
    await page.locator("#live.on").wait_for()  # the redrawn page's socket is open again
    return Desk(agent, context, page)


async def open_desks(browser: Browser, base: str, agents: list[Agent]) -> list[Desk]:
    """Every agent's desk, available; in the agents' order (equal_share then offers the
    longest idle first)."""
    desks: list[Desk] = []
    for start in range(0, len(agents), LOGINS_AT_ONCE):
        batch = agents[start:start + LOGINS_AT_ONCE]
        desks.extend(await asyncio.gather(*(open_desk(browser, base, a) for a in batch)))
    return desks


async def notes_of(desk: Desk) -> PageNotes:
    notes: PageNotes = await desk.page.evaluate("window.__consoleBench")
    return notes


async def clock_reading(desk: Desk) -> tuple[float, float, float]:
    """(bench ms before, page ms, bench ms after): the page's clock against the bench's."""
    before = time.time() * 1000
    page = float(await desk.page.evaluate(CLOCK))
    return before, page, time.time() * 1000


async def all_available(desks: list[Desk]) -> bool:
    states = await asyncio.gather(*(d.page.locator("#agent-state").get_attribute("data-state")
                                    for d in desks))
    return all(state == "available" for state in states)
