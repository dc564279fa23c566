"""An agent hands a call back to the bot, end to end: real Rasa and action server, the
gateway over real SIP on 127.0.0.1, Whisper hearing a Debian baresip phone as the customer
(playing the virtual customers' Kokoro voice) and a second one as the agent's phone.

The customer says 是我, then 我要人工客服 at the permission question; the call is offered to the
campaign's one agent, who takes it (the test stands in for the console's buttons, writing
what they write: bot/agents/desk.py, bot/agents/handback.py; the button itself, clicked in
Chromium over real SIP, is test_desk_offer_sip.py's); after a few seconds of talk the agent
hands the call back in the middle of the customer's 好的，那我同意办理这个业务 (said to the
agent: its tail, heard by the bot after the hand-back, must answer nothing; it once waited
through the read-back and was taken as the answer to it).  The agent's phone must hang up
while the customer stays on; the bot says the approved pitch (nothing was pitched before
the request) and reads the sale back; the customer keys 1; the consent ledger holds the
consent, naming the agent.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from bot import events
from bot.agents import desk, handback
from bot.channel import RasaEndpoint
from bot.events import CallEvent, InProcessBus
from bot.store import ConsentLedger, Database, in_write
from bot.store.models import Call, Consent, Escalation, TranscriptTurn
from tests.e2e.sip_calls import (
    NOW,
    Peers,
    campaign,
    claim_all,
    compose_wav,
    first,
)
from tests.e2e.test_desk_offer_sip import add_agent, as_console, ringing_offer
from tests.sip_peers import tone
from voice.gateway import Gateway, GatewayConfig
from voice.session import SessionConfig
from voice.stack import VoiceParts
from voice.tts.kokoro import customer_voice

pytestmark = [pytest.mark.sip, pytest.mark.rasa]
TO_THE_AGENT = "好的，那我同意办理这个业务"
TO_THE_AGENT_AT_S = 50.0  # after the answer: said to the agent; the hand-back comes inside it
HAND_BACK_INTO_S = 0.6


def consents_of(db: Database, call_id: str) -> list[Consent]:
    with db.session() as session:
        return list(session.scalars(select(Consent).where(Consent.call_id == call_id)))


async def test_the_agent_hands_the_call_back_and_the_bot_records_their_sale(
        rasa: RasaEndpoint, db_url: str, peers: Peers, parts: VoiceParts,
        tmp_path: Path) -> None:
    db = Database(db_url)
    phone = "13800000031"
    root = tmp_path / "audio"
    root.mkdir()
    # Silent through the greeting, 是我, the permission question, 转人工; words to the agent
    # across the hand-back; then silence while the bot reads back (the phone hangs up when
    # its WAV ends).
    # The customers' voice (Kokoro): Whisper base heard espeak-ng's 转人工 as 不方便 and
    # 我要人工客服 as 有空, so the call never reached an agent.
    voice = await asyncio.to_thread(customer_voice)
    said = await asyncio.to_thread(lambda: {text: voice.synthesize(text)
                                            for text in ("是我", "我要人工客服", "是的",
                                                         TO_THE_AGENT)})
    customer_wav = compose_wav(root / "customer.wav",
                               [(7.0, said["是我"]), (19.0, said["我要人工客服"]),
                                # if the request is asked back ("您是要转接人工客服吗？")
                                (29.0, said["是的"]),
                                (TO_THE_AGENT_AT_S, said[TO_THE_AGENT])], 170.0)
    agent_wav = compose_wav(root / "agent.wav", [(0.0, tone(2000, 40.0, 12000))], 40.0)
    customer = await peers.phone(phone, customer_wav)
    agent_phone = await peers.phone("agent", agent_wav)
    dialer = campaign(db, "handback-sip", f"sip:{{number}}@127.0.0.1:{customer.sip_port}",
                      {phone: "钱七"})
    agent_id = await asyncio.to_thread(add_agent, db, "closer", agent_phone.uri,
                                       "handback-sip")
    bus = InProcessBus()
    seen: list[CallEvent] = []
    bus.subscribe(seen.append)
    (job,) = claim_all(dialer, 1)
    async with aiohttp.ClientSession() as http:
        gw = Gateway(db, parts.telephony, parts.asr, parts.tts, rasa.channel(http),
                     GatewayConfig(gateway_id="handback-sip", capacity=1, ring_timeout_s=15.0,
                                   session=SessionConfig(
                                       recordings_dir=tmp_path / "recordings",
                                       max_call_s=150.0, agent_answer_s=10.0)),
                     events=bus)
        placing = asyncio.create_task(gw.place_call(job, NOW))
        try:
            try:
                await first(seen, events.ESCALATION_OFFERED, 60.0)
            except TimeoutError:
                for event in seen:
                    print(event.offset_ms, event.name, event.data)
                raise
            offer_id = await asyncio.to_thread(ringing_offer, db, agent_id)
            assert offer_id is not None
            await asyncio.to_thread(as_console, db, "accept", offer_id)
            await first(seen, events.CALL_BRIDGED, 15.0)
            await agent_phone.wait_event("CALL_ESTABLISHED", timeout=10)
            # The agent closes the sale, and hands back while the customer is still
            # telling them 好的，那我同意办理这个业务.
            answered = await customer.wait_event("CALL_ESTABLISHED", timeout=1)
            hand_back_at = answered["_t"] + TO_THE_AGENT_AT_S + HAND_BACK_INTO_S
            assert time.monotonic() < hand_back_at - 3.0, "bridged too late for the test"
            await asyncio.sleep(hand_back_at - time.monotonic())
            await asyncio.to_thread(in_write, db, partial(
                handback.request, offer_id=offer_id, agent_id=agent_id,
                at=datetime.now(UTC)))
            ended = await first(seen, events.ESCALATION_ENDED, 5.0)
            assert ended.data["status"] == "returned_to_bot"
            await agent_phone.wait_event("CALL_CLOSED", timeout=10)
            # The customer keys 1 once the read-back has been said ("跟您确认一下…"): a key
            # pressed earlier cuts the hand-back line, and the disclosures after it then
            # count as unsaid (voice/call/speaker.py), so no consent could rest on it.
            await first(seen, events.TURN_BOT, 90.0,
                        lambda e: str(e.data.get("text", "")).startswith("跟您确认一下"))
            deadline = time.monotonic() + 60.0
            while not await asyncio.to_thread(consents_of, db, job.call_id):
                assert time.monotonic() < deadline, "no consent after the hand-back"
                assert not placing.done(), placing.result()
                await customer.command("sndcode", "1")
                await asyncio.sleep(3.0)
            report = await asyncio.wait_for(placing, 30.0)
        finally:
            if not placing.done():
                placing.cancel()
    assert report.error is None and report.session is not None
    assert report.session.ended_by == "bot"

    entries = consents_of(db, job.call_id)
    [consent] = [e for e in entries if e.kind == "consent"]
    # the recording is sealed into the ledger after the call, as for the bot's own sales
    assert [e.kind for e in entries if e.kind != "consent"] == ["recording_seal"]
    assert consent.closed_by == "agent:closer" and consent.input_mode == "dtmf"
    assert set(consent.disclosures or ()) == {"features", "price", "trial_end", "usage",
                                              "cancel"}
    with db.session() as session:
        assert ConsentLedger(session).verify().ok
        call = session.get(Call, job.call_id)
        escalation = session.scalar(select(Escalation).where(
            Escalation.call_id == job.call_id))
        assert call is not None and escalation is not None
        assert call.outcome == "consented" and escalation.status == "returned_to_bot"
        assert desk.presence_of(session, agent_id).state == "wrap_up"
        bot_lines = [t.text for t in session.scalars(select(TranscriptTurn).where(
            TranscriptTurn.call_id == job.call_id, TranscriptTurn.speaker == "bot")
            .order_by(TranscriptTurn.seq))]
        system_lines = list(session.scalars(select(TranscriptTurn.text).where(
            TranscriptTurn.call_id == job.call_id, TranscriptTurn.speaker == "system")))
    # the tail of the words to the agent was heard after the hand-back, and set aside
    assert any(text.startswith("坐席转回前客户所说，不作为回答") for text in system_lines), \
        system_lines
    for line in bot_lines:
        print("  bot:", line)
    handed = next(i for i, text in enumerate(bot_lines) if "确认刚才办理的业务" in text)
    assert any(text.startswith("跟您确认一下") for text in bot_lines[handed:])
    assert "已为您办理" in bot_lines[-1]
    # the agent's phone was on once, and hung up by us; the customer stayed on after it
    assert len([e for e in agent_phone.event_types() if e[0] == "CALL_ESTABLISHED"]) == 1
