"""The campaign's voice in the gateway, and the contact's own prompts synthesised at the claim:
a real TtsWorker (spawned worker processes) with a tone engine per voice, the fake telephony."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from bot.campaigns.definition import BotVoice
from bot.store import Database
from tests.unit.campaigns.test_dialer import NOW, add_campaign, add_contacts
from tests.unit.voice.test_session import HANGUP, ScriptedAsr, ScriptedRasa
from tests.unit.voice.test_tts_worker import ToneSynthesizer
from voice.asr.base import AsrWorker
from voice.gateway import Gateway, GatewayConfig
from voice.session import SessionConfig
from voice.telephony.base import DialRequest
from voice.telephony.fake import FakeLeg, FakeTelephony, FarEnd
from voice.tts.cache import PromptCache
from voice.tts.espeak import Synthesizer
from voice.tts.worker import TtsWorker

IDENTITY = "请问您是王女士本人吗？"  # utter_ask_identity for 王芳 (female)


class NamedTone(ToneSynthesizer):
    """A tone engine that says which voice it is (module level: the worker unpickles it)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    @property
    def voice_id(self) -> str:
        return f"tone/{self.name}"


def tones(voice: BotVoice) -> Synthesizer:
    return NamedTone(voice.name)


class WatchedTelephony(FakeTelephony):
    """Notes, at each dial, what the TTS had done so far."""

    def __init__(self, at_dial: dict[str, object], look: dict[str, object]) -> None:
        super().__init__()
        self.at_dial = at_dial
        self.look = look

    async def dial(self, request: DialRequest) -> FakeLeg:
        self.at_dial.update({k: f() for k, f in self.look.items()})  # type: ignore[operator]
        return await super().dial(request)


async def test_the_contacts_prompts_are_ready_before_the_dial_in_the_campaigns_voice(
        sqlite_db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    campaign_id = add_campaign(sqlite_db, name="male", voice={"name": "zm_yunxi"})
    add_contacts(sqlite_db, campaign_id, ["13800001234"], name="王芳", gender="female")
    folder = tmp_path / "tts"
    male, default = PromptCache(folder, NamedTone("zm_yunxi")), PromptCache(folder, NamedTone("x"))
    async with TtsWorker(PromptCache(folder, NamedTone("x"))) as tts:
        at_dial: dict[str, object] = {}
        telephony = WatchedTelephony(at_dial, {
            "identity_on_disk": lambda: male.path(IDENTITY).exists(),
            "identity_in_memory": lambda: tts.cache.voiced(male.synthesizer).peek(IDENTITY),
            "synthesised": lambda: tts.stats["synthesised"]})
        await telephony.start()
        far = FarEnd(answer_after_ms=50)
        telephony.prepare(far)
        rasa = ScriptedRasa([{"text": IDENTITY}, HANGUP])
        gateway = Gateway(sqlite_db, telephony, AsrWorker(ScriptedAsr()), tts, rasa,
                          GatewayConfig(gateway_id="gw-voice", ring_timeout_s=5,
                                        session=SessionConfig(recordings_dir=tmp_path)),
                          clock=lambda: NOW, voices=tones)
        job, = gateway.dialer.claim(NOW, 1)
        with caplog.at_level(logging.INFO, logger="waihu"):
            report = await asyncio.wait_for(gateway.place_call(job, NOW), 30)
        stats = dict(tts.stats)

    assert report.dial_result == "answered" and report.session is not None
    # Synthesised at the claim, before the dial, in the campaign's (male) voice...
    assert at_dial["identity_on_disk"] is True
    assert at_dial["identity_in_memory"] == NamedTone("zm_yunxi").synthesize(IDENTITY)
    assert not default.path(IDENTITY).exists()
    assert male.path("您好，这里是示例客服中心。").exists()  # the greeting, a fixed prompt
    # ...and nothing once the call was dialled: every word came from memory.
    assert stats["synthesised"] == at_dial["synthesised"]
    assert stats["synthesised"] > 0
    assert stats["memory_hits"] >= 2 and stats["file_hits"] == 0  # greeting, identity
    assert "tts.unprepared" not in caplog.text
    assert any(r.getMessage().startswith(f"tts.contact_ready call_id={job.call_id} ")
               for r in caplog.records)
    heard = b"".join(frame.pcm for frame in far.heard)
    assert NamedTone("zm_yunxi").synthesize(IDENTITY) in heard


async def test_a_planned_prompt_that_was_not_prepared_is_still_said_and_logged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The last resort: a worker synthesises it while the call waits, and says so."""
    cache = PromptCache(tmp_path, NamedTone("x"))
    cache.remember_responses({IDENTITY: "utter_ask_identity"})
    async with TtsWorker(cache) as tts:
        with caplog.at_level(logging.INFO, logger="waihu.tts"):
            pcm = await tts.speech(IDENTITY)
    assert pcm == NamedTone("x").synthesize(IDENTITY)
    warning = next(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert warning.startswith("tts.unprepared response=utter_ask_identity ")
    assert "voice=tone/x" in warning


async def test_prepare_loads_what_is_cached_and_reports_what_failed(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path, NamedTone("x"))
    cache.warm(["好的。"], load=False)
    async with TtsWorker(cache) as tts:
        voice = tts.voice(NamedTone("x"))
        report = await voice.prepare({"好的。": "utter_ok", "再见。": "utter_bye",
                                      "坏了。": "utter_broken"})
        assert cache.peek("好的。") is not None and cache.peek("再见。") is not None
    assert (report["prompts"], report["synthesised"], report["failed"]) == (3, 1, 1)


async def test_a_long_preparation_does_not_time_out_and_a_calls_words_go_first(
        tmp_path: Path) -> None:
    """Each synthesis's timeout runs from its start, not from its place in the queue; a text a
    call is waiting for is synthesised before the rest of another contact's preparation."""
    cache = PromptCache(tmp_path, ToneSynthesizer(slow=0.4))
    texts = {f"第{n}句。": f"utter_{n}" for n in range(6)}  # 2.4 s of synthesis in one worker
    async with TtsWorker(cache, processes=1, timeout_s=2.0) as tts:
        await tts.start()
        loop = asyncio.get_running_loop()
        preparing = asyncio.ensure_future(tts.prepare(texts))
        await asyncio.sleep(0.1)  # the first sentence is under way
        await tts.speech("明天上午十点。")
        said_at = loop.time()
        report = await preparing
        prepared_at = loop.time()
    assert (report["synthesised"], report["failed"]) == (6, 0)
    assert prepared_at - said_at > 1.0  # most of the preparation came after the call's words
