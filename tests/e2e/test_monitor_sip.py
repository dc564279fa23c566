"""A supervisor listening to a live call, then barging in, over real SIP on 127.0.0.1.

The gateway calls a Debian baresip phone as the customer (a 1000 Hz tone as its voice) with
a dialogue stand-in that keeps the call going; the supervisor is a console account whose
phone (set as an agent's is, a SIP address in their profile) is a second, independent
Debian baresip (auto-answer, a 2000 Hz tone as its voice, recording what it hears).  The
test stands in for the console's buttons with the same functions (bot/monitoring.py): it
asks to listen, switches to barge, then stops.  The gateway (voice/call/monitor.py) must
dial the supervisor's phone, which then hears the call unheard; once barging, the
customer hears the supervisor and the call's recording holds the supervisor's voice on the
customer's side; each step is an event on the call and a row in the audit log.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from bot import accounts, events, monitoring
from bot.events import CallEvent, InProcessBus
from bot.store import Database, in_write
from bot.store.models import MonitorSession
from bot.store.repos.audit import AuditRepo
from tests.e2e.sip_calls import (
    NOW,
    Peers,
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
from tests.sip_peers import tone
from voice.gateway import Gateway, GatewayConfig
from voice.session import SessionConfig
from voice.stack import VoiceParts

pytestmark = [pytest.mark.sip]
LISTEN = {"custom": {"listen": {"expect": "free", "timeout_s": 30}}}
CLASSIFIED = {"custom": {"classified": {"intent": "nlu_fallback", "confidence": 0.5}}}


class Chatty:
    """A dialogue stand-in: a greeting, then a short 嗯 to whatever is heard, so the call
    lasts until the customer hangs up."""

    async def send(self, sender: str, message: str,
                   metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        if message == "/call_started":
            return [{"text": "您好"}, LISTEN]
        return [{"text": "嗯"}, LISTEN, CLASSIFIED]


def as_console(db: Database, user: accounts.UserInfo, work: str, call_id: str,
               arg: str = "") -> monitoring.MonitorSeen:
    """What the wall's buttons do (bot/console/monitor_pages.py), by the same functions."""
    now = datetime.now(UTC)

    def run(session: Any) -> monitoring.MonitorSeen:
        if work == "start":
            return monitoring.request(session, user, call_id, arg, now)
        open_ = monitoring.open_of_supervisor(session, user.id)
        assert open_ is not None
        if work == "mode":
            return monitoring.change_mode(session, user, open_.session_id, arg, now)
        return monitoring.stop(session, user, open_.session_id, now)
    return in_write(db, run)


async def test_a_supervisor_listens_then_barges_through_real_sip(
        db_url: str, audio: dict[str, Path], peers: Peers, parts: VoiceParts,
        tmp_path: Path) -> None:
    db = Database(db_url)
    phone = "13800000011"
    customer_wav = compose_wav(tmp_path / "customer.wav", [(1.0, tone(1000, 44.0, 12000))],
                               45.0)
    customer = await peers.phone(phone, customer_wav)
    boss_phone = await peers.phone("boss", audio["agent_tone"])  # 2000 Hz, 25 s
    dialer = campaign(db, "monitor-sip", f"sip:{{number}}@127.0.0.1:{customer.sip_port}",
                      {phone: "孙七"})
    cheap = accounts.Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    boss = await asyncio.to_thread(
        accounts.create_user, db, cheap, "lead_monitor", "supervisor", "correct horse 1",
        actor="test", agent=accounts.AgentOptions(boss_phone.uri))
    bus = InProcessBus()
    seen: list[CallEvent] = []
    bus.subscribe(seen.append)
    (job,) = claim_all(dialer, 1)
    gw = Gateway(db, parts.telephony, parts.asr, parts.tts, Chatty(),
                 GatewayConfig(gateway_id="monitor-sip", capacity=1, ring_timeout_s=15.0,
                               session=SessionConfig(recordings_dir=tmp_path / "recordings",
                                                     max_call_s=60.0, agent_answer_s=10.0)),
                 events=bus)
    placing = asyncio.create_task(gw.place_call(job, NOW))
    try:
        await first(seen, events.CALL_ANSWERED, 25.0)
        await asyncio.to_thread(as_console, db, boss, "start", job.call_id, "listen")
        started = await first(seen, events.MONITOR_STARTED, 15.0)
        await boss_phone.wait_event("CALL_ESTABLISHED", timeout=5)
        assert started.data["mode"] == "listen" and started.data["heard_by"] == "nobody"
        await asyncio.sleep(4.0)  # listening: the supervisor hears the call, unheard
        await asyncio.to_thread(as_console, db, boss, "mode", job.call_id, "barge")
        barged = await first(seen, events.MONITOR_MODE, 5.0)
        assert barged.data["heard_by"] == "customer"  # a bot-only call: over the bot
        await asyncio.sleep(4.0)
        await asyncio.to_thread(as_console, db, boss, "stop", job.call_id)
        ended = await first(seen, events.MONITOR_ENDED, 5.0)
        await boss_phone.wait_event("CALL_CLOSED", timeout=10)
        await asyncio.sleep(1.0)
        await customer.command("hangup")
        report = await asyncio.wait_for(placing, 30.0)
    finally:
        if not placing.done():
            placing.cancel()
    assert report.error is None and report.session is not None

    # The supervisor's phone heard the call: the customer's 1000 Hz voice.
    by_boss = boss_phone.heard_pcm()
    print(f"supervisor heard {voiced_s(by_boss):.1f} s voiced, 1000 Hz "
          f"{level(by_boss, 1000):.0f}, 3000 Hz {level(by_boss, 3000):.0f}")
    assert voiced_s(by_boss) >= 5.0
    assert level(by_boss, 1000) > 10 * max(level(by_boss, 3000), 1.0)
    assert len([e for e in boss_phone.event_types() if e[0] == "CALL_ESTABLISHED"]) == 1

    # What the customer heard (the recording's bot side): the supervisor only once barging.
    _left, right = stereo_channels(recording_of(db, job.call_id))
    quiet = span(right, started.offset_ms + 500, barged.offset_ms - 100)
    loud = span(right, barged.offset_ms + 700, ended.offset_ms - 200)
    print(f"customer side 2000 Hz: listening {level(quiet, 2000):.0f}, "
          f"barging {level(loud, 2000):.0f}")
    assert len(quiet) > 3 * 16000 and len(loud) > 2 * 16000
    assert level(loud, 2000) > 10 * max(level(quiet, 2000), 1.0)
    by_customer = customer.heard_pcm()
    print(f"customer phone heard 2000 Hz {level(by_customer, 2000):.0f}, "
          f"3000 Hz {level(by_customer, 3000):.0f}")
    assert level(by_customer, 2000) > 10 * max(level(by_customer, 3000), 1.0)

    with db.session() as session:
        row = session.scalar(select(MonitorSession).where(
            MonitorSession.call_id == job.call_id))
        assert row is not None
        assert (row.state, row.mode, row.end_reason, row.heard_by) == \
            ("ended", "barge", "stopped", "customer")
        assert row.started_at is not None and row.sip_uri == boss_phone.uri
        actions = [(e.actor, e.action) for e in AuditRepo(session).entries(
            subject=job.call_id) if e.action.startswith("monitor.")]
    assert actions == [("user:lead_monitor", "monitor.requested"),
                       ("user:lead_monitor", "monitor.mode"),
                       ("user:lead_monitor", "monitor.stopped")]
    names = [e.name for e in seen]
    assert names.index(events.MONITOR_STARTED) < names.index(events.MONITOR_MODE) \
        < names.index(events.MONITOR_ENDED) < names.index(events.CALL_ENDED)


# -- the same from the wall: Chromium, the console in its own process, real SIP -------------


async def test_a_supervisor_monitors_from_the_wall_in_chromium(
        db_url: str, audio: dict[str, Path], peers: Peers, parts: VoiceParts,
        tmp_path: Path) -> None:
    """The whole path: a click on the wall (headless Chromium) → the console (`waihu
    console`, another process) → the database → the gateway → the supervisor's phone.  On
    this bot-only call a whisper is shown as listening only; then barge; then stop.
    Screenshots monitor-01..03 in var/test-artifacts/console/."""
    from playwright.async_api import async_playwright, expect

    from tests.e2e.console_process import running_console
    from tests.e2e.test_console_wall import ARTIFACTS, CHROMIUM

    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make setup installs it)")
    db = Database(db_url)
    phone = "13800000012"
    customer_wav = compose_wav(tmp_path / "customer.wav", [(1.0, tone(1000, 58.0, 12000))],
                               60.0)
    customer = await peers.phone(phone, customer_wav)
    boss_phone = await peers.phone("boss", audio["agent_tone"])  # 2000 Hz, 25 s
    dialer = campaign(db, "monitor-wall", f"sip:{{number}}@127.0.0.1:{customer.sip_port}",
                      {phone: "周八"})
    cheap = accounts.Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    await asyncio.to_thread(
        accounts.create_user, db, cheap, "lead_wall", "supervisor", "correct horse 1",
        actor="test", agent=accounts.AgentOptions(boss_phone.uri))
    bus = InProcessBus()
    seen: list[CallEvent] = []
    bus.subscribe(seen.append)
    (job,) = claim_all(dialer, 1)
    gw = Gateway(db, parts.telephony, parts.asr, parts.tts, Chatty(),
                 GatewayConfig(gateway_id="monitor-wall", capacity=1, ring_timeout_s=15.0,
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
                    viewport={"width": 1440, "height": 1100}, locale="zh-CN")).new_page()
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                await page.goto(f"{base}/login")
                await page.get_by_label("用户名").fill("lead_wall")
                await page.get_by_label("密码").fill("correct horse 1")
                await page.get_by_role("button", name="登录 Log in").click()
                await expect(page).to_have_url(f"{base}/supervisor")
                await first(seen, events.CALL_ANSWERED, 25.0)
                row = page.locator(f'#wall-calls tr[data-key="{job.call_id}"]')
                whisper = row.locator('button.monitor-start[data-mode="whisper"]')
                await whisper.click()
                panel = page.locator("#monitor-panel")
                await expect(panel).to_have_attribute("data-state", "active")
                await expect(page.locator("#monitor-mode")).to_have_text("密语 Whisper")
                await expect(page.locator("#monitor-heard")).to_contain_text(
                    "you are only listening")
                await page.screenshot(path=str(ARTIFACTS / "monitor-01-whisper-is-listen.png"),
                                      full_page=True)
                await boss_phone.wait_event("CALL_ESTABLISHED", timeout=5)
                await asyncio.sleep(3.0)  # the supervisor hears the call
                await page.locator('button.monitor-switch[data-mode="barge"]').click()
                await expect(page.locator("#monitor-mode")).to_have_text("强插 Barge")
                await expect(page.locator("#monitor-heard")).to_contain_text(
                    "The customer hears you")
                barged = await first(seen, events.MONITOR_MODE, 5.0)
                await page.screenshot(path=str(ARTIFACTS / "monitor-02-barge.png"),
                                      full_page=True)
                await asyncio.sleep(4.0)  # the customer hears the supervisor
                await page.locator("button.monitor-stop").click()
                await expect(panel).to_have_attribute("data-state", "ended")
                await expect(page.locator("#monitor-last")).to_contain_text("you stopped")
                ended = await first(seen, events.MONITOR_ENDED, 5.0)
                await page.screenshot(path=str(ARTIFACTS / "monitor-03-stopped.png"),
                                      full_page=True)
                assert errors == []
            finally:
                await browser.close()
                await boss_phone.wait_event("CALL_CLOSED", timeout=10)
                await customer.command("hangup")
                report = await asyncio.wait_for(placing, 30.0)
    assert report.error is None
    by_boss = boss_phone.heard_pcm()
    print(f"supervisor heard {voiced_s(by_boss):.1f} s voiced, 1000 Hz "
          f"{level(by_boss, 1000):.0f}, 3000 Hz {level(by_boss, 3000):.0f}")
    assert voiced_s(by_boss) >= 5.0
    assert level(by_boss, 1000) > 10 * max(level(by_boss, 3000), 1.0)
    _left, right = stereo_channels(recording_of(db, job.call_id))
    loud = span(right, barged.offset_ms + 700, ended.offset_ms - 1500)
    print(f"customer side 2000 Hz while barging {level(loud, 2000):.0f}")
    assert level(loud, 2000) > 10 * max(level(loud, 3000), 1.0)
    with db.session() as session:
        actions = [e.action for e in AuditRepo(session).entries(subject=job.call_id)
                   if e.action.startswith("monitor.")]
    assert actions == ["monitor.requested", "monitor.mode", "monitor.stopped"]
