"""A supervisor monitoring a call (voice/call/monitor.py, listen_in.py's `talk_to`,
voice/audio/mixing.py) with fake legs and a fake store: listening hears the customer and
the bot unheard, a whisper reaches the agent only (on a bot-only call nobody: a listen,
said as such), a barge reaches the customer over the bot and into the recording's tx
frames, the mode changes during the session, and it ends when the supervisor stops,
hangs up, or the call ends.  The fake store stands in for the database and the console:
the test writes the supervisor's requests as the console would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import pytest

from bot import events
from bot.events import CallEvent, InProcessBus
from bot.monitoring import MonitorSeen, heard_by
from tests.unit.voice.pipeline_helpers import tone
from voice.audio.frames import FRAME_BYTES, SILENCE_FRAME, rms
from voice.audio.mixing import OVERLAY_FRAMES, Overlay, minus, mix
from voice.call.monitor import CallMonitor
from voice.call.timeline import Timeline
from voice.telephony.base import DialRequest, Leg
from voice.telephony.fake import FakeLeg, FakeTelephony, FarEnd
from voice.telephony.listen_in import ListenIn

T = TypeVar("T")
SUPERVISOR_HZ, CUSTOMER_HZ, BOT_HZ, AGENT_HZ = 1200.0, 300.0, 700.0, 500.0


async def until(probe: Callable[[], T | None], timeout: float = 5.0) -> T:
    deadline = time.monotonic() + timeout
    while not (found := probe()):
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.02)
    return found


def voiced(frames: list[bytes]) -> int:
    return sum(1 for pcm in frames if rms(pcm) > 500)


def frame(hz: float) -> bytes:
    return tone(20, hz)


# --- mixing ----------------------------------------------------------------------------


def test_mix_adds_and_clips() -> None:
    loud = (20000).to_bytes(2, "little", signed=True) * 160
    assert mix(loud, loud) == (32767).to_bytes(2, "little", signed=True) * 160
    assert mix(frame(300), SILENCE_FRAME) == frame(300)


def test_an_overlay_keeps_only_its_newest_frames() -> None:
    overlay = Overlay()
    assert not overlay and overlay.take() is None
    assert overlay.over(frame(300)) == frame(300)  # nothing to add: unchanged
    for i in range(OVERLAY_FRAMES + 3):
        overlay.add(bytes([i + 1]) * FRAME_BYTES)
    assert overlay.frames_dropped == 3
    assert overlay.take() == bytes([4]) * FRAME_BYTES  # the three oldest were cut
    overlay.add(b"\x01\x00" * 80)  # half a frame: not a frame yet
    taken = [overlay.take() for _ in range(OVERLAY_FRAMES)]
    assert taken[-1] is None


def test_minus_takes_a_mixed_in_frame_out_again() -> None:
    bot, voice = frame(BOT_HZ), frame(SUPERVISOR_HZ)
    assert minus(mix(bot, voice), voice) == bot
    overlay = Overlay()
    assert overlay.mixed(bot) == (bot, None)  # nothing added: nothing to take out
    overlay.add(voice)
    sent, added = overlay.mixed(bot)
    assert added == voice and minus(sent, added) == bot
    assert minus(voice, voice) == SILENCE_FRAME  # sent alone: all of it is theirs


async def test_a_barging_supervisor_does_not_hear_themselves_but_others_hear_them() -> None:
    """Mix-minus: the customer leg's tx frames carry the supervisor's voice (the customer
    and the recording hear it); the supervisor is sent them without it, over the bot's
    words too, while an agent listening in before taking over still hears them."""
    customer, supervisor, agent = FarEnd(), FarEnd(), FarEnd()
    telephony, (c_leg, s_leg, a_leg) = await legs(customer, supervisor, agent)
    tap, agent_tap = ListenIn(c_leg, s_leg), ListenIn(c_leg, a_leg)
    tap.start()
    agent_tap.start()
    tap.talk_to(lambda: [c_leg])  # barge on a bot-only call
    mark_c, mark_s, mark_a = len(customer.heard), len(supervisor.heard), len(agent.heard)
    supervisor.say(tone(400, SUPERVISOR_HZ))
    await supervisor.wait_said()
    await asyncio.sleep(0.2)
    assert voiced([f.pcm for f in customer.heard[mark_c:]]) >= 15
    assert voiced([f.pcm for f in agent.heard[mark_a:]]) >= 15
    assert voiced([f.pcm for f in supervisor.heard[mark_s:]]) == 0  # not their own voice

    c_leg.play(tone(400, BOT_HZ))  # the bot speaks while the supervisor talks over it
    mark_s = len(supervisor.heard)
    supervisor.say(tone(400, SUPERVISOR_HZ))
    await supervisor.wait_said()
    await until(lambda: not c_leg.playing, 2)
    await asyncio.sleep(0.1)
    heard = [f.pcm for f in supervisor.heard[mark_s:] if f.pcm != SILENCE_FRAME]
    assert voiced(heard) >= 15
    assert set(heard) <= {frame(BOT_HZ)}  # the bot alone, the supervisor taken out
    tap.stop()
    agent_tap.stop()
    await telephony.close()


async def legs(*fars: FarEnd) -> tuple[FakeTelephony, list[FakeLeg]]:
    telephony = FakeTelephony()
    await telephony.start()
    out = []
    for i, far in enumerate(fars):
        telephony.prepare(far)
        leg = await telephony.dial(DialRequest(f"sip:{i}@127.0.0.1", f"leg{i}"))
        assert (await leg.wait_answer(1)).result == "answered"
        out.append(leg)
    return telephony, out


async def test_mixed_in_audio_goes_out_over_the_bot_and_does_not_hold_its_turn() -> None:
    customer = FarEnd()
    telephony, (leg,) = await legs(customer)
    leg.mix_in(tone(200, SUPERVISOR_HZ))
    assert not leg.playing  # the bot's turn is not held open by a supervisor's voice
    await until(lambda: voiced([f.pcm for f in customer.heard]) >= 9)
    leg.play(tone(400, BOT_HZ))
    leg.mix_in(tone(100, SUPERVISOR_HZ))
    await until(lambda: not leg.playing, 2)
    both = [f.pcm for f in customer.heard if f.pcm not in (SILENCE_FRAME,)]
    assert any(pcm not in (frame(BOT_HZ), frame(SUPERVISOR_HZ)) for pcm in both)  # mixed
    await telephony.close()


# --- listening and talking --------------------------------------------------------------


async def test_whisper_reaches_the_agent_only_and_barge_reaches_both() -> None:
    customer, agent, supervisor = FarEnd(), FarEnd(), FarEnd()
    telephony, (c_leg, a_leg, s_leg) = await legs(customer, agent, supervisor)
    bridge = asyncio.create_task(c_leg.bridge(a_leg))
    await until(lambda: c_leg.peer is a_leg)
    tap = ListenIn(c_leg, s_leg)
    tap.start()
    customer.say(tone(300, CUSTOMER_HZ))
    await until(lambda: voiced([f.pcm for f in supervisor.heard]) >= 10)  # listening

    tap.talk_to(lambda: [] if c_leg.peer is None else [c_leg.peer])  # whisper
    mark_c, mark_a = len(customer.heard), len(agent.heard)
    supervisor.say(tone(400, SUPERVISOR_HZ))
    await supervisor.wait_said()
    await asyncio.sleep(0.2)
    assert voiced([f.pcm for f in agent.heard[mark_a:]]) >= 15
    assert voiced([f.pcm for f in customer.heard[mark_c:]]) == 0

    tap.talk_to(lambda: [c_leg, *([c_leg.peer] if c_leg.peer else [])])  # barge
    mark_c, mark_a = len(customer.heard), len(agent.heard)
    supervisor.say(tone(400, SUPERVISOR_HZ))
    await supervisor.wait_said()
    await asyncio.sleep(0.2)
    assert voiced([f.pcm for f in agent.heard[mark_a:]]) >= 15
    assert voiced([f.pcm for f in customer.heard[mark_c:]]) >= 15

    tap.stop()  # unheard and not listening any more
    mark_c, mark_s = len(customer.heard), len(supervisor.heard)
    supervisor.say(tone(300, SUPERVISOR_HZ))
    customer.say(tone(300, CUSTOMER_HZ))
    await asyncio.sleep(0.5)
    assert voiced([f.pcm for f in customer.heard[mark_c:]]) == 0
    assert voiced([f.pcm for f in supervisor.heard[mark_s:]]) == 0
    customer.hang_up()
    await bridge
    assert c_leg.peer is None and a_leg.peer is None
    await telephony.close()


# --- the monitor loop --------------------------------------------------------------------


@dataclass
class FakeMonitors:
    """The store: sessions by id; the test plays the console (`ask`, `switch`, `stop`)."""

    sessions: dict[int, MonitorSeen] = field(default_factory=dict)
    states: list[tuple[int, str]] = field(default_factory=list)

    def ask(self, mode: str, uri: str = "sip:boss@127.0.0.1") -> int:
        sid = len(self.sessions) + 1
        self.sessions[sid] = MonitorSeen(sid, "c1", 9, "boss", uri, mode, "requested",
                                         None, None)
        return sid

    def switch(self, sid: int, mode: str) -> None:
        self.sessions[sid] = replace(self.sessions[sid], mode=mode)

    def stop(self, sid: int) -> None:
        self.sessions[sid] = replace(self.sessions[sid], state="ended", end_reason="stopped")

    def _set(self, sid: int, **changes: Any) -> MonitorSeen:
        self.sessions[sid] = replace(self.sessions[sid], **changes)
        if "state" in changes:
            self.states.append((sid, str(changes["state"])))
        return self.sessions[sid]

    async def waiting(self, call_id: str) -> MonitorSeen | None:
        return next((s for s in self.sessions.values() if s.state == "requested"), None)

    async def read(self, session_id: int) -> MonitorSeen:
        return self.sessions[session_id]

    async def dialling(self, session_id: int) -> None:
        self._set(session_id, state="dialling")

    async def active(self, session_id: int, heard_by: str) -> None:
        self._set(session_id, state="active", heard_by=heard_by)

    async def heard(self, session_id: int, heard_by: str) -> None:
        self._set(session_id, heard_by=heard_by)

    async def ended(self, session_id: int, reason: str) -> MonitorSeen:
        if self.sessions[session_id].state != "ended":
            return self._set(session_id, state="ended", end_reason=reason)
        return self.sessions[session_id]


@dataclass
class Monitored:
    customer: FarEnd
    leg: Leg
    telephony: FakeTelephony
    store: FakeMonitors
    monitor: CallMonitor
    seen: list[CallEvent]

    def named(self, name: str) -> list[CallEvent]:
        return [e for e in self.seen if e.name == name]


async def monitored(*phones: FarEnd,
                    agent: Callable[[], Leg | None] | None = None) -> Monitored:
    customer = FarEnd()
    telephony, (leg,) = await legs(customer)
    for phone in phones:
        telephony.prepare(phone)
    bus = InProcessBus()
    seen: list[CallEvent] = []
    bus.subscribe(seen.append)
    store = FakeMonitors()
    monitor = CallMonitor(leg, telephony, Timeline("c1", bus), store, poll_s=0.02,
                          wait_s=0.02, answer_s=1.0, agent=agent).start()
    return Monitored(customer, leg, telephony, store, monitor, seen)


async def test_a_supervisor_listens_then_barges_over_the_bot_then_stops() -> None:
    phone = FarEnd()
    m = await monitored(phone)
    sid = m.store.ask("listen")
    await until(lambda: m.named(events.MONITOR_STARTED))
    assert m.store.sessions[sid].state == "active"
    assert m.store.sessions[sid].heard_by == "nobody"
    assert phone.leg is not None and phone.leg.request.headers["X-Waihu-Call-Id"] == "c1"
    m.leg.play(tone(300, BOT_HZ))  # the bot speaks, the customer answers
    m.customer.say(tone(300, CUSTOMER_HZ))
    await until(lambda: voiced([f.pcm for f in phone.heard]) >= 12)
    await until(lambda: not m.leg.playing)
    mark = len(m.customer.heard)
    phone.say(tone(300, SUPERVISOR_HZ))  # listening: unheard
    await phone.wait_said()
    await asyncio.sleep(0.2)
    assert voiced([f.pcm for f in m.customer.heard[mark:]]) == 0

    m.store.switch(sid, "barge")
    await until(lambda: m.named(events.MONITOR_MODE))
    assert m.named(events.MONITOR_MODE)[0].data["heard_by"] == "customer"
    tx_frames: list[bytes] = []
    m.leg.on_frame(lambda d, f: tx_frames.append(f.pcm) if d == "tx" else None)
    phone.say(tone(400, SUPERVISOR_HZ))
    await phone.wait_said()
    await asyncio.sleep(0.2)
    assert voiced(tx_frames) >= 15  # what the recorder hangs on holds the supervisor
    assert not m.leg.playing

    m.store.stop(sid)
    await until(lambda: m.named(events.MONITOR_ENDED))
    assert phone.hung_up_by == "local"
    assert m.named(events.MONITOR_ENDED)[0].data["reason"] == "stopped"
    m.customer.hang_up()
    await m.monitor.stop()
    await m.telephony.close()


async def test_a_whisper_on_a_bot_only_call_is_a_listen_and_says_so() -> None:
    phone = FarEnd()
    m = await monitored(phone)
    sid = m.store.ask("whisper")
    started = await until(lambda: m.named(events.MONITOR_STARTED))
    assert started[0].data["heard_by"] == "nobody"
    assert "heard by nobody" in started[0].data["note"]
    mark = len(m.customer.heard)
    phone.say(tone(300, SUPERVISOR_HZ))
    await phone.wait_said()
    await asyncio.sleep(0.2)
    assert voiced([f.pcm for f in m.customer.heard[mark:]]) == 0
    assert m.store.sessions[sid].heard_by == "nobody"
    m.customer.hang_up()  # the call ends: the monitor lets go of the supervisor
    await m.monitor.stop()
    assert phone.hung_up_by == "local"
    assert m.store.sessions[sid].end_reason == "call_ended"
    await m.telephony.close()


async def test_a_whisper_reaches_an_agent_listening_in_before_taking_over() -> None:
    """The offered agent listens first (desk_offer.py: a ListenIn from the customer leg to
    their phone, `DeskOffer.listening`): the session's monitor counts them as the agent on
    the call, so a whisper reaches their phone and not the customer."""
    phone, agent = FarEnd(), FarEnd()
    listening: list[Leg] = []
    m = await monitored(phone, agent, agent=lambda: listening[0] if listening else None)
    sid = m.store.ask("whisper")
    started = await until(lambda: m.named(events.MONITOR_STARTED))
    assert started[0].data["heard_by"] == "nobody"  # nobody is listening in yet
    a_leg = await m.telephony.dial(DialRequest("sip:agent@127.0.0.1", "c1-agent-1"))
    assert (await a_leg.wait_answer(1)).result == "answered"
    listen_first = ListenIn(m.leg, a_leg)
    listen_first.start()
    listening.append(a_leg)
    changed = await until(lambda: m.named(events.MONITOR_MODE))
    assert changed[0].data["heard_by"] == "agent"
    assert m.store.sessions[sid].heard_by == "agent"
    mark_c, mark_a = len(m.customer.heard), len(agent.heard)
    phone.say(tone(400, SUPERVISOR_HZ))
    await phone.wait_said()
    await asyncio.sleep(0.2)
    assert voiced([f.pcm for f in agent.heard[mark_a:]]) >= 15
    assert voiced([f.pcm for f in m.customer.heard[mark_c:]]) == 0
    listen_first.stop()
    m.customer.hang_up()
    await m.monitor.stop()
    await m.telephony.close()


async def test_the_supervisor_hanging_up_ends_the_session_and_a_phone_not_answering_too(
        ) -> None:
    phone, silent = FarEnd(), FarEnd(answer_after_ms=None)
    m = await monitored(phone, silent)
    first = m.store.ask("listen")
    await until(lambda: m.named(events.MONITOR_STARTED))
    phone.hang_up()
    await until(lambda: m.store.sessions[first].state == "ended")
    assert m.store.sessions[first].end_reason == "supervisor_hung_up"
    second = m.store.ask("barge")
    await until(lambda: m.store.sessions[second].state == "ended", 4)
    assert m.store.sessions[second].end_reason == "no_answer"
    assert len(m.named(events.MONITOR_STARTED)) == 1  # the unanswered one never started
    m.customer.hang_up()
    await m.monitor.stop()
    await m.telephony.close()


@pytest.mark.parametrize(("mode", "agent", "heard"), [
    ("listen", True, "nobody"), ("whisper", True, "agent"), ("whisper", False, "nobody"),
    ("barge", True, "customer+agent"), ("barge", False, "customer")])
def test_who_hears_the_supervisor(mode: str, agent: bool, heard: str) -> None:
    assert heard_by(mode, agent) == heard
