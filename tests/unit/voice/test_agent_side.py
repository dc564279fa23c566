"""The agent's side of a bridged call (voice/call/agent_side.py) with fake legs and a fake
ASR: what the agent's phone sends becomes `turn.agent` events on the call's timeline and
stored turns of speaker ``agent`` (bot/transcript.py, a real SQLite database), after the
desk's take-over (voice/call/desk_offer.py) and on the fixed agent URI (transfer.py).  The
customer's voice, which the agent's leg sends (tx), is not the agent's."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from bot import events
from bot.agents.handover import Handover
from bot.events import CallEvent, InProcessBus
from bot.store import CallRepo, Database
from bot.transcript import TranscriptSink
from tests.conftest import seed_call
from tests.unit.voice.pipeline_helpers import tone
from tests.unit.voice.test_desk_offer import FakeDesk, Tts, until
from tests.unit.voice.test_session import ScriptedAsr
from voice.asr.base import AsrWorker, Hints, Transcript
from voice.audio.vad import VadParams
from voice.call.agent_side import AgentSide, AgentTranscriber
from voice.call.desk_offer import DeskOffer
from voice.call.speaker import Speaker
from voice.call.timeline import Timeline
from voice.call.transfer import Handoff
from voice.telephony.base import DialRequest, Leg
from voice.telephony.fake import FakeTelephony, FarEnd

# Quicker ends than the session's 600 ms, so the test waits less; the rest as the session.
VAD = VadParams(min_speech_ms=60, end_silence_ms=200, min_utterance_ms=200,
                max_utterance_s=12.0, pause_ms=100)
AGENT_URI = "sip:wangfang@127.0.0.1"


def scripted(*texts: str) -> ScriptedAsr:
    """The session tests' scripted engine saying *texts* in turn ("" = could not make it
    out)."""
    return ScriptedAsr(*(Transcript(text, 0.9, "scripted") if text
                         else Transcript("", 0.0, "scripted", unclear=True) for text in texts))


@dataclass
class Bridged:
    """A customer on a fake leg, the call's timeline on a bus with the transcript writer."""

    db: Database
    call_id: str
    telephony: FakeTelephony
    customer: FarEnd
    leg: Leg
    timeline: Timeline
    sink: TranscriptSink
    seen: list[CallEvent] = field(default_factory=list)

    def agent_turns(self) -> list[CallEvent]:
        return [e for e in self.seen if e.name == events.TURN_AGENT]

    def customer_turns(self) -> list[CallEvent]:
        return [e for e in self.seen if e.name == events.TURN_CUSTOMER]

    def stored(self) -> list[tuple[str, str, str | None, float | None]]:
        with self.db.session() as session:
            return [(t.speaker, t.text, t.input_mode, t.asr_confidence)
                    for t in CallRepo(session).turns(self.call_id)]


async def bridged(db: Database, *agent_phones: FarEnd) -> Bridged:
    call_id = seed_call(db).id
    telephony = FakeTelephony()
    await telephony.start()
    customer = telephony.prepare(FarEnd())
    leg = await telephony.dial(DialRequest("sip:13800000000@trunk", call_id))
    assert (await leg.wait_answer(1)).result == "answered"
    for phone in agent_phones:
        telephony.prepare(phone)
    bus = InProcessBus()
    timeline = Timeline(call_id, bus)
    sink = TranscriptSink(db, call_id).attach(bus)
    b = Bridged(db, call_id, telephony, customer, leg, timeline, sink)
    bus.subscribe(b.seen.append)
    return b


async def test_the_agent_after_the_desks_take_over_is_stored_as_the_agent(
        sqlite_db: Database) -> None:
    agent_phone = FarEnd()
    b = await bridged(sqlite_db, agent_phone)
    # The customer's 300 ms ends first: its decode comes first, then the agent's two.
    engine = scripted("喂你好", "您好，我是客服王芳", "这个套餐每月十元")
    asr = AsrWorker(engine)
    desk = FakeDesk({1: AGENT_URI})
    offer = DeskOffer(b.leg, b.telephony, Speaker(b.leg, Tts(), b.timeline), b.timeline, desk,
                      holding_text="请稍等", answer_s=2.0, poll_s=0.02,
                      agent_side=AgentTranscriber(asr, VAD))
    task = asyncio.ensure_future(offer.run(Handover(7, "trial", 5.0, 10.0), "request_human"))
    offered = await desk.wait_offer(1)
    desk.answer(offered.offer_id, "accepted")
    await until(lambda: any(e.name == events.CALL_BRIDGED for e in b.seen))

    b.customer.say(tone(500, 300))  # the customer's voice reaches the agent's phone (tx)
    await until(lambda: b.customer_turns())
    agent_phone.say(tone(600, 500))
    first = await until(lambda: b.agent_turns())
    agent_phone.say(tone(400, 500))  # cut short by the customer's hang-up
    await agent_phone.wait_said()
    b.customer.hang_up()
    assert await asyncio.wait_for(task, 5) == "bridged"
    await b.sink.close()
    asr.close()

    assert [e.data["text"] for e in b.agent_turns()] == ["您好，我是客服王芳", "这个套餐每月十元"]
    assert first[0].data["input_mode"] == "speech" and first[0].data["asr_confidence"] == 0.9
    assert engine.hints == [Hints()] * 3  # free speech: no phrases to snap to
    assert 600 <= engine.audio_ms[1] <= 1100  # the utterance with its pre- and post-roll
    # the customer, heard while bridged: stored as theirs (not sent to the dialogue)
    assert [e.data["text"] for e in b.customer_turns()] == ["喂你好"]
    assert ("customer", "喂你好", "speech", 0.9) in b.stored()
    # stored as the agent's turns, after the bot's holding line and the system notes
    stored = b.stored()
    assert [t for t in stored if t[0] == "agent"] == [
        ("agent", "您好，我是客服王芳", "speech", 0.9),
        ("agent", "这个套餐每月十元", "speech", 0.9)]
    assert [t[0] for t in stored].index("agent") > [t[1] for t in stored].index("已接通坐席")
    # the turn's time is the utterance's, not the decode's
    event = first[0]
    assert event.data["end_offset_ms"] - event.offset_ms in range(560, 700)
    names = [e.name for e in b.seen]
    assert names.index(events.TURN_AGENT) > names.index(events.CALL_BRIDGED)
    assert names[-1] == events.ESCALATION_ENDED  # the last words came before the end
    with sqlite_db.session() as session:
        turn = [t for t in CallRepo(session).turns(b.call_id) if t.speaker == "agent"][0]
        assert turn.ended_at is not None
        assert turn.ended_at - turn.started_at >= timedelta(milliseconds=560)


async def test_the_agent_on_the_fixed_agent_uri_is_transcribed_too(
        sqlite_db: Database) -> None:
    agent_phone = FarEnd()
    b = await bridged(sqlite_db, agent_phone)
    asr = AsrWorker(scripted("请问有什么可以帮您"))
    handoff = Handoff(b.leg, b.telephony, Speaker(b.leg, Tts(), b.timeline), b.timeline,
                      sqlite_db, agent_uri=AGENT_URI, mode="bridge", answer_s=2.0,
                      no_agent_text="抱歉", desk=FakeDesk({}),  # no agents: the fixed URI
                      agent_side=AgentTranscriber(asr, VAD))
    task = asyncio.ensure_future(handoff.run({"reason": "request_human"}))
    await until(lambda: any(e.name == events.CALL_BRIDGED for e in b.seen))
    agent_phone.say(tone(600, 500))
    await until(lambda: b.agent_turns())
    agent_phone.hang_up()
    assert await asyncio.wait_for(task, 5) == "bridge_ended"
    await b.sink.close()
    asr.close()
    assert ("agent", "请问有什么可以帮您", "speech", 0.9) in b.stored()


async def test_what_the_engine_cannot_make_out_is_not_stored(sqlite_db: Database) -> None:
    agent_phone = FarEnd()
    b = await bridged(sqlite_db, agent_phone)
    agent = await b.telephony.dial(DialRequest(AGENT_URI, f"{b.call_id}-agent"))
    assert (await agent.wait_answer(1)).result == "answered"
    engine = scripted("", "好的")
    asr = AsrWorker(engine)
    side = AgentSide(agent, asr, b.timeline, VAD)
    side.start()
    for _ in range(2):
        agent_phone.say(tone(400, 500) + bytes(8000))  # an utterance, then 500 ms silence
    await agent_phone.wait_said()
    await until(lambda: len(engine.audio_ms) == 2)
    await side.stop()
    agent_phone.say(tone(400, 500))  # after stop: not heard
    await agent_phone.wait_said()
    await asyncio.sleep(0.3)
    await b.sink.close()
    asr.close()
    await agent.hangup()
    assert (side.turns, side.unclear, side.failures) == (1, 1, 0)
    assert len(engine.audio_ms) == 2
    assert [t for t in b.stored() if t[0] == "agent"] == [("agent", "好的", "speech", 0.9)]
