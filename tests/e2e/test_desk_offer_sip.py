"""An escalated call offered through the agent desk, over real SIP on 127.0.0.1.

The gateway (a scripted dialogue that asks for a person at once) calls a Debian baresip
phone as the customer; the campaign has one agent, logged in, whose SIP address is a second
Debian baresip phone.  The test stands in for the console: it waits for the offer in the
database, listens first (bot/agents/desk.py ``listen``), then takes over (``answer_offer``
accepted), as the desk's buttons do.  The agent's phone must ring only once the offer was
taken, hear the customer while listening without being heard, and be heard by the customer
once it took over; the customer's recording holds the agent's voice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import events
from bot.agents import desk
from bot.agents.presence import PresenceEvent
from bot.events import CallEvent, InProcessBus
from bot.store import Database, in_write
from bot.store.models import Agent, AgentCampaign, Escalation, EscalationOffer, User
from tests.e2e.test_voice_interop import (  # noqa: F401 - fixtures used by name
    NOW,
    Peers,
    Scripted,
    audio,
    campaign,
    claim_all,
    compose_wav,
    db_url,
    level,
    parts,
    peers,
    recording_of,
    stereo_channels,
    voice_var,
    voiced_s,
)
from tests.sip_peers import tone
from voice.gateway import Gateway, GatewayConfig
from voice.session import SessionConfig
from voice.stack import VoiceParts

pytestmark = pytest.mark.sip
SAMPLE_BYTES_PER_MS = 16  # 8 kHz, 16-bit mono


def add_agent(db: Database, username: str, sip_uri: str, campaign_name: str) -> int:
    """An agent serving *campaign_name* with *sip_uri* as their phone, logged in now."""
    with db.session(write=True) as session:
        user = User(username=username, role="agent", password_hash="x")
        session.add(user)
        session.flush()
        session.add(Agent(user_id=user.id, sip_uri=sip_uri))
        session.add(AgentCampaign(agent_id=user.id, campaign=campaign_name))
        session.flush()
        desk.change_presence(session, user.id, PresenceEvent("log_in"), datetime.now(UTC))
        return user.id


def ringing_offer(db: Database, agent_id: int) -> int | None:
    with db.session() as session:
        return session.scalar(select(EscalationOffer.id).where(
            EscalationOffer.agent_id == agent_id, EscalationOffer.outcome.is_(None)))


def as_console(db: Database, work: str, offer_id: int) -> None:
    def run(session: Session) -> None:
        if work == "listen":
            desk.listen(session, offer_id, datetime.now(UTC))
        else:
            desk.answer_offer(session, offer_id, "accepted", datetime.now(UTC))
    in_write(db, run)


async def first(seen: list[CallEvent], name: str, timeout: float,
                where: Callable[[CallEvent], bool] = lambda event: True) -> CallEvent:
    """The first event *name* (that *where* accepts) in *seen*, waiting up to *timeout*."""
    deadline = time.monotonic() + timeout
    while not any(e.name == name and where(e) for e in seen):
        if time.monotonic() > deadline:
            raise TimeoutError(name)
        await asyncio.sleep(0.05)
    return next(e for e in seen if e.name == name and where(e))


def span(pcm: bytes, start_ms: int, end_ms: int) -> bytes:
    return pcm[start_ms * SAMPLE_BYTES_PER_MS:end_ms * SAMPLE_BYTES_PER_MS]


async def test_offer_listen_then_take_over_through_real_sip(
        db_url: str, audio: dict[str, Path], peers: Peers, parts: VoiceParts,  # noqa: F811
        tmp_path: Path) -> None:
    db = Database(db_url)
    phone = "13800000009"
    # The customer: 4 s of silence (the bot's lines), then a 1000 Hz tone for 26 s.
    customer_wav = compose_wav(tmp_path / "customer.wav", [(4.0, tone(1000, 26.0, 12000))],
                               30.0)
    customer = await peers.phone(phone, customer_wav)
    agent_phone = await peers.phone("agent", audio["agent_tone"])  # 2000 Hz
    dialer = campaign(db, "desk-sip", f"sip:{{number}}@127.0.0.1:{customer.sip_port}",
                      {phone: "赵六"})
    agent_id = await asyncio.to_thread(add_agent, db, "desk_agent", agent_phone.uri,
                                       "desk-sip")
    bus = InProcessBus()
    seen: list[CallEvent] = []
    bus.subscribe(seen.append)
    (job,) = claim_all(dialer, 1)
    gw = Gateway(db, parts.telephony, parts.asr, parts.tts, Scripted(),
                 GatewayConfig(gateway_id="desk-sip", capacity=1, ring_timeout_s=15.0,
                               session=SessionConfig(recordings_dir=tmp_path / "recordings",
                                                     max_call_s=60.0, agent_answer_s=10.0)),
                 events=bus)
    placing = asyncio.create_task(gw.place_call(job, NOW))
    try:
        offered = await first(seen, events.ESCALATION_OFFERED, 25.0)
        assert offered.data["agent_id"] == agent_id
        offer_id = await asyncio.to_thread(ringing_offer, db, agent_id)
        assert offer_id is not None
        await asyncio.sleep(1.0)  # the offer rings on the desk, not on the phone
        assert not [e for e in agent_phone.event_types() if e[0].startswith("CALL_")]
        listened_at = time.monotonic()
        await asyncio.to_thread(as_console, db, "listen", offer_id)
        established = await agent_phone.wait_event("CALL_ESTABLISHED", timeout=10)
        calls = [m for m in agent_phone.events if str(m.get("type", "")).startswith("CALL_")]
        print(f"agent phone: {agent_phone.event_types()}")
        # dialled only once the agent asked to listen
        assert all(m["_t"] > listened_at for m in calls) and established["_t"] > listened_at
        await first(seen, events.ESCALATION_LISTENING, 5.0)
        await asyncio.sleep(3.0)  # listening: the agent hears the customer, unheard
        await asyncio.to_thread(as_console, db, "accept", offer_id)
        await first(seen, events.CALL_BRIDGED, 5.0)
        await asyncio.sleep(3.0)  # the agent talks to the customer
        await customer.command("hangup")
        report = await asyncio.wait_for(placing, 20.0)
    finally:
        if not placing.done():
            placing.cancel()
    assert report.error is None and report.session is not None
    assert report.session.ended_by == "bridge_ended"
    await agent_phone.wait_event("CALL_CLOSED", timeout=10)

    # one call to the agent's phone, carrying the call's id
    assert len([e for e in agent_phone.event_types() if e[0] == "CALL_ESTABLISHED"]) == 1
    by_agent = agent_phone.heard_pcm()
    print(f"agent heard 1000 Hz {level(by_agent, 1000):.0f} / 2000 Hz "
          f"{level(by_agent, 2000):.0f}, {voiced_s(by_agent):.1f} s voiced")
    assert voiced_s(by_agent) >= 4.0  # listening and bridged
    assert level(by_agent, 1000) > 5 * level(by_agent, 2000)

    # what the customer heard (the gateway's recording, right channel): no agent while
    # listening, the agent once bridged; the customer's own phone heard the agent too
    listening = next(e for e in seen if e.name == events.ESCALATION_LISTENING).offset_ms
    bridged = next(e for e in seen if e.name == events.CALL_BRIDGED).offset_ms
    left, right = stereo_channels(recording_of(db, job.call_id))
    quiet = span(right, listening + 300, bridged - 100)
    loud = span(right, bridged + 500, bridged + 2500)
    print(f"customer channel 2000 Hz: listening {level(quiet, 2000):.0f}, "
          f"bridged {level(loud, 2000):.0f}")
    assert len(quiet) > 2 * 8000 and len(loud) == 2 * 8000 * 2
    assert level(loud, 2000) > 20 * max(level(quiet, 2000), 1.0)
    assert level(left, 1000) > 5 * level(left, 2000)
    by_customer = customer.heard_pcm()
    assert level(by_customer, 2000) > 5 * level(by_customer, 1000)

    with db.session() as session:
        offer = session.get(EscalationOffer, offer_id)
        escalation = session.scalar(select(Escalation).where(
            Escalation.call_id == job.call_id))
        assert offer is not None and escalation is not None
        assert offer.outcome == "accepted" and offer.listened_at is not None
        assert escalation.status == "bridged" and escalation.context["source"] == "gateway"
        assert desk.presence_of(session, agent_id).state == "wrap_up"
    names = [e.name for e in seen]
    assert names.index(events.ESCALATION_OFFERED) < names.index(events.ESCALATION_LISTENING) \
        < names.index(events.CALL_BRIDGED) < names.index(events.ESCALATION_ENDED)
