"""Helpers of the SIP end-to-end tests (test_voice_interop.py and the desk, monitor and
hand-back tests built on it): the campaign they call for, the phones' audio, the peers a test
starts, the dialogue stand-ins, and reading a call back.  Their fixtures are in conftest.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import wave
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.campaigns.definition import BotVoice, CampaignDefinition, Trunk, load_definition
from bot.campaigns.dialer import CallJob, Dialer
from bot.campaigns.registry import pause_campaign, save_campaign, start_campaign
from bot.events import CallEvent
from bot.store import ContactRepo, Database
from bot.store.models import Call, CallAttempt, Campaign
from tests.sip_peers import (
    DebianBaresip,
    Kamailio,
    Route,
    goertzel,
    read_wav,
    speech_wav,
    write_wav,
)
from voice.audio.frames import FRAME_BYTES, SAMPLE_RATE, rms
from voice.gateway import CallReport, Gateway, GatewayConfig
from voice.session import SessionConfig
from voice.stack import VoiceParts

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



def level(pcm: bytes, freq: float) -> float:
    return goertzel(pcm, freq)


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
    (phone -> name), started at NOW, the only campaign running.  Returns a dialer."""
    defn: CampaignDefinition = load_definition(MARKETING)
    # espeak-ng: these tests are about SIP, and Kokoro would
    # synthesise the campaign's prompts (over a minute) before the first dial.
    defn = defn.model_copy(update={"name": name, "trunk": Trunk(uri=trunk_uri),
                                   "voice": ESPEAK})
    campaign_id = save_campaign(db, defn)
    with db.session() as session:  # the run's tests share the database: claim this one's
        running = list(session.scalars(select(Campaign.name).where(
            Campaign.status == "running")))
    for other in running:
        pause_campaign(db, other)
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


async def first(seen: list[CallEvent], name: str, timeout: float,
                where: Callable[[CallEvent], bool] = lambda event: True) -> CallEvent:
    """The first event *name* (that *where* accepts) in *seen*, waiting up to *timeout*."""
    deadline = time.monotonic() + timeout
    while not any(e.name == name and where(e) for e in seen):
        if time.monotonic() > deadline:
            raise TimeoutError(name)
        await asyncio.sleep(0.05)
    return next(e for e in seen if e.name == name and where(e))


SAMPLE_BYTES_PER_MS = 16  # 8 kHz, 16-bit mono


def span(pcm: bytes, start_ms: int, end_ms: int) -> bytes:
    return pcm[start_ms * SAMPLE_BYTES_PER_MS:end_ms * SAMPLE_BYTES_PER_MS]
