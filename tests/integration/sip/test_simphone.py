"""The simphone answering real SIP callers on 127.0.0.1: baresip-python in this process (one
runtime per test) and Debian's baresip over ctrl_tcp. The personas' phrases are real
espeak-ng speech, synthesised once for the module before any event loop runs."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import wave
from collections import deque
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from baresip import (
    Account,
    CallBusy,
    CallDeclined,
    CallFailed,
    CallTimeout,
    Config,
    DigitEvent,
    Runtime,
    UserAgent,
)
from baresip.errors import AudioNotActive, AudioRestarted

from bot.personas import Persona, parse_persona
from tests.sip_peers import DebianBaresip, free_port, tone, write_wav
from voice.audio.frames import FRAME_BYTES, SILENCE_FRAME, rms, split_frames
from voice.simphone.phone import ANNOUNCEMENTS, CallRecord, SimPhone, SimPhoneOptions
from voice.tts.espeak import EspeakSynthesizer

pytestmark = pytest.mark.sip

GREETING = "喂，你好，我是张先生。"
# What "the bot" (the test's caller) has said, by X-Waihu-Call-Id, as simulate's BotWords
# gives it from the call events.
BOT_SAID: dict[str, list[str]] = {}


def _persona(pid: str, dial: str = "answer", ring_s: float = 0.2,
             turns: list[dict[str, Any]] | None = None) -> Persona:
    return parse_persona({"id": pid, "dial": dial, "ring_s": ring_s, "turns": turns or []})


PERSONAS: dict[str, Persona] = {
    "2001": _persona("talks_keys_hangs_up", turns=[{"say": GREETING}, {"dtmf": "12"},
                                                   {"hangup": True}]),
    "2002": _persona("busy", "busy"),
    "2003": _persona("rejects", "reject", ring_s=0.3),
    "2004": _persona("never_answers", "no_answer"),
    "2005": _persona("empty_number", "announce:invalid_number"),
    "2006": _persona("switched_off", "announce:powered_off"),
    "2007": _persona("interrupts", turns=[{"barge_in": "等一下"}]),
    "2008": parse_persona({"id": "asked_back", "ring_s": 0.2, "turns": [{"say": "转人工"}],
                           "answers": {"转接人工客服吗": "是的"}}),
    "2200": _persona("debian_greets", turns=[{"say": GREETING}, {"hangup": True}]),
    **{str(2100 + n): _persona(f"quick_{n}", ring_s=0.1, turns=[{"say": "好的"},
                                                                 {"hangup": True}])
       for n in range(10)},
}


@pytest.fixture(scope="module")
def phrase_audio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, bytes]]:
    """Every phrase synthesised by espeak-ng once, on the main thread, outside any loop."""
    # espeak-ng, not the customers' default Kokoro voice: the timings and envelopes below
    # were measured on it, and this tests the SIP/RTP behaviour, not the voice.
    sim = SimPhone(PERSONAS, cache_dir=tmp_path_factory.mktemp("tts"),
                   synthesizer=EspeakSynthesizer())
    sim.prepare()
    yield sim.audio


@pytest.fixture
async def phone(phrase_audio: dict[str, bytes], tmp_path: Path) -> AsyncIterator[SimPhone]:
    options = SimPhoneOptions(idle_hangup_s=8.0, max_call_s=40.0)
    sim = SimPhone(PERSONAS, record_dir=tmp_path / "rec", report=tmp_path / "calls.jsonl",
                   options=options, bot_words=lambda call_id: BOT_SAID.get(call_id, []))
    sim.audio.update(phrase_audio)
    await sim.start()
    yield sim
    await sim.close()


@pytest.fixture
async def ua() -> AsyncIterator[UserAgent]:
    """The calling side: a baresip-python runtime (one per process, so one per test)."""
    runtime = Runtime()
    await runtime.start(Config(net_interface="127.0.0.1", max_concurrent_calls=None,
                               extra_config_text=f"sip_listen 127.0.0.1:{free_port()}\n"))
    try:
        yield await UserAgent.create(runtime, Account(
            user="bot", domain="127.0.0.1", password="", reg_interval=0,
            audio_codecs=("PCMA", "PCMU")))
    finally:
        await runtime.close()


class Caller:
    """One outbound call driven like the bot: a 20 ms pump writes the queued script (silence
    when empty) and reads everything heard, stamped with the monotonic clock."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.script: deque[bytes] = deque()
        self.heard: list[tuple[float, bytes]] = []
        self.digits: list[DigitEvent] = []
        self.closed = asyncio.Event()
        self.close_text = ""
        self.last_script_frame: float | None = None
        call.on(self._event)
        call.on_dtmf(self.digits.append)
        self.task = asyncio.get_running_loop().create_task(self._pump())

    def _event(self, event: Any) -> None:
        if event.event.name == "CALL_CLOSED":
            self.close_text = event.text
            self.closed.set()

    def say(self, pcm: bytes) -> None:
        self.script.extend(split_frames(pcm))

    async def _pump(self) -> None:
        t0, tick = time.monotonic(), 0
        buffer = b""
        while not self.closed.is_set():
            try:
                if self.script:
                    self.call.audio.write(self.script.popleft())
                    if not self.script:
                        self.last_script_frame = time.monotonic() + 0.02
                else:
                    self.call.audio.write(SILENCE_FRAME)
                buffer += self.call.audio.read(3200)
            except (AudioNotActive, AudioRestarted):
                pass
            now = time.monotonic()
            while len(buffer) >= FRAME_BYTES:
                self.heard.append((now, buffer[:FRAME_BYTES]))
                buffer = buffer[FRAME_BYTES:]
            tick += 1
            await asyncio.sleep(max(0.0, t0 + tick * 0.02 - time.monotonic()))

    def voiced(self, after: float = 0.0, level: float = 300.0) -> list[tuple[float, bytes]]:
        return [(t, pcm) for t, pcm in self.heard if t > after and rms(pcm) > level]

    async def wait_heard(self, after: float, seconds: float, timeout: float) -> float:
        """Wait until voiced audio has been heard after `after` and then `seconds` of quiet;
        return when that audio began."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            voiced = self.voiced(after)
            if voiced and time.monotonic() - voiced[-1][0] >= seconds:
                return voiced[0][0]
            await asyncio.sleep(0.05)
        raise AssertionError("nothing heard")

    async def stop(self) -> None:
        self.task.cancel()  # the pump may already have ended with the call
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def envelope(pcm: bytes) -> list[float]:
    return [rms(f) for f in split_frames(pcm)]


def correlation(a: list[float], b: list[float]) -> float:
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    ma, mb = sum(a) / n, sum(b) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    va = math.sqrt(sum((x - ma) ** 2 for x in a))
    vb = math.sqrt(sum((y - mb) ** 2 for y in b))
    return cov / (va * vb) if va and vb else 0.0


def best_correlation(heard: list[float], sent: list[float], lags: int = 10) -> float:
    return max(correlation(heard[lag:], sent) for lag in range(lags))


async def next_record(phone: SimPhone, timeout: float = 10.0) -> CallRecord:
    return await asyncio.wait_for(phone.completed.get(), timeout)


# -- answered calls --------------------------------------------------------------------------


async def test_answer_says_after_the_bot_stops_keys_dtmf_and_hangs_up(
        phone: SimPhone, ua: UserAgent) -> None:
    call = await ua.dial(phone.uri("2001"))
    await call.wait_established(timeout=5)
    caller = Caller(call)
    caller.say(tone(440, 1.5))  # the bot's "greeting"
    onset = await caller.wait_heard(0.0, 0.8, timeout=10)
    tone_end = caller.last_script_frame
    assert tone_end is not None
    # The persona waits for ~700 ms of silence, then speaks; loopback + jitter buffer on top.
    assert 0.6 <= onset - tone_end <= 1.6, onset - tone_end
    greeting = phone.audio[GREETING]
    heard = b"".join(pcm for t, pcm in caller.heard if t >= onset - 0.2)
    assert best_correlation(envelope(heard), envelope(greeting)) > 0.7  # the TTS, not noise
    reply_at = time.monotonic()
    caller.say(tone(440, 0.6))  # the bot answers; after it stops come the keys, then BYE
    await asyncio.wait_for(caller.closed.wait(), 10)
    assert [d.digit for d in caller.digits] == ["1", "2"]
    await caller.stop()

    record = await next_record(phone)
    assert (record.persona, record.final_status, record.codec) == ("talks_keys_hangs_up", 200,
                                                                  "PCMA")
    assert (record.hangup_by, record.hangup_reason, record.turns_done) == ("simphone",
                                                                          "persona", 3)
    assert [o.kind for o in record.own_audio] == ["say", "dtmf"]
    assert len(record.bot_speech) == 2 and record.answered_ms is not None
    say, keys = record.own_audio
    first_end = record.bot_speech[0].end_ms
    assert first_end is not None and 650 <= say.start_ms - first_end <= 850
    second_end = record.bot_speech[1].end_ms
    assert second_end is not None and 650 <= keys.start_ms - second_end <= 850
    assert say.gap_ms is not None and 0 < say.gap_ms < 1000  # our tone answered the say
    assert (reply_at - onset) > 0
    assert record.greeting_latency_ms is not None and record.greeting_latency_ms < 500
    assert record.recording is not None
    with wave.open(record.recording) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
        assert wav.getnframes() > 8000 * 3


async def test_barge_in_while_the_bot_speaks_and_the_bot_hangs_up(
        phone: SimPhone, ua: UserAgent) -> None:
    call = await ua.dial(phone.uri("2007"))
    await call.wait_established(timeout=5)
    caller = Caller(call)
    started = time.monotonic()
    caller.say(tone(440, 3.0))
    onset = await caller.wait_heard(started + 0.3, 0.3, timeout=5)
    assert caller.script, "the persona must speak while the bot is still talking"
    assert 0.7 <= onset - started <= 1.5, onset - started
    await call.hangup()
    await caller.stop()
    record = await next_record(phone)
    assert (record.hangup_by, record.hangup_reason) == ("bot", "bye")
    assert [o.kind for o in record.own_audio] == ["barge_in"]
    assert record.bot_speech and 750 <= record.own_audio[0].start_ms - \
        record.bot_speech[0].start_ms <= 900


async def test_the_persona_answers_what_the_bot_asks_back(phone: SimPhone,
                                                         ua: UserAgent) -> None:
    said = BOT_SAID.setdefault("c-asked", [])
    call = await ua.dial(phone.uri("2008"), headers={"X-Waihu-Call-Id": "c-asked"})
    await call.wait_established(timeout=5)
    caller = Caller(call)
    said.append("请问是张先生本人吗？")
    caller.say(tone(440, 1.0))
    first = await caller.wait_heard(0.0, 0.5, timeout=10)  # 转人工, the persona's one turn
    said.append("跟您确认一下，您是要转接人工客服吗？")  # asked back: not in the script
    caller.say(tone(440, 1.0))
    await caller.wait_heard(first + 1.5, 0.5, timeout=10)
    said.append("好的，正在为您转接人工客服，请稍候。")  # no cue: nothing more is said
    caller.say(tone(440, 1.0))
    await asyncio.sleep(2.5)
    await call.hangup()
    await caller.stop()
    record = await next_record(phone)
    assert [(o.kind, o.text) for o in record.own_audio] == [("say", "转人工"), ("say", "是的")]


async def test_ten_concurrent_calls(phone: SimPhone, ua: UserAgent) -> None:
    numbers = [str(2100 + n) for n in range(10)]
    calls = await asyncio.gather(*(ua.dial(phone.uri(n)) for n in numbers))
    await asyncio.gather(*(c.wait_established(timeout=5) for c in calls))
    callers = [Caller(c) for c in calls]
    for caller in callers:
        caller.say(tone(440, 0.5))
    await asyncio.wait_for(asyncio.gather(*(c.closed.wait() for c in callers)), 15)
    for caller in callers:
        assert caller.voiced(level=1000), "each caller heard its persona"
        await caller.stop()
    records = [await next_record(phone) for _ in numbers]
    assert sorted(r.number for r in records) == numbers
    assert {(r.hangup_by, r.hangup_reason, r.final_status) for r in records} == {
        ("simphone", "persona", 200)}
    assert phone.report is not None and len(phone.report.read_text().splitlines()) == 10


# -- failures ---------------------------------------------------------------------------------


async def test_busy_reject_and_unknown_number(phone: SimPhone, ua: UserAgent) -> None:
    busy, reject, unknown = [await ua.dial(phone.uri(n)) for n in ("2002", "2003", "9999")]
    with pytest.raises(CallBusy):
        await busy.wait_established(timeout=5)
    started = time.monotonic()
    with pytest.raises(CallDeclined) as declined:
        await reject.wait_established(timeout=5)
    assert declined.value.status == 603 and time.monotonic() - started >= 0.25
    with pytest.raises(CallFailed) as failed:
        await unknown.wait_established(timeout=5)
    assert failed.value.status == 404
    records = {r.number: r for r in [await next_record(phone) for _ in range(3)]}
    assert {n: r.final_status for n, r in records.items()} == {"2002": 486, "2003": 603,
                                                               "9999": 404}


async def test_no_answer_rings_until_the_caller_gives_up(phone: SimPhone, ua: UserAgent
                                                         ) -> None:
    call = await ua.dial(phone.uri("2004"))
    with pytest.raises(CallTimeout):
        await call.wait_established(timeout=1.5)
    record = await next_record(phone)
    assert (record.final_status, record.hangup_by, record.hangup_reason) == (487, "caller",
                                                                             "cancel")
    assert record.answered_ms is None


async def test_announcements_play_as_early_media_then_404_and_480(
        phone: SimPhone, ua: UserAgent) -> None:
    async def dial(number: str) -> tuple[Caller, BaseException]:
        call = await ua.dial(phone.uri(number))
        caller = Caller(call)
        try:
            await call.wait_established(timeout=20)
        except CallFailed as exc:
            await caller.stop()
            return caller, exc
        raise AssertionError("an announcement must not be answered")

    (empty, empty_exc), (off, off_exc) = await asyncio.gather(dial("2005"), dial("2006"))
    for caller, exc, (text, status) in ((empty, empty_exc, ANNOUNCEMENTS["invalid_number"]),
                                        (off, off_exc, ANNOUNCEMENTS["powered_off"])):
        assert isinstance(exc, CallFailed) and exc.status == status
        voiced = caller.voiced(level=300)
        assert len(voiced) * 0.02 >= 1.0, "at least a second of announcement was heard"
        # Played twice: the heard audio is about twice the TTS long.
        spoken = len(phone.audio[text]) / 16000
        assert voiced[-1][0] - voiced[0][0] >= 1.5 * spoken
    records = {r.number: r for r in [await next_record(phone) for _ in range(2)]}
    assert records["2005"].final_status == 404 and records["2006"].final_status == 480
    assert [o.kind for o in records["2005"].own_audio] == ["announcement"] * 2


# -- an independent caller: Debian baresip -----------------------------------------------------


async def test_debian_baresip_caller(phone: SimPhone, tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "bot.wav", tone(440, 1.5, amp=12000) + bytes(2 * 8000 * 8))
    caller = DebianBaresip(tmp_path / "debian", wav, user="bot")
    await caller.start()
    try:
        await caller.command("dial", phone.uri("2200"))
        await caller.wait_event("CALL_ESTABLISHED", timeout=5)
        await caller.wait_event("CALL_CLOSED", timeout=10)
        record = await next_record(phone)
    finally:
        await caller.stop()
    assert (record.persona, record.codec, record.hangup_by) == ("debian_greets", "PCMA",
                                                               "simphone")
    assert record.bot_speech and record.own_audio[0].kind == "say"
    first_end = record.bot_speech[0].end_ms
    assert first_end is not None and 650 <= record.own_audio[0].start_ms - first_end <= 850
    heard = caller.heard_pcm()
    frames = envelope(heard)
    loud = [i for i, level in enumerate(frames) if level > 300]
    assert loud and loud[-1] * 0.02 > 2.0, "the greeting came after the 1.5 s tone"
    speech = b"".join(split_frames(heard)[i] for i in range(len(frames)) if i * 0.02 > 1.9)
    assert best_correlation(envelope(speech), envelope(phone.audio[GREETING]), 60) > 0.7
