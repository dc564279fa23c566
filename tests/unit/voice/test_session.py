"""CallSession between the in-memory telephony leg and fakes of Rasa, ASR and TTS.

The leg paces 20 ms frames in real time, so the timings asserted here (barge-in, greeting)
are what the session really does on the event loop; the database is real (SQLite).
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
import wave
from array import array
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot import channel
from bot.store import CallRepo, Database, EscalationRepo
from bot.store.models import Call
from tests.conftest import seed_call
from voice.asr.base import AsrEngine, AsrWorker, Hints, Recognizer, Transcript
from voice.audio.frames import FRAME_MS, SAMPLE_RATE
from voice.session import CallSession, SessionConfig, is_customer_turn
from voice.telephony.base import DialRequest
from voice.telephony.fake import FakeTelephony, FarEnd


def tone(ms: int, freq: float = 440.0, level: float = 0.3) -> bytes:
    n = SAMPLE_RATE * ms // 1000
    return array("h", (int(level * 32767 * math.sin(2 * math.pi * freq * i / SAMPLE_RATE))
                       for i in range(n))).tobytes()


class ScriptedRasa:
    """Answers each message with the next scripted reply; records what it was sent.

    Like the real deciding action, a reply to a customer turn carries its classification
    (added when the script gives none) unless *actions_from* says the action server is gone
    from that message on: Rasa then answers without it."""

    def __init__(self, *replies: list[dict[str, Any]], fail_at: int | None = None,
                 actions_from: int | None = None) -> None:
        self.replies = list(replies)
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.fail_at = fail_at
        self.actions_from = actions_from

    async def send(self, sender: str, message: str,
                   metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        self.sent.append((message, dict(metadata or {})))
        if self.fail_at is not None and len(self.sent) > self.fail_at:
            raise ConnectionError("rasa went away")
        reply = self.replies.pop(0) if self.replies else [{"custom": {"hangup": True}}]
        if self.actions_from is not None and len(self.sent) > self.actions_from:
            return [r for r in reply if "classified" not in (r.get("custom") or {})]
        if is_customer_turn(message) and not any("classified" in (r.get("custom") or {})
                                               for r in reply):
            reply = [{"custom": channel.classified_payload("scripted", 1.0)}, *reply]
        return reply


class ScriptedAsr(AsrEngine):
    name = "scripted"

    def __init__(self, *transcripts: Transcript) -> None:
        self.transcripts = list(transcripts)
        self.hints: list[Hints] = []
        self.audio_ms: list[int] = []

    def open(self, hints: Hints) -> Recognizer:
        self.hints.append(hints)
        engine = self

        class _Rec(Recognizer):
            def __init__(self) -> None:
                self.audio = bytearray()

            def feed(self, pcm: bytes) -> None:
                self.audio += pcm

            def finish(self) -> Transcript:
                engine.audio_ms.append(len(self.audio) // 2 * 1000 // SAMPLE_RATE)
                return engine.heard(engine.audio_ms[-1])
        return _Rec()

    def heard(self, audio_ms: int) -> Transcript:
        """The next scripted transcript (an utterance of *audio_ms*)."""
        return self.transcripts.pop(0) if self.transcripts else Transcript(
            "", 0.0, "scripted", unclear=True)


class ToneSpeech:
    """TTS stand-in: each text is a tone of `ms_per_char` per character."""

    def __init__(self, ms_per_char: int = 40) -> None:
        self.ms_per_char = ms_per_char
        self.said: list[str] = []

    async def speech(self, text: str) -> bytes:
        self.said.append(text)
        return tone(max(200, len(text) * self.ms_per_char), 600)


def said(text: str, confidence: float = 0.9, snapped: bool = False) -> Transcript:
    return Transcript(text, confidence, "scripted", raw=text, snapped=snapped)


def listen(expect: str = "yes_no", timeout_s: float = 3, dtmf_max: int = 0,
           hints: tuple[str, ...] = ("是的", "不是")) -> dict[str, Any]:
    return {"custom": {"listen": {"expect": expect, "hints": list(hints),
                                  "dtmf_max": dtmf_max, "timeout_s": timeout_s}}}


HANGUP = {"custom": {"hangup": True}}


async def start(db: Database, far: FarEnd, rasa: ScriptedRasa, asr: AsrEngine,
                tmp_path: Path, tts: ToneSpeech | None = None,
                agent: FarEnd | None = None, greeting: str | None = None, **config: Any
                ) -> tuple[CallSession, asyncio.Task[Any]]:
    call = seed_call(db)
    telephony = FakeTelephony()
    await telephony.start()
    telephony.prepare(far)
    if agent is not None:
        telephony.prepare(agent)
    leg = await telephony.dial(DialRequest("sip:13812345678@trunk", call.id))
    assert (await leg.wait_answer(2)).result == "answered"
    session = CallSession(
        call_id=call.id, leg=leg, dialogue=rasa, asr=AsrWorker(asr), tts=tts or ToneSpeech(),
        db=db, metadata={"call_id": call.id}, telephony=telephony, greeting=greeting,
        config=SessionConfig(recordings_dir=tmp_path, **config))
    return session, asyncio.create_task(session.run())


async def wait_bot_quiet(far: FarEnd, quiet_ms: int = 200, timeout: float = 10) -> None:
    """Until the bot has spoken and then been silent for *quiet_ms*."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        voiced = far.heard_voiced()
        if voiced and far.heard[-1].timestamp_ms - voiced[-1].timestamp_ms >= quiet_ms:
            return
        await asyncio.sleep(0.02)
    raise TimeoutError("the bot never went quiet")


async def test_greeting_starts_at_answer_and_speech_goes_to_rasa(
        sqlite_db: Database, tmp_path: Path) -> None:
    far = FarEnd()
    rasa = ScriptedRasa([{"text": "您好，请问您是张先生本人吗？"}, listen()],
                        [{"text": "好的，再见。"}, HANGUP])
    asr = ScriptedAsr(said("是的", 0.93, snapped=True))
    session, task = await start(sqlite_db, far, rasa, asr, tmp_path)
    await wait_bot_quiet(far)
    far.say(tone(600))
    result = await asyncio.wait_for(task, 15)

    assert result.ended_by == "bot"
    assert result.first_audio_ms is not None and result.first_audio_ms < 150
    assert rasa.sent[0][0] == "/call_started"
    message, meta = rasa.sent[1]
    assert message == "是的"
    assert meta["input_mode"] == "speech" and meta["asr_confidence"] == 0.93
    assert meta["asr_snapped"] is True
    assert asr.hints[0].expect == "yes_no" and "是的" in asr.hints[0].phrases
    # Escalation and do-not-call are heard at every question, not only where listed.
    assert {"转人工", "别再打了"} <= set(asr.hints[0].phrases)
    assert 500 <= asr.audio_ms[0] <= 1200  # the utterance with pre- and post-roll
    assert far.hung_up_by == "local"
    with sqlite_db.session() as s:
        turns = CallRepo(s).turns(session.call_id)
        spoken = [t for t in turns if t.speaker == "customer"]
        assert [(t.text, t.input_mode, t.asr_confidence) for t in spoken] == [
            ("是的", "speech", 0.93)]
        assert [t.text for t in turns if t.speaker == "bot"] == [
            "您好，请问您是张先生本人吗？", "好的，再见。"]
        call = s.get(Call, session.call_id)
        assert call is not None and call.recording_sha256 == result.recording_sha256


async def test_barge_in_stops_the_bot_within_100_ms(sqlite_db: Database,
                                                     tmp_path: Path) -> None:
    far = FarEnd()
    long_text = "这是一段很长的介绍" * 10  # 3.6 s of tone
    rasa = ScriptedRasa([{"text": long_text}, listen(timeout_s=5)], [{"text": "好"}, HANGUP])
    asr = ScriptedAsr(said("多少钱"))
    session, task = await start(sqlite_db, far, rasa, asr, tmp_path)
    while not far.heard_voiced():
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)
    assert far.leg is not None
    speech_at = far.leg.now_ms()
    far.say(tone(800))
    result = await asyncio.wait_for(task, 15)

    voiced = [f.timestamp_ms for f in far.heard_voiced()]
    during = [t for t in voiced if t < speech_at + 1000]
    assert during, "the bot said nothing"
    assert max(during) - speech_at <= 100, f"bot kept talking {max(during) - speech_at} ms"
    assert rasa.sent[1][0] == "多少钱"
    assert result.barge_in_stops_ms
    with sqlite_db.session() as s:
        bot = [t.text for t in CallRepo(s).turns(session.call_id) if t.speaker == "bot"]
    assert bot[0].endswith("（被打断）")


async def test_disclosure_plays_through_talk_over_and_is_repeated(
        sqlite_db: Database, tmp_path: Path) -> None:
    far = FarEnd()
    disclosure = "本产品每月十元，可随时取消。"  # 14 chars → 1.4 s at 100 ms per char
    rasa = ScriptedRasa(
        [{"text": disclosure}, {"custom": {"barge_in": False, "disclosure": ["price"]}},
         listen(timeout_s=0.4)],
        [{"text": "再见"}, HANGUP])
    session, task = await start(sqlite_db, far, rasa, ScriptedAsr(), tmp_path,
                                tts=ToneSpeech(ms_per_char=100))
    while not far.heard_voiced():
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    far.say(tone(400))  # talks over the disclosure once
    result = await asyncio.wait_for(task, 15)

    voiced_ms = len(far.heard_voiced()) * FRAME_MS
    assert voiced_ms >= 2 * 1400 - 100, "the disclosure was cut or not repeated"
    assert rasa.sent[1][0] == "/silence_timeout"  # the talk-over was not an answer
    assert "disclosures_interrupted" not in rasa.sent[1][1]
    assert result.ended_by == "bot"
    with sqlite_db.session() as s:
        texts = [t.text for t in CallRepo(s).turns(session.call_id)]
    assert "客户插话，重复声明" in texts


async def test_talking_over_the_repeat_tells_rasa(sqlite_db: Database,
                                                  tmp_path: Path) -> None:
    far = FarEnd()
    rasa = ScriptedRasa(
        [{"text": "声明" * 5}, {"custom": {"barge_in": False, "disclosure": ["price"]}},
         listen(timeout_s=0.4)], [HANGUP])
    session, task = await start(sqlite_db, far, rasa, ScriptedAsr(), tmp_path,
                                tts=ToneSpeech(ms_per_char=100))
    while not far.heard_voiced():
        await asyncio.sleep(0.02)
    far.say(tone(2600, level=0.2))  # over the first play and into the repeat
    await asyncio.wait_for(task, 15)
    assert rasa.sent[1][1]["disclosures_interrupted"] == ["price"]


async def test_silence_unclear_and_keyed_digits(sqlite_db: Database, tmp_path: Path) -> None:
    far = FarEnd()
    rasa = ScriptedRasa(
        [{"text": "请说"}, listen(timeout_s=0.3)],
        [{"text": "请再说一遍"}, listen(timeout_s=3)],
        [{"text": "请输入后四位"}, listen("digits", timeout_s=3, dtmf_max=4)],
        [{"text": "请按井号结束"}, listen("digits", timeout_s=3, dtmf_max=6)],
        [{"text": "再见"}, HANGUP])
    asr = ScriptedAsr(Transcript("", 0.2, "scripted", raw="嗯啊", unclear=True))
    session, task = await start(sqlite_db, far, rasa, asr, tmp_path)
    while len(rasa.sent) < 2:
        await asyncio.sleep(0.02)
    await wait_bot_quiet(far)
    far.say(tone(500))
    while len(rasa.sent) < 3:
        await asyncio.sleep(0.02)
    await wait_bot_quiet(far)
    far.key("1234")
    while len(rasa.sent) < 4:
        await asyncio.sleep(0.02)
    await wait_bot_quiet(far)
    far.key("56#")
    await asyncio.wait_for(task, 15)

    messages = [m for m, _ in rasa.sent]
    assert messages[1] == "/silence_timeout"
    assert messages[2] == "/asr_unclear"
    assert messages[3] == "/dtmf" + json.dumps({"digits": "1234"})
    assert messages[4] == "/dtmf" + json.dumps({"digits": "56"})
    assert rasa.sent[3][1]["input_mode"] == "dtmf"
    with sqlite_db.session() as s:
        turns = [(t.text, t.input_mode) for t in CallRepo(s).turns(session.call_id)
                 if t.speaker == "customer"]
    assert turns == [("[听不清] 嗯啊", "speech"), ("[按键 1234]", "dtmf"),
                     ("[按键 56]", "dtmf")]


async def test_caller_hangs_up_mid_turn_keeps_recording_and_transcript(
        sqlite_db: Database, tmp_path: Path) -> None:
    far = FarEnd()
    rasa = ScriptedRasa([{"text": "您好，这是一段介绍" * 3}, listen()])
    session, task = await start(sqlite_db, far, rasa, ScriptedAsr(), tmp_path)
    far.say(tone(300))
    while not far.heard_voiced():
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.4)
    far.hang_up()
    result = await asyncio.wait_for(task, 10)

    assert result.ended_by == "caller"
    with sqlite_db.session() as s:
        call = s.get(Call, session.call_id)
        assert call is not None
        assert call.outcome == "hung_up_early" and call.ended_at is not None
        assert call.recording_path and Path(call.recording_path).exists()
        texts = [t.text for t in CallRepo(s).turns(session.call_id)]
    assert texts[-1] == "客户挂机"
    with wave.open(call.recording_path) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, SAMPLE_RATE)
        stereo = array("h", wav.readframes(wav.getnframes()))
    left, right = stereo[0::2], stereo[1::2]
    assert max(abs(v) for v in left) > 5000  # the caller's tone
    assert max(abs(v) for v in right) > 5000  # the bot's speech


async def test_words_cut_short_by_the_hang_up_still_reach_rasa(
        sqlite_db: Database, tmp_path: Path) -> None:
    """A survey answer said as the caller hangs up counts (the VAD never heard its end)."""
    far = FarEnd()
    rasa = ScriptedRasa([{"text": "请打分"}, listen("score", timeout_s=5, hints=("四分",))],
                        [{"text": "感谢评价，再见"}, HANGUP])
    asr = ScriptedAsr(said("4"))
    session, task = await start(sqlite_db, far, rasa, asr, tmp_path)
    await wait_bot_quiet(far)
    far.say(tone(800))
    await asyncio.sleep(0.6)
    far.hang_up()
    result = await asyncio.wait_for(task, 10)

    assert result.ended_by == "caller"
    assert [m for m, _ in rasa.sent] == ["/call_started", "4", "/caller_hung_up"]
    assert rasa.sent[1][1]["caller_hung_up"] is True
    assert 300 <= asr.audio_ms[0] <= 900  # what was heard up to the hang-up
    with sqlite_db.session() as s:
        turns = [(t.speaker, t.text) for t in CallRepo(s).turns(session.call_id)]
    assert ("customer", "4") in turns
    assert ("bot", "感谢评价，再见") not in turns  # never said
    assert turns[-1] == ("system", "客户挂机")


async def test_digits_keyed_before_the_hang_up_still_reach_rasa(
        sqlite_db: Database, tmp_path: Path) -> None:
    far = FarEnd()
    rasa = ScriptedRasa([{"text": "请输入后四位"}, listen("digits", timeout_s=5, dtmf_max=4)])
    session, task = await start(sqlite_db, far, rasa, ScriptedAsr(), tmp_path,
                                dtmf_interdigit_s=3.0)
    await wait_bot_quiet(far)
    far.key("12")  # the inter-digit timer is still running when the caller goes
    await asyncio.sleep(0.1)
    far.hang_up()
    await asyncio.wait_for(task, 10)
    assert [m for m, _ in rasa.sent][-2] == "/dtmf" + json.dumps({"digits": "12"})


async def test_an_unclear_last_utterance_is_written_but_not_sent(
        sqlite_db: Database, tmp_path: Path) -> None:
    far = FarEnd()
    rasa = ScriptedRasa([{"text": "请问方便吗"}, listen(timeout_s=5)])
    asr = ScriptedAsr(Transcript("", 0.2, "scripted", raw="嗯啊", unclear=True))
    session, task = await start(sqlite_db, far, rasa, asr, tmp_path)
    await wait_bot_quiet(far)
    far.say(tone(600))
    await asyncio.sleep(0.5)
    far.hang_up()
    await asyncio.wait_for(task, 10)
    assert [m for m, _ in rasa.sent] == ["/call_started", "/caller_hung_up"]
    with sqlite_db.session() as s:
        texts = [t.text for t in CallRepo(s).turns(session.call_id) if t.speaker == "customer"]
    assert texts == ["[听不清] 嗯啊"]


async def test_an_agent_asked_for_while_hanging_up_is_marked_failed(
        sqlite_db: Database, tmp_path: Path) -> None:
    far = FarEnd()
    rasa = ScriptedRasa([{"text": "请问方便吗"}, listen(timeout_s=5)],
                        [{"text": "正在为您转接"}, {"custom": {"transfer": {"reason": "x"}}}])
    session, task = await start(sqlite_db, far, rasa, ScriptedAsr(said("转人工")), tmp_path,
                                agent=FarEnd(), agent_uri="sip:agent@127.0.0.1")
    with sqlite_db.session() as s:
        call = s.get(Call, session.call_id)
        assert call is not None
        escalation_id = EscalationRepo(s).add(call.id, call.campaign_id, call.contact_id,
                                              "request_human", {}).id
    await wait_bot_quiet(far)
    far.say(tone(600))
    await asyncio.sleep(0.5)
    far.hang_up()
    await asyncio.wait_for(task, 10)
    assert [m for m, _ in rasa.sent][-2] == "转人工"
    with sqlite_db.session() as s:
        from bot.store.models import Escalation
        row = s.get(Escalation, escalation_id)
        assert row is not None and row.status == "failed"
        texts = [t.text for t in CallRepo(s).turns(session.call_id)]
    assert "客户已挂机，未能转接坐席" in texts


async def test_dialogue_failure_keeps_recording_and_says_sorry(
        sqlite_db: Database, tmp_path: Path) -> None:
    far = FarEnd()
    rasa = ScriptedRasa([{"text": "您好"}, listen(timeout_s=0.3)], fail_at=1)
    tts = ToneSpeech()
    session, task = await start(sqlite_db, far, rasa, ScriptedAsr(), tmp_path, tts=tts)
    result = await asyncio.wait_for(task, 15)

    assert result.ended_by == "failure" and "ConnectionError" in (result.error or "")
    assert tts.said[-1] == SessionConfig().failure_text
    assert result.recording_path and Path(result.recording_path).exists()
    with sqlite_db.session() as s:
        call = s.get(Call, session.call_id)
        assert call is not None and call.recording_sha256 == result.recording_sha256
        assert call.summary.get("interrupted", "").startswith("ConnectionError")
        assert any(t.text.startswith("系统故障") for t in CallRepo(s).turns(session.call_id))


async def test_transfer_bridges_to_the_agent_and_recording_goes_on(
        sqlite_db: Database, tmp_path: Path) -> None:
    far, agent = FarEnd(), FarEnd(answer_after_ms=100)
    rasa = ScriptedRasa([{"text": "正在为您转接人工"},
                         {"custom": {"transfer": {"reason": "request_human"}}}])
    session, task = await start(sqlite_db, far, rasa, ScriptedAsr(), tmp_path, agent=agent,
                                agent_uri="sip:agent@127.0.0.1")
    with sqlite_db.session() as s:
        call = s.get(Call, session.call_id)
        assert call is not None
        EscalationRepo(s).add(call.id, call.campaign_id, call.contact_id, "request_human", {})
    while agent.leg is None or agent.leg.hangup_event is not None or not agent.heard:
        await asyncio.sleep(0.02)
    agent.say(tone(600, 1000))  # the agent speaks to the customer
    far.say(tone(600, 300))  # and the customer to the agent
    await asyncio.sleep(1.0)
    far.hang_up()
    result = await asyncio.wait_for(task, 10)

    assert result.ended_by == "bridge_ended"
    assert agent.leg.request.headers["X-Waihu-Call-Id"] == session.call_id
    assert len(agent.heard_voiced()) >= 20  # the customer's voice reached the agent
    assert agent.hung_up_by == "local"
    with sqlite_db.session() as s:
        from bot.store.models import Escalation
        assert s.scalars(select(Escalation).where(Escalation.status == "pending")).all() == []
        texts = [t.text for t in CallRepo(s).turns(session.call_id)]
    assert "已接通坐席" in texts
    assert result.recording_path is not None
    with wave.open(result.recording_path) as wav:
        stereo = array("h", wav.readframes(wav.getnframes()))
    right = stereo[1::2]
    tail = right[-SAMPLE_RATE * 2:]  # the agent's voice is on the bot channel
    assert max(abs(v) for v in tail) > 5000


async def test_no_agent_apologises_and_marks_the_escalation_failed(
        sqlite_db: Database, tmp_path: Path) -> None:
    far = FarEnd()
    rasa = ScriptedRasa([{"text": "正在为您转接"},
                         {"custom": {"transfer": {"reason": "complaint"}}}])
    tts = ToneSpeech()
    session, task = await start(sqlite_db, far, rasa, ScriptedAsr(), tmp_path, tts=tts,
                                agent=FarEnd(fail=486), agent_uri="sip:agent@127.0.0.1")
    with sqlite_db.session() as s:
        call = s.get(Call, session.call_id)
        assert call is not None
        escalation = EscalationRepo(s).add(call.id, call.campaign_id, call.contact_id,
                                           "complaint", {})
        escalation_id = escalation.id
    result = await asyncio.wait_for(task, 15)
    assert result.ended_by == "bot"
    assert tts.said[-1] == SessionConfig().no_agent_text
    with sqlite_db.session() as s:
        from bot.store.models import Escalation
        row = s.get(Escalation, escalation_id)
        assert row is not None and row.status == "failed"


class SlowRasa(ScriptedRasa):
    async def send(self, sender: str, message: str,
                   metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        await asyncio.sleep(0.4)  # a slow /call_started must not delay the first words
        return await super().send(sender, message, metadata)


async def test_known_greeting_starts_before_rasa_answers_and_is_said_once(
        sqlite_db: Database, tmp_path: Path) -> None:
    far = FarEnd()
    rasa = SlowRasa([{"text": "您好，这里是示例通信。"}, {"text": "请问您是张先生吗？"},
                     HANGUP])
    tts = ToneSpeech()
    call = seed_call(sqlite_db)
    telephony = FakeTelephony()
    await telephony.start()
    telephony.prepare(far)
    leg = await telephony.dial(DialRequest("sip:13812345678@trunk", call.id))
    await leg.wait_answer(2)
    session = CallSession(call_id=call.id, leg=leg, dialogue=rasa, asr=AsrWorker(ScriptedAsr()),
                          tts=tts, db=sqlite_db, metadata={}, greeting="您好，这里是示例通信。",
                          config=SessionConfig(recordings_dir=tmp_path))
    result = await asyncio.wait_for(session.run(), 15)
    assert result.first_audio_ms is not None and result.first_audio_ms < 150
    assert tts.said == ["您好，这里是示例通信。", "请问您是张先生吗？"]


# --- carrier announcements after the answer ------------------------------------------------

EMPTY_NUMBER = "您拨打的号码是空号，请查证后再拨。"


async def test_an_announcement_after_the_answer_ends_the_call_and_rasa_never_hears_it(
        sqlite_db: Database, tmp_path: Path) -> None:
    far = FarEnd()
    rasa = ScriptedRasa([{"text": "您好，请问您是张先生本人吗？"}, listen(timeout_s=5)])
    session, task = await start(sqlite_db, far, rasa, ScriptedAsr(said(EMPTY_NUMBER, 0.7)),
                                tmp_path)
    far.say(tone(1500))  # the exchange's recording, from the answer on
    loop = asyncio.get_running_loop()
    began = loop.time()
    result = await asyncio.wait_for(task, 10)

    assert result.ended_by == "announcement"
    assert result.announcement == "invalid_number" and result.announcement_text == EMPTY_NUMBER
    assert loop.time() - began < 4  # hung up once heard, not after the 5 s listen timeout
    assert [m for m, _ in rasa.sent] == ["/call_started"]
    assert far.hung_up_by == "local"
    assert result.recording_path and Path(result.recording_path).exists()
    with sqlite_db.session() as s:
        assert not [t for t in CallRepo(s).turns(session.call_id) if t.speaker == "customer"]
        call = s.get(Call, session.call_id)
        assert call is not None and call.outcome is None  # not hung_up_early


async def test_an_announcement_cut_off_by_the_exchange_hanging_up_is_still_heard(
        sqlite_db: Database, tmp_path: Path) -> None:
    far = FarEnd()
    rasa = ScriptedRasa([{"text": "您好"}, listen(timeout_s=5)])
    asr = ScriptedAsr(said("您拨打的电话正在通话中，请稍后再拨"))
    _, task = await start(sqlite_db, far, rasa, asr, tmp_path)
    far.say(tone(3000))
    await asyncio.sleep(1.5)
    far.hang_up()  # mid-sentence: the VAD never hears its end
    result = await asyncio.wait_for(task, 10)
    assert (result.ended_by, result.announcement) == ("announcement", "busy")
    assert 1000 <= asr.audio_ms[0] <= 2200  # what was heard up to the hang-up


class SlowStartRasa(ScriptedRasa):
    """/call_started takes a while; records the messages whose handling finished."""

    def __init__(self, *replies: list[dict[str, Any]]) -> None:
        super().__init__(*replies)
        self.finished: list[str] = []

    async def send(self, sender: str, message: str,
                   metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        if message == "/call_started":
            await asyncio.sleep(1.5)
        replies = await super().send(sender, message, metadata)
        self.finished.append(message)
        return replies


async def test_after_an_announcement_the_request_with_rasa_is_let_finish(
        sqlite_db: Database, tmp_path: Path) -> None:
    """Its actions write to the call: they must be done before the gateway drops it."""
    far = FarEnd()
    rasa = SlowStartRasa([{"text": "您好"}, listen(timeout_s=5)])
    _, task = await start(sqlite_db, far, rasa, ScriptedAsr(said(EMPTY_NUMBER)), tmp_path,
                          greeting="您好")  # said at once, while /call_started is with Rasa
    far.say(tone(400))
    result = await asyncio.wait_for(task, 10)
    assert result.ended_by == "announcement"
    assert rasa.finished == ["/call_started"]


async def test_once_a_reply_is_taken_the_words_are_no_announcement(
        sqlite_db: Database, tmp_path: Path) -> None:
    far = FarEnd()
    rasa = ScriptedRasa([{"text": "请问您是张先生吗？"}, listen(timeout_s=3)],
                        [{"text": "请问现在方便吗？"}, listen(timeout_s=3)],
                        [{"text": "再见"}, HANGUP])
    asr = ScriptedAsr(said("是的"), said(EMPTY_NUMBER))
    _, task = await start(sqlite_db, far, rasa, asr, tmp_path)
    await wait_bot_quiet(far)
    far.say(tone(400))
    while len(rasa.sent) < 2:
        await asyncio.sleep(0.02)
    await wait_bot_quiet(far)
    far.say(tone(400))
    result = await asyncio.wait_for(task, 15)
    assert result.ended_by == "bot" and result.announcement is None
    assert [m for m, _ in rasa.sent] == ["/call_started", "是的", EMPTY_NUMBER]


async def test_words_after_the_window_are_no_announcement(sqlite_db: Database,
                                                          tmp_path: Path) -> None:
    far = FarEnd()
    rasa = ScriptedRasa([{"text": "请问您是张先生吗？"}, listen(timeout_s=3)],
                        [{"text": "再见"}, HANGUP])
    _, task = await start(sqlite_db, far, rasa, ScriptedAsr(said(EMPTY_NUMBER)), tmp_path,
                          announcement_window_s=0.3)
    await wait_bot_quiet(far)
    far.say(tone(400))
    result = await asyncio.wait_for(task, 15)
    assert result.ended_by == "bot" and result.announcement is None
    assert [m for m, _ in rasa.sent] == ["/call_started", EMPTY_NUMBER]


# --- the transcript is written off the event loop ------------------------------------------


class SlowTurns:
    """Wraps CallRepo.add_turn: every write takes `delay_s` (a loaded database) and records
    the thread it ran on; a turn whose text is in `fail` raises."""

    def __init__(self, monkeypatch: Any, delay_s: float, fail: tuple[str, ...] = ()) -> None:
        self.delay_s = delay_s
        self.fail = fail
        self.threads: list[str] = []
        self.texts: list[str] = []
        original = CallRepo.add_turn

        def add_turn(repo: CallRepo, call_id: str, speaker: str, text: str,
                     *args: Any, **kwargs: Any) -> Any:
            self.threads.append(threading.current_thread().name)
            self.texts.append(text)
            time.sleep(self.delay_s)
            if text in self.fail:
                raise RuntimeError("database says no")
            return original(repo, call_id, speaker, text, *args, **kwargs)
        monkeypatch.setattr(CallRepo, "add_turn", add_turn)


async def loop_stalls(stop: asyncio.Event) -> float:
    """The longest the event loop was kept from a 10 ms timer (s), until *stop*."""
    loop = asyncio.get_running_loop()
    worst, last = 0.0, loop.time()
    while not stop.is_set():
        await asyncio.sleep(0.01)
        now = loop.time()
        worst, last = max(worst, now - last - 0.01), now
    return worst


async def test_turns_are_written_off_the_loop_in_order(sqlite_db: Database, tmp_path: Path,
                                                       monkeypatch: Any) -> None:
    slow = SlowTurns(monkeypatch, delay_s=0.3)
    far = FarEnd()
    rasa = ScriptedRasa([{"text": "您好。"}, {"text": "请问您是张先生吗？"}, listen(timeout_s=3)],
                        [{"text": "好的。"}, {"text": "再见。"}, HANGUP])
    session, task = await start(sqlite_db, far, rasa, ScriptedAsr(said("是的")), tmp_path)
    stop = asyncio.Event()
    watch = asyncio.create_task(loop_stalls(stop))
    await wait_bot_quiet(far)
    far.say(tone(400))
    result = await asyncio.wait_for(task, 15)
    stop.set()
    stalled = await watch

    assert stalled < 0.2, f"the event loop stalled {stalled * 1000:.0f} ms"
    assert slow.threads and threading.main_thread().name not in slow.threads
    assert result.ended_by == "bot"
    with sqlite_db.session() as s:
        turns = CallRepo(s).turns(session.call_id)
        assert [(t.speaker, t.text) for t in turns] == [
            ("bot", "您好。"), ("bot", "请问您是张先生吗？"), ("customer", "是的"),
            ("bot", "好的。"), ("bot", "再见。")]
        assert [t.seq for t in turns] == [1, 2, 3, 4, 5]
        assert all(a.started_at <= b.started_at for a, b in zip(turns, turns[1:],
                                                                 strict=False))


async def test_a_failing_call_has_written_every_turn_when_it_reports(
        sqlite_db: Database, tmp_path: Path, monkeypatch: Any, caplog: Any) -> None:
    slow = SlowTurns(monkeypatch, delay_s=0.3, fail=("客户无应答",))
    far = FarEnd()
    rasa = ScriptedRasa([{"text": "您好"}, listen(timeout_s=0.3)], fail_at=1)
    session, task = await start(sqlite_db, far, rasa, ScriptedAsr(), tmp_path)
    with caplog.at_level("ERROR", logger="waihu.session"):
        result = await asyncio.wait_for(task, 15)

    assert result.ended_by == "failure"
    assert result.transcript_failures == 1
    assert slow.texts[-2].startswith("系统故障")  # written before run() returned
    assert slow.texts[-1] == SessionConfig().failure_text  # what the customer heard
    with sqlite_db.session() as s:
        texts = [t.text for t in CallRepo(s).turns(session.call_id)]
        call = s.get(Call, session.call_id)
        assert call is not None and call.recording_sha256 == result.recording_sha256
    # The failed write is logged with the call id; the turns after it are not lost.
    assert texts == ["您好", "系统故障：ConnectionError", SessionConfig().failure_text]
    failed = [r for r in caplog.records if r.getMessage().startswith("call.transcript_failed")]
    assert failed and f"call_id={session.call_id}" in failed[0].getMessage()
