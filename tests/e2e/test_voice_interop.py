"""The whole voice gateway against independent SIP software on 127.0.0.1.

- Debian baresip as the customer's phone: one marketing call through `Gateway.place_call`
  with the real Rasa server and action server, real ASR (Whisper here) and espeak TTS; what
  the phone heard, the gateway's stereo recording, the transcript and the outcome.
- Debian baresip as the agent's phone: a scripted dialogue asks for a transfer; the two-leg
  bridge (audio both ways, the recording goes on) and a blind REFER the customer's phone
  carries out.
- kamailio in front: the failure statuses become dial results, stored through a real
  dialer claim, and the dialer completes each attempt.

Every peer binds 127.0.0.1 on free ports, every wait is bounded, and every peer a test
starts is stopped (by PID) when it ends.  Helpers: sip_calls.py; fixtures: conftest.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from bot.campaigns.registry import pause_campaign
from bot.channel import RasaEndpoint
from bot.store import Database
from bot.store.models import Call, TranscriptTurn
from bot.store.vocab import OUTCOMES
from tests.e2e.sip_calls import (
    NoDialogue,
    Peers,
    Scripted,
    attempt_of,
    campaign,
    claim_all,
    gateway,
    level,
    place,
    recording_of,
    stereo_channels,
    voiced_s,
)
from tests.integration.sip.conftest import require_sip_peers
from tests.sip_peers import Route
from voice.audio.frames import rms
from voice.stack import VoiceParts

require_sip_peers()

# The fixtures (audio, db_url, rasa, parts, peers) are the run's: tests/e2e/conftest.py.
pytestmark = [pytest.mark.sip]


# -- 1. Debian baresip as the customer's phone, real Rasa, ASR and TTS ----------------------
@pytest.mark.rasa
async def test_marketing_call_to_debian_baresip(rasa: RasaEndpoint, db_url: str,
                                                audio: dict[str, Path], peers: Peers,
                                                parts: VoiceParts, tmp_path: Path) -> None:
    db = Database(db_url)
    phone = "13800000001"
    customer = await peers.phone(phone, audio["customer"])
    dialer = campaign(db, "interop-marketing", f"sip:{{number}}@127.0.0.1:{customer.sip_port}",
                      {phone: "张三"})
    try:
        (job,) = claim_all(dialer, 1)
        assert job.target == customer.uri
        async with aiohttp.ClientSession() as http:
            gw = gateway(db, parts, rasa.channel(http), tmp_path)
            report = await place(gw, job)
    finally:
        pause_campaign(db, "interop-marketing")
    await customer.wait_event("CALL_CLOSED", timeout=10)

    assert report.error is None and report.dial_result == "answered"
    assert report.sip_status == 200 and report.session is not None
    dial_result, completed_at = attempt_of(db, job.call_id)
    assert dial_result == "answered" and completed_at is not None
    await customer.wait_event("CALL_ESTABLISHED", timeout=1)

    # the phone's own recording of what it heard: the bot speaking for several seconds
    heard = customer.heard_pcm()
    assert voiced_s(heard) >= 3.0, f"phone heard {voiced_s(heard):.1f} s of the bot"

    # the gateway's stereo recording: the customer left, the bot right
    left, right = stereo_channels(recording_of(db, job.call_id))
    print(f"recording: customer {voiced_s(left):.1f} s voiced, bot {voiced_s(right):.1f} s")
    assert voiced_s(left) >= 0.3  # 是我 / 不需要 (espeak's short words)
    assert voiced_s(right) >= 3.0
    # each channel holds its own side: the bot's channel is loud where the customer's is not
    assert rms(right) > 2 * rms(left)

    with db.session() as session:
        turns = session.scalars(select(TranscriptTurn).where(
            TranscriptTurn.call_id == job.call_id).order_by(TranscriptTurn.seq)).all()
        call = session.get(Call, job.call_id)
        assert call is not None
        outcome, reason = call.outcome, call.decline_reason
        transcript = [(t.speaker, t.text, t.input_mode) for t in turns]
        confidences = [t.asr_confidence for t in turns]
    for line, confidence in zip(transcript, confidences, strict=True):
        print("  ", *line, confidence)
    print(f"outcome: {outcome} {reason or ''} (ended by {report.session.ended_by})")
    assert [s for s, _, _ in transcript].count("bot") >= 1
    assert any(s == "customer" and mode == "speech" for s, _, mode in transcript)
    assert outcome in OUTCOMES


# -- 2. Debian baresip as the agent's phone -------------------------------------------------
async def test_transfer_bridges_to_agent_phone(db_url: str, audio: dict[str, Path],
                                               peers: Peers, parts: VoiceParts,
                                               tmp_path: Path) -> None:
    db = Database(db_url)
    phone = "13800000002"
    customer = await peers.phone(phone, audio["caller_tone"])
    agent = await peers.phone("agent", audio["agent_tone"])
    dialer = campaign(db, "interop-bridge", f"sip:{{number}}@127.0.0.1:{customer.sip_port}",
                      {phone: "李四"})
    dialogue = Scripted()
    try:
        (job,) = claim_all(dialer, 1)
        gw = gateway(db, parts, dialogue, tmp_path, agent_uri=agent.uri,
                     transfer_mode="bridge", agent_answer_s=10.0)
        report = await place(gw, job, timeout=40.0)
    finally:
        pause_campaign(db, "interop-bridge")

    assert dialogue.messages == ["/call_started"]
    assert report.error is None and report.dial_result == "answered"
    assert report.session is not None and report.session.ended_by == "bridge_ended"
    await agent.wait_event("CALL_ESTABLISHED", timeout=1)
    await agent.wait_event("CALL_CLOSED", timeout=10)  # the bridge hung the agent up
    await customer.wait_event("CALL_CLOSED", timeout=10)

    # the customer's tone reached the agent, the agent's tone reached the customer
    by_agent, by_customer = agent.heard_pcm(), customer.heard_pcm()
    print(f"agent heard 1000 Hz {level(by_agent, 1000):.0f} / 2000 Hz "
          f"{level(by_agent, 2000):.0f}; customer heard 1000 Hz {level(by_customer, 1000):.0f}"
          f" / 2000 Hz {level(by_customer, 2000):.0f}")
    assert voiced_s(by_agent) >= 3.0
    assert level(by_agent, 1000) > 5 * level(by_agent, 2000)
    assert level(by_customer, 2000) > 5 * level(by_customer, 1000)
    # the recording went on through the bridge: the agent on the bot's channel
    left, right = stereo_channels(recording_of(db, job.call_id))
    assert level(left, 1000) > 5 * level(left, 2000)
    assert level(right, 2000) > 5 * level(right, 1000)
    assert voiced_s(right) >= 3.0 + 1.0  # the agent's tone for seconds, beside the prompt
    with db.session() as session:
        texts = session.scalars(select(TranscriptTurn.text).where(
            TranscriptTurn.call_id == job.call_id).order_by(TranscriptTurn.seq)).all()
    # The campaign's greeting opens every call (said at the answer, before the dialogue
    # replies; the customer's tone talks over it here), then the transfer announcement.
    assert any("正在为您转接人工客服" in text for text in texts) and "已接通坐席" in texts
    assert texts.index("已接通坐席") > max(i for i, t in enumerate(texts) if "转接人工" in t)
    assert attempt_of(db, job.call_id)[1] is not None


async def test_transfer_by_refer_to_agent_phone(db_url: str, audio: dict[str, Path],
                                                peers: Peers, parts: VoiceParts,
                                                tmp_path: Path) -> None:
    db = Database(db_url)
    phone = "13800000003"
    # The customer answers after a short ring, as a person does.  (An auto-answer within the
    # few ms dial() takes leaves baresip-python's Call in OUTGOING, which then refuses the
    # REFER: "transfer requires an established call" -- a race in the telephony layer.)
    customer = await peers.phone(phone, audio["silence"], answermode="manual")
    agent = await peers.phone("agent", audio["agent_tone"])
    dialer = campaign(db, "interop-refer", f"sip:{{number}}@127.0.0.1:{customer.sip_port}",
                      {phone: "王五"})

    async def pick_up() -> None:
        await customer.wait_event("CALL_INCOMING", timeout=10)
        await asyncio.sleep(0.3)
        await customer.command("accept")

    try:
        (job,) = claim_all(dialer, 1)
        gw = gateway(db, parts, Scripted(), tmp_path, agent_uri=agent.uri,
                     transfer_mode="refer")
        answering = asyncio.create_task(pick_up())
        try:
            report = await place(gw, job, timeout=30.0)
        finally:
            answering.cancel()
    finally:
        pause_campaign(db, "interop-refer")

    assert report.error is None and report.dial_result == "answered"
    assert report.session is not None and report.session.ended_by == "transfer"
    # the customer's phone carried out the REFER: it called the agent, who answered
    established = await agent.wait_event("CALL_ESTABLISHED", timeout=10)
    print(f"agent: {agent.event_types()}")
    assert f"sip:{phone}@" in str(established.get("param"))  # called by the customer's phone
    print(f"customer: {customer.event_types()}")
    assert ("TRANSFER", agent.uri) in customer.event_types()
    with db.session() as session:
        texts = session.scalars(select(TranscriptTurn.text).where(
            TranscriptTurn.call_id == job.call_id)).all()
    assert any("REFER" in t and "成功" in t for t in texts), texts


# -- 3. kamailio in front: failure statuses -> dial results --------------------------------
async def test_failure_statuses_through_kamailio(db_url: str, audio: dict[str, Path],
                                                 peers: Peers, parts: VoiceParts,
                                                 tmp_path: Path) -> None:
    """An edge proxy relays each number to a 'carrier' kamailio answering 486/480/404/603
    by user, and one to a phone that only rings (the edge's fr_inv_timer: 408)."""
    db = Database(db_url)
    ringing = await peers.phone("ring", audio["silence"], answermode="manual")
    carrier = peers.proxy()
    numbers: dict[str, tuple[Route, str]] = {
        "13900000001": (("busy", carrier.port), "busy"),
        "13900000002": (("noanswer", carrier.port), "no_answer"),
        "13900000003": (("nosuch", carrier.port), "invalid_number"),
        "13900000004": (("reject", carrier.port), "rejected"),
        "13900000005": (("ring", ringing.sip_port), "no_answer"),
    }
    edge = peers.proxy({n: route for n, (route, _) in numbers.items()}, ring_ms=1500)
    dialer = campaign(db, "interop-kamailio", f"sip:{{number}}@127.0.0.1:{edge.port}",
                      {n: f"客户{n[-1]}" for n in numbers})
    try:
        jobs = claim_all(dialer, len(numbers))
        gw = gateway(db, parts, NoDialogue(), tmp_path)
        reports = await asyncio.gather(*(place(gw, job, timeout=20.0) for job in jobs))
    finally:
        pause_campaign(db, "interop-kamailio")

    got = {job.phone: (r.dial_result, r.sip_status) for job, r in zip(jobs, reports,
                                                                       strict=True)}
    assert got == {"13900000001": ("busy", 486), "13900000002": ("no_answer", 480),
                   "13900000003": ("invalid_number", 404), "13900000004": ("rejected", 603),
                   "13900000005": ("no_answer", 408)}
    for job, report in zip(jobs, reports, strict=True):
        assert report.error is None and report.session is None
        dial_result, completed_at = attempt_of(db, job.call_id)
        assert dial_result == numbers[job.phone][1]
        assert completed_at is not None  # the dialer's `complete` ran
    await ringing.wait_event("CALL_INCOMING", timeout=1)
