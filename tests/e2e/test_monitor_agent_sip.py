"""A supervisor whispering to an agent, then barging in, on a call the agent took through the
desk, over real SIP on 127.0.0.1, with the agent's desk open in headless Chromium.

Three independent Debian baresip phones: the customer (a 1000 Hz tone after the bot's
transfer line), the agent (2000 Hz) and the supervisor (3000 Hz).  The gateway hands the
call to the desk (a scripted dialogue asks for a person at once); the test stands in for
the desk's and the wall's buttons with their functions (bot/agents/desk.py, bot/monitoring.py)
while the agent's desk (`waihu console`, its own process) shows the coaching banner.  The
whisper must reach the agent and not the customer; the barge both, and the call's recording.
Screenshot monitor-04-agent-coached in var/test-artifacts/console/.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from playwright.async_api import async_playwright, expect
from sqlalchemy import select

from bot import accounts, events
from bot.agents import desk
from bot.agents.presence import PresenceEvent
from bot.events import CallEvent, InProcessBus
from bot.store import Database, in_write
from bot.store.models import MonitorSession
from tests.e2e.console_process import running_console
from tests.e2e.sip_calls import (
    NOW,
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
)
from tests.e2e.test_console_wall import ARTIFACTS, CHROMIUM
from tests.e2e.test_desk_offer_sip import ringing_offer
from tests.e2e.test_monitor_sip import as_console
from tests.sip_peers import tone
from voice.gateway import Gateway, GatewayConfig
from voice.session import SessionConfig
from voice.stack import VoiceParts

pytestmark = [pytest.mark.sip, pytest.mark.browser]
PASSWORD = "correct horse 1"


def accept(db: Database, offer_id: int) -> None:
    in_write(db, lambda s: desk.answer_offer(s, offer_id, "accepted", datetime.now(UTC)))


async def test_a_supervisor_whispers_to_the_agent_then_barges_through_real_sip(
        db_url: str, audio: dict[str, Path], peers: Peers, parts: VoiceParts,
        tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make setup installs it)")
    db = Database(db_url)
    phone = "13800000013"
    customer = await peers.phone(phone, compose_wav(
        tmp_path / "customer.wav", [(4.0, tone(1000, 40.0, 12000))], 45.0))
    agent_phone = await peers.phone("agent", audio["agent_tone"])  # 2000 Hz, 25 s
    boss_phone = await peers.phone("boss", compose_wav(
        tmp_path / "boss.wav", [(0.0, tone(3000, 25.0, 12000))], 25.0))
    dialer = campaign(db, "monitor-desk", f"sip:{{number}}@127.0.0.1:{customer.sip_port}",
                      {phone: "吴九"})
    cheap = accounts.Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))

    def accounts_made() -> tuple[accounts.UserInfo, accounts.UserInfo]:
        agent = accounts.create_user(
            db, cheap, "desk_coached", "agent", PASSWORD, actor="test",
            agent=accounts.AgentOptions(agent_phone.uri, ("monitor-desk",), 1))
        boss = accounts.create_user(db, cheap, "lead_coach", "supervisor", PASSWORD,
                                    actor="test", agent=accounts.AgentOptions(boss_phone.uri))
        in_write(db, lambda s: desk.change_presence(s, agent.id, PresenceEvent("log_in"),
                                                    datetime.now(UTC)))
        return agent, boss
    agent, boss = await asyncio.to_thread(accounts_made)
    bus = InProcessBus()
    seen: list[CallEvent] = []
    bus.subscribe(seen.append)
    (job,) = claim_all(dialer, 1)
    gw = Gateway(db, parts.telephony, parts.asr, parts.tts, Scripted(),
                 GatewayConfig(gateway_id="monitor-desk", capacity=1, ring_timeout_s=15.0,
                               session=SessionConfig(recordings_dir=tmp_path / "recordings",
                                                     max_call_s=90.0, agent_answer_s=10.0)),
                 events=bus)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    expect.set_options(timeout=15_000)
    with running_console(db_url, tmp_path / "console.log") as base:
        placing = asyncio.create_task(gw.place_call(job, NOW))
        async with async_playwright() as driver:
            browser = await driver.chromium.launch(executable_path=str(CHROMIUM),
                                                   headless=True)
            try:
                page = await (await browser.new_context(
                    viewport={"width": 1440, "height": 1000}, locale="zh-CN")).new_page()
                await page.goto(f"{base}/login")
                await page.get_by_label("用户名").fill("desk_coached")
                await page.get_by_label("密码").fill(PASSWORD)
                await page.get_by_role("button", name="登录 Log in").click()
                await expect(page).to_have_url(f"{base}/agent")
                banner = page.locator("#coaching-banner")
                await expect(banner).to_be_hidden()

                await first(seen, events.ESCALATION_OFFERED, 25.0)
                offer_id = await asyncio.to_thread(ringing_offer, db, agent.id)
                assert offer_id is not None
                await asyncio.to_thread(accept, db, offer_id)
                await first(seen, events.CALL_BRIDGED, 15.0)
                await asyncio.sleep(1.0)
                await asyncio.to_thread(as_console, db, boss, "start", job.call_id, "whisper")
                started = await first(seen, events.MONITOR_STARTED, 15.0)
                assert started.data["heard_by"] == "agent"
                await expect(banner).to_be_visible()
                await expect(banner).to_contain_text("whispering to you")
                await page.screenshot(path=str(ARTIFACTS / "monitor-04-agent-coached.png"),
                                      full_page=True)
                await asyncio.sleep(4.0)  # the supervisor coaches the agent
                await asyncio.to_thread(as_console, db, boss, "mode", job.call_id, "barge")
                barged = await first(seen, events.MONITOR_MODE, 5.0)
                assert barged.data["heard_by"] == "customer+agent"
                await expect(banner).to_contain_text("barged in")
                await asyncio.sleep(4.0)
                await asyncio.to_thread(as_console, db, boss, "stop", job.call_id)
                ended = await first(seen, events.MONITOR_ENDED, 5.0)
                await expect(banner).to_be_hidden()
            finally:
                await browser.close()
                await boss_phone.wait_event("CALL_CLOSED", timeout=10)
                await customer.command("hangup")
                report = await asyncio.wait_for(placing, 30.0)
    assert report.error is None and report.session is not None
    assert report.session.ended_by == "bridge_ended"

    by_boss = boss_phone.heard_pcm()  # the customer and the agent
    print(f"supervisor heard 1000 Hz {level(by_boss, 1000):.0f}, 2000 Hz "
          f"{level(by_boss, 2000):.0f}, 500 Hz {level(by_boss, 500):.0f}")
    assert level(by_boss, 1000) > 10 * max(level(by_boss, 500), 1.0)
    assert level(by_boss, 2000) > 10 * max(level(by_boss, 500), 1.0)
    by_agent = agent_phone.heard_pcm()  # the customer, and the supervisor's whisper
    print(f"agent heard 3000 Hz {level(by_agent, 3000):.0f}, 500 Hz {level(by_agent, 500):.0f}")
    assert level(by_agent, 3000) > 10 * max(level(by_agent, 500), 1.0)

    # The customer's side of the recording: the agent throughout, the supervisor only once
    # barging (a whisper is not heard by the customer).
    _left, right = stereo_channels(recording_of(db, job.call_id))
    whisper = span(right, started.offset_ms + 700, barged.offset_ms - 100)
    barge = span(right, barged.offset_ms + 700, ended.offset_ms - 200)
    print(f"customer side 3000 Hz: whisper {level(whisper, 3000):.0f}, "
          f"barge {level(barge, 3000):.0f}; 2000 Hz (agent) {level(whisper, 2000):.0f}")
    assert len(whisper) > 2 * 16000 and len(barge) > 2 * 16000
    assert level(barge, 3000) > 10 * max(level(whisper, 3000), 1.0)
    assert level(whisper, 2000) > 10 * max(level(whisper, 3000), 1.0)
    with db.session() as session:
        row = session.scalar(select(MonitorSession).where(
            MonitorSession.call_id == job.call_id))
        assert row is not None and (row.end_reason, row.heard_by) == \
            ("stopped", "customer+agent")
