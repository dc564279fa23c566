"""The in-memory telephony leg (FakeTelephony/FakeLeg) and the dial-failure table."""

from __future__ import annotations

import asyncio
import time

import pytest

from voice.audio.frames import FRAME_BYTES, FRAME_MS, SILENCE_FRAME, Frame
from voice.telephony import (
    Answered,
    DialOutcome,
    DialRequest,
    Direction,
    Dtmf,
    EarlyMedia,
    FakeLeg,
    FakeTelephony,
    FarEnd,
    Hangup,
    Leg,
    LegEvent,
    Ringing,
    classify_failure,
)

VOICE = b"\x10\x27" * (FRAME_BYTES // 2)  # one frame of a constant 10000


def speech(frames: int) -> bytes:
    return VOICE * frames


async def dial(far: FarEnd, call_id: str = "c1") -> tuple[FakeTelephony, FakeLeg]:
    telephony = FakeTelephony()
    await telephony.start()
    telephony.prepare(far)
    leg = await telephony.dial(DialRequest("sip:13800000000@trunk", call_id))
    return telephony, leg


def drain(leg: Leg) -> list[LegEvent]:
    events = []
    while not leg.events.empty():
        events.append(leg.events.get_nowait())
    return events


class Collect:
    def __init__(self, leg: Leg) -> None:
        self.frames: dict[Direction, list[Frame]] = {"rx": [], "tx": []}
        leg.on_frame(lambda direction, frame: self.frames[direction].append(frame))


@pytest.mark.parametrize(("status", "reason", "result"), [
    (486, "Busy Here", "busy"),
    (600, "Busy Everywhere", "busy"),
    (480, "Temporarily Unavailable", "no_answer"),
    (408, "Request Timeout", "no_answer"),
    (487, "Request Terminated", "no_answer"),
    (None, "", "no_answer"),
    (603, "Decline", "rejected"),
    (403, "Forbidden", "rejected"),
    (404, "Not Found", "invalid_number"),
    (604, "Does Not Exist Anywhere", "invalid_number"),
    (484, "Address Incomplete", "invalid_number"),
    (410, "Gone", "invalid_number"),
    (503, "Service Unavailable", "failed"),
    (500, "Server Internal Error", "failed"),
    (404, 'Not Found,Q.850;cause=1;text="Unallocated number"', "invalid_number"),
    (480, 'Temporarily Unavailable,Q.850;cause=20;text="Subscriber absent"', "powered_off"),
    (480, "Temporarily Unavailable,Q.850;cause=18", "no_answer"),
    (503, "Service Unavailable,Q.850;cause=17", "busy"),
    (403, "Forbidden,Q.850;cause=21", "rejected"),
    (500, "Server Internal Error,Q.850;cause=41", "failed"),  # cause not in the table
])
def test_classify_failure(status: int | None, reason: str, result: str) -> None:
    assert classify_failure(status, reason) == result


def test_dial_outcome_rejects_unknown_results() -> None:
    with pytest.raises(ValueError, match="unknown dial result"):
        DialOutcome("hung_up")


async def test_answer_then_frames_every_20_ms_on_one_timeline() -> None:
    _, leg = await dial(FarEnd(answer_after_ms=100))
    seen = Collect(leg)
    started = time.monotonic()
    outcome = await leg.wait_answer(2)
    assert outcome.result == "answered"
    assert outcome.setup_ms is not None and 90 <= outcome.setup_ms < 200
    assert 0.09 <= time.monotonic() - started < 0.2
    await asyncio.sleep(0.5)
    await leg.hangup()
    for direction in ("rx", "tx"):
        stamps = [f.timestamp_ms for f in seen.frames[direction]]
        assert stamps == list(range(0, FRAME_MS * len(stamps), FRAME_MS))
        assert 22 <= len(stamps) <= 28  # real-time pacing
    assert all(f.pcm == SILENCE_FRAME for f in seen.frames["tx"])  # silence while idle
    assert leg.rx.qsize() == len(seen.frames["rx"])
    events = drain(leg)
    assert [type(e) for e in events] == [Ringing, Answered, Hangup]
    assert isinstance(events[-1], Hangup) and events[-1].by == "local"


async def test_far_end_hears_bot_audio_with_timestamps() -> None:
    _, leg = await dial(FarEnd())
    far = leg.far
    await leg.wait_answer(1)
    leg.play(speech(10) + b"\x01\x00" * 20)  # 200 ms + a partial frame, padded
    assert leg.playing
    await asyncio.sleep(0.35)
    assert not leg.playing
    voiced = far.heard_voiced()
    assert len(voiced) == 11
    assert [f.timestamp_ms for f in voiced] == list(range(voiced[0].timestamp_ms,
                                                         voiced[0].timestamp_ms + 220, 20))
    assert voiced[-1].pcm == (b"\x01\x00" * 20).ljust(FRAME_BYTES, b"\0")
    assert far.heard_pcm().count(VOICE) == 10


async def test_barge_in_stops_playback_within_a_frame() -> None:
    _, leg = await dial(FarEnd())
    far = leg.far
    await leg.wait_answer(1)
    leg.play(speech(100))  # 2 s
    await asyncio.sleep(0.3)
    leg.stop_playback()
    assert not leg.playing
    stopped = len(far.heard_voiced())
    await asyncio.sleep(0.1)
    assert len(far.heard_voiced()) == stopped
    assert 13 <= stopped <= 17


async def test_caller_speech_keys_and_hang_up() -> None:
    _, leg = await dial(FarEnd())
    far = leg.far
    await leg.wait_answer(1)
    far.say(speech(5))
    assert far.speaking
    await far.wait_said(1)
    far.key("12")
    far.hang_up()
    far.hang_up()  # once is enough
    frames = []
    while not leg.rx.empty():
        frames.append(leg.rx.get_nowait())
    assert sum(f.pcm == VOICE for f in frames) == 5
    events = drain(leg)
    assert [e.digit for e in events if isinstance(e, Dtmf)] == ["1", "2"]
    hangups = [e for e in events if isinstance(e, Hangup)]
    assert len(hangups) == 1 and hangups[0].by == "remote"
    assert leg.closed.is_set() and far.hung_up_by == "remote"
    await leg.hangup()  # idempotent after the far end left
    leg.play(VOICE)
    assert not leg.playing


async def test_vanished_phone_is_an_rtp_timeout() -> None:
    _, leg = await dial(FarEnd())
    await leg.wait_answer(1)
    leg.far.vanish()
    assert leg.hangup_event is not None and leg.hangup_event.by == "rtp_timeout"


@pytest.mark.parametrize(("status", "result"), [(486, "busy"), (603, "rejected"),
                                                (404, "invalid_number"), (480, "no_answer")])
async def test_failed_dial(status: int, result: str) -> None:
    _, leg = await dial(FarEnd(answer_after_ms=50, fail=status))
    outcome = await leg.wait_answer(1)
    assert (outcome.result, outcome.sip_status, outcome.setup_ms) == (result, status, None)
    assert leg.closed.is_set()


async def test_no_answer_times_out_and_cancels() -> None:
    _, leg = await dial(FarEnd(answer_after_ms=None))
    started = time.monotonic()
    outcome = await leg.wait_answer(0.2)
    assert (outcome.result, outcome.sip_status) == ("no_answer", None)
    assert 0.19 <= time.monotonic() - started < 0.4
    assert leg.hangup_event is not None and leg.hangup_event.by == "local"


async def test_early_media_announcement_before_failure() -> None:
    announcement = speech(25)  # 0.5 s
    _, leg = await dial(FarEnd(fail=404, reason="Not Found", early_media=announcement))
    seen = Collect(leg)
    outcome = await leg.wait_answer(2)
    assert outcome.result == "invalid_number"
    assert outcome.early_media == announcement
    assert [f.timestamp_ms for f in seen.frames["rx"]] == list(range(0, 500, 20))
    assert any(isinstance(e, EarlyMedia) for e in drain(leg))


async def test_dtmf_and_transfer_reach_the_far_end() -> None:
    _, leg = await dial(FarEnd())
    await leg.wait_answer(1)
    await leg.send_dtmf("1#")
    assert leg.far.digits_received == "1#"
    assert await leg.transfer("sip:agent@pbx") is True
    assert leg.far.transferred_to == "sip:agent@pbx"
    assert leg.hangup_event is not None and leg.hangup_event.by == "transfer"
    assert await leg.transfer("sip:agent@pbx") is False


async def test_refused_transfer_keeps_the_call() -> None:
    _, leg = await dial(FarEnd(accept_transfer=False))
    await leg.wait_answer(1)
    assert await leg.transfer("sip:agent@pbx") is False
    assert not leg.closed.is_set()
    await leg.hangup()


async def test_bridge_relays_both_ways_until_a_side_hangs_up() -> None:
    telephony = FakeTelephony()
    await telephony.start()
    customer, agent = telephony.prepare(FarEnd()), telephony.prepare(FarEnd())
    cust_leg = await telephony.dial(DialRequest("sip:138@trunk", "cust"))
    agent_leg = await telephony.dial(DialRequest("sip:agent@pbx", "agent"))
    await asyncio.gather(cust_leg.wait_answer(1), agent_leg.wait_answer(1))
    recorded = Collect(cust_leg)
    bridge = asyncio.create_task(cust_leg.bridge(agent_leg))
    customer.say(speech(5))
    agent.say(b"\x20\x4e" * (FRAME_BYTES // 2) * 5)
    await asyncio.sleep(0.3)
    agent.hang_up()
    await asyncio.wait_for(bridge, 1)
    assert cust_leg.closed.is_set()
    assert agent.heard_pcm().count(VOICE) == 5
    assert customer.heard_pcm().count(b"\x20\x4e" * (FRAME_BYTES // 2)) == 5
    assert sum(f.pcm == VOICE for f in recorded.frames["rx"]) == 5
    assert sum(f.pcm != SILENCE_FRAME for f in recorded.frames["tx"]) == 5
    await telephony.close()


async def test_script_decides_per_request() -> None:
    telephony = FakeTelephony(lambda req: FarEnd(fail=486 if "busy" in req.uri else None))
    await telephony.start()
    busy = await telephony.dial(DialRequest("sip:busy@trunk", "a"))
    fine = await telephony.dial(DialRequest("sip:138@trunk", "b"))
    assert (await busy.wait_answer(1)).result == "busy"
    assert (await fine.wait_answer(1)).result == "answered"
    await telephony.close()
    assert fine.closed.is_set()


def test_free_port_leaves_the_tls_port_above_it_free_and_avoids_ephemeral_ports() -> None:
    """baresip binds SIP/TLS one above the SIP port: a CI run once failed on that bind."""
    import socket

    from voice.telephony.base import free_port

    port = free_port()
    assert 20000 <= port < 32000  # below Linux's ephemeral range (32768-60999)
    held = []
    try:
        for p, kind in [(port, socket.SOCK_DGRAM), (port, socket.SOCK_STREAM),
                        (port + 1, socket.SOCK_STREAM)]:
            sock = socket.socket(socket.AF_INET, kind)
            held.append(sock)
            sock.bind(("127.0.0.1", p))  # raises if it was not free
        # With port+1 taken, the pair starting at that port is never handed out.
        others = {free_port() for _ in range(200)}
        assert port not in others and port + 1 not in others
    finally:
        for sock in held:
            sock.close()
