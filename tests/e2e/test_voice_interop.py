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
starts is stopped (by PID) when it ends.
"""

from __future__ import annotations

import asyncio
import hashlib
import wave
from array import array
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.campaigns.definition import BotVoice, CampaignDefinition, Trunk, load_definition
from bot.campaigns.dialer import CallJob, Dialer
from bot.campaigns.registry import pause_campaign, save_campaign, start_campaign
from bot.channel import RasaEndpoint
from bot.store import ContactRepo, Database
from bot.store.models import Call, CallAttempt, TranscriptTurn
from bot.store.vocab import OUTCOMES
from tests.integration.sip.conftest import require_sip_peers
from tests.sip_peers import (
    DebianBaresip,
    Kamailio,
    Route,
    goertzel,
    read_wav,
    speech_wav,
    tone,
    write_wav,
)
from voice.audio.frames import FRAME_BYTES, SAMPLE_RATE, rms
from voice.gateway import CallReport, Gateway, GatewayConfig
from voice.session import SessionConfig
from voice.stack import VoiceParts, VoiceSettings, voice_parts
from voice.tts.voices import synthesizer_for
from voice.tts.warm import warm_campaign

require_sip_peers()

pytestmark = pytest.mark.sip

ROOT = Path(__file__).resolve().parents[2]
MARKETING = ROOT / "examples" / "campaigns" / "marketing.yml"
ESPEAK = BotVoice(engine="espeak")
# Inside marketing.yml's calling windows (09:00-12:00 Asia/Shanghai) on the next day.
NOW = (datetime.now(UTC) + timedelta(days=1)).replace(hour=2, minute=0, second=0,
                                                       microsecond=0)


# -- audio helpers -------------------------------------------------------------------------
def voiced_s(pcm: bytes, level: float = 300) -> float:
    """Seconds of 20 ms frames louder than *level*."""
    frames = [pcm[i:i + FRAME_BYTES] for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES)]
    return sum(1 for f in frames if rms(f) > level) * 0.02


def stereo_channels(path: Path) -> tuple[bytes, bytes]:
    """(left, right) of a 16-bit stereo WAV as mono PCM."""
    with wave.open(str(path), "rb") as wav:
        assert wav.getnchannels() == 2 and wav.getsampwidth() == 2
        assert wav.getframerate() == SAMPLE_RATE
        values = array("h")
        values.frombytes(wav.readframes(wav.getnframes()))
    return values[0::2].tobytes(), values[1::2].tobytes()


def compose_wav(path: Path, parts: list[tuple[float, bytes]], seconds: float) -> Path:
    """A mono WAV of *seconds* with each PCM part placed at its offset, silence elsewhere."""
    pcm = bytearray(int(seconds * SAMPLE_RATE) * 2)
    for at, part in parts:
        start = int(at * SAMPLE_RATE) * 2
        part = part[: len(pcm) - start]
        pcm[start:start + len(part)] = part
    return write_wav(path, bytes(pcm))


def spoken(tmp: Path, name: str, text: str) -> bytes:
    """*text* said by espeak-ng (Mandarin), trimmed to its speech (3 s at most)."""
    return read_wav(speech_wav(tmp / f"{name}.wav", text, seconds=3.0))


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The phones' microphones, made once before any event loop runs.

    customer: silent through the bot's greeting, then 是我, then 不需要 (32 s in all: Debian
    baresip hangs up when its WAV ends).  caller_tone: 4 s of silence (the bot's transfer
    prompt) then a 1000 Hz tone; agent_tone: 2000 Hz.
    """
    root = tmp_path_factory.mktemp("voice-interop-audio")
    customer = compose_wav(root / "customer.wav",
                           [(7.0, spoken(root, "shi_wo", "是我")),
                            (19.0, spoken(root, "bu_xuyao", "不需要"))], 32.0)
    return {
        "customer": customer,
        "caller_tone": compose_wav(root / "caller_tone.wav", [(4.0, tone(1000, 12.0, 12000))],
                                   16.0),
        "agent_tone": compose_wav(root / "agent_tone.wav", [(0.0, tone(2000, 25.0, 12000))],
                                  25.0),
        "silence": compose_wav(root / "silence.wav", [], 25.0),
    }


# -- database, Rasa, peers -----------------------------------------------------------------
@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('voice-interop-db') / 'interop.db'}"
    Database(url).upgrade()
    return url


@pytest.fixture(scope="module")
def rasa(db_url: str) -> Iterator[RasaEndpoint]:
    """One real Rasa server and action server (~40 s to start) for the module."""
    from bot.services import RasaStack

    with RasaStack(db_url) as running:
        yield running.endpoint


@dataclass
class Peers:
    """Starts Debian baresip phones and kamailio proxies in a test's folder; stops them all."""

    root: Path
    phones: list[DebianBaresip] = field(default_factory=list)
    proxies: list[Kamailio] = field(default_factory=list)

    async def phone(self, user: str, wav: Path, answermode: str = "auto") -> DebianBaresip:
        peer = DebianBaresip(self.root / f"baresip-{user}-{len(self.phones)}", wav, user=user,
                             answermode=answermode)
        self.phones.append(peer)
        return await peer.start()

    def proxy(self, routes: dict[str, Route] | None = None, ring_ms: int = 3000) -> Kamailio:
        proxy = Kamailio(self.root / f"kamailio-{len(self.proxies)}", routes, ring_ms=ring_ms)
        self.proxies.append(proxy)
        return proxy.start()

    async def stop(self) -> None:
        for phone in self.phones:
            await phone.stop()
        await asyncio.gather(*(asyncio.to_thread(proxy.stop) for proxy in self.proxies))


@pytest.fixture
async def peers(tmp_path: Path) -> AsyncIterator[Peers]:
    started = Peers(tmp_path / "peers")
    try:
        yield started
    finally:
        await started.stop()


@pytest.fixture(scope="module")
def voice_var(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One prompt cache for the module's gateways."""
    return tmp_path_factory.mktemp("voice-interop-var")


@pytest.fixture
async def parts(voice_var: Path) -> AsyncIterator[VoiceParts]:
    """The gateway's SIP stack (one baresip-python runtime per test), ASR and TTS, with the
    campaign's prompts synthesised beforehand as `waihu campaign start` does (else the
    gateway makes them when it claims the contact, before the dial)."""
    async with voice_parts(VoiceSettings(var=voice_var)) as running:
        await asyncio.to_thread(warm_campaign, None, MARKETING, running.cache,
                                voices=lambda _: synthesizer_for(ESPEAK))
        yield running


class Scripted:
    """A dialogue stand-in: the customer wants a human at once."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    async def send(self, sender: str, message: str,
                   metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        self.messages.append(message)
        if message == "/call_started":
            return [{"text": "正在为您转接人工客服"},
                    {"custom": {"transfer": {"reason": "request_human"}}}]
        return [{"text": "再见"}, {"custom": {"hangup": True}}]


class NoDialogue:
    """For calls that are never answered: any message is a test failure."""

    async def send(self, sender: str, message: str,
                   metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        raise AssertionError(f"dialogue used on an unanswered call: {message}")


def campaign(db: Database, name: str, trunk_uri: str, contacts: dict[str, str]) -> Dialer:
    """marketing.yml as campaign *name* dialling *trunk_uri*, with one contact per phone
    (phone -> name), started at NOW.  Returns a dialer."""
    defn: CampaignDefinition = load_definition(MARKETING)
    # espeak-ng: these tests are about SIP; each has a cache of its own, where Kokoro would
    # synthesise the campaign's prompts (over a minute) before the first dial.
    defn = defn.model_copy(update={"name": name, "trunk": Trunk(uri=trunk_uri),
                                   "voice": ESPEAK})
    campaign_id = save_campaign(db, defn)
    with db.session() as session:
        repo = ContactRepo(session)
        for phone, person in contacts.items():
            repo.add(campaign_id, phone, name=person, gender="male")
    start_campaign(db, name, NOW)
    return Dialer(db, f"interop-{name}", lease_s=600)


def claim_all(dialer: Dialer, n: int) -> list[CallJob]:
    jobs = dialer.claim(NOW, n)
    assert len(jobs) == n, [j.phone for j in jobs]
    return jobs


def gateway(db: Database, parts: VoiceParts, dialogue: Any, tmp_path: Path,
            **session: Any) -> Gateway:
    config = GatewayConfig(gateway_id="interop", capacity=5, ring_timeout_s=15.0,
                           session=SessionConfig(recordings_dir=tmp_path / "recordings",
                                                 max_call_s=60.0, **session))
    return Gateway(db, parts.telephony, parts.asr, parts.tts, dialogue, config)


async def place(gw: Gateway, job: CallJob, timeout: float = 75.0) -> CallReport:
    report = await asyncio.wait_for(gw.place_call(job, NOW), timeout)
    print(f"{job.phone}: {report.as_json()}")
    return report


def attempt_of(db: Database, call_id: str) -> tuple[str | None, datetime | None]:
    with db.session() as session:
        attempt = session.scalar(select(CallAttempt).where(CallAttempt.call_id == call_id))
        assert attempt is not None
        return attempt.dial_result, attempt.completed_at


def recording_of(db: Database, call_id: str) -> Path:
    """The call's stereo recording, checked against the sha256 stored with it."""
    with db.session() as session:
        call = session.get(Call, call_id)
        assert call is not None and call.recording_path and call.recording_sha256
        path, digest = Path(call.recording_path), call.recording_sha256
    assert path.is_file()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    return path


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
def level(pcm: bytes, freq: float) -> float:
    return goertzel(pcm, freq)


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
