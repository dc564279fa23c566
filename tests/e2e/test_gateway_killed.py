"""Fault test through the real processes: a gateway killed with SIGKILL in the middle of a
call (issue 13, items 7 and 9).

A real Rasa server and action server (bot.services.RasaStack), a SQLite database shared by
every process, a virtual customer (SimPhone, SIP/RTP on 127.0.0.1) and gateway processes
(tests/e2e/fault_gateway.py: baresip, Whisper, TTS) with a 6 s lease.  The first gateway
dials the customer and is killed once the customer has answered a question.  Then:

- the partial recording (a playable WAV up to the last second or so) and the transcript
  written so far are on disk and in the database;
- nobody dials the number while the dead gateway's lease runs: a claim gets nothing and the
  number's lock is there;
- a second gateway, started at once, finalises the partial recording at its start and links
  it to its call; when the lease expires its dialer reclaims the attempt as `failed`, the
  contact is due again after the campaign's retry delay for `failed` (1 minute here), and
  the second gateway dials it again then, never while the first call's lease held (the
  virtual customer got exactly two INVITEs, the second after the lease ran out).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import select

from bot.campaigns.dialer import Dialer
from bot.campaigns.registry import save_campaign, start_campaign
from bot.demo import load_sample
from bot.personas import parse_persona
from bot.store import CallRepo, ContactRepo, Database
from bot.store.models import Call, CallAttempt, Contact, PhoneLock
from voice.audio.wavstream import partial_path
from voice.simphone.call import CallRecord, SimPhoneOptions

pytestmark = [pytest.mark.rasa, pytest.mark.sip, pytest.mark.asr]

ROOT = Path(__file__).resolve().parents[2]
LEASE_S = 6
NUMBER = "13900001111"
PERSONA = {"id": "kept_talking", "dial": "answer", "ring_s": 1.0,
           "turns": [{"say": "是的是我"}, {"say": "可以你说吧"}, {"silent_s": 15},
                     {"hangup": True}]}
T = TypeVar("T")


def utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass
class Scenario:
    db: Database
    recordings: Path
    first_call: str = ""
    partial_frames: int = 0  # what the killed gateway left, as a WAV
    turns_at_kill: list[tuple[str, str]] = field(default_factory=list)
    lease_at_kill: datetime | None = None
    killed_at: datetime | None = None
    claimed_during_lease: list[str] = field(default_factory=list)
    locked_during_lease: bool = False
    simphone: list[CallRecord] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)


async def wait_until(what: str, check: Callable[[], T | None], timeout: float,
                     every: float = 0.25) -> T:
    deadline = time.monotonic() + timeout
    while True:
        got = await asyncio.to_thread(check)
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        await asyncio.sleep(every)


class GatewayProcess:
    def __init__(self, folder: Path, name: str, config: dict[str, Any]) -> None:
        self.log = folder / f"{name}.log"
        path = folder / f"{name}.json"
        path.write_text(json.dumps({**config, "gateway_id": name}), encoding="utf-8")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.fault_gateway", str(path)], cwd=ROOT,
            stdout=subprocess.PIPE, stderr=self.log.open("w"), text=True)

    async def ready(self, timeout: float = 180) -> None:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), timeout)
        assert line.strip() == "gateway.ready", self.tail()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 60) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()


def _attempts(db: Database) -> list[CallAttempt]:
    with db.session() as session:
        return list(session.scalars(select(CallAttempt).order_by(CallAttempt.id)))


def _customer_spoke(db: Database) -> str | None:
    attempts = _attempts(db)
    if not attempts:
        return None
    with db.session() as session:
        turns = CallRepo(session).turns(attempts[0].call_id)
    return attempts[0].call_id if any(t.speaker == "customer" for t in turns) else None


def _setup(db: Database, sip_port: int) -> str:
    today = date.today()
    defn = load_sample(ROOT / "examples" / "campaigns" / "marketing.yml", today)
    defn = defn.model_copy(update={
        "name": "fault-kill9",
        "schedule": defn.schedule.model_copy(update={"windows": ["00:00-24:00"]}),
        "dialing": defn.dialing.model_copy(update={
            "retry": {**defn.dialing.retry, "failed": "1m"}, "marketing_cap_days": 0}),
        "trunk": defn.trunk.model_copy(update={"uri": f"sip:{{number}}@127.0.0.1:{sip_port}"}),
    })
    campaign_id = save_campaign(db, defn)
    with db.session() as session:
        ContactRepo(session).add(campaign_id, NUMBER, name="王芳", gender="female")
    start_campaign(db, defn.name, datetime.now(UTC), force=True)
    return defn.name


async def _run(folder: Path) -> Scenario:
    from bot.services import RasaStack
    from voice.simphone.phone import SimPhone
    from voice.tts.cache import PromptCache
    from voice.tts.espeak import EspeakSynthesizer
    from voice.tts.warm import warm_campaign

    url = f"sqlite:///{folder / 'fault.db'}"
    db = Database(url)
    db.upgrade()
    scenario = Scenario(db, folder / "recordings")
    phone = SimPhone({NUMBER: parse_persona(PERSONA)}, host="127.0.0.1", port=0,
                     cache_dir=ROOT / "var" / "tts" / "cache",
                     options=SimPhoneOptions(idle_hangup_s=8.0, max_call_s=120.0))
    await asyncio.to_thread(phone.prepare)
    await phone.start()
    gateways: list[GatewayProcess] = []
    try:
        campaign = _setup(db, phone.port)
        # The campaign's prompts into the shared cache first (slow only the first time on a
        # machine): the gateways then start within their ready timeout.
        cache = PromptCache(ROOT / "var" / "tts" / "cache", EspeakSynthesizer())
        await asyncio.to_thread(warm_campaign, db, campaign, cache, now=datetime.now(UTC),
                                days=1)
        with RasaStack(url) as stack:
            config = {"database": url, "rasa_url": stack.endpoint.url,
                      "rasa_token": stack.endpoint.token, "lease_s": LEASE_S,
                      "recordings": str(scenario.recordings), "var": str(ROOT / "var"),
                      "campaign": campaign}
            first = GatewayProcess(folder, "gw-first", config)
            gateways.append(first)
            await first.ready()
            # Mid-call: the customer has answered (their turn is stored) and the bot talks on.
            call_id = await wait_until("the customer's first answer",
                                       lambda: _customer_spoke(db), 150)
            scenario.first_call = call_id
            await asyncio.sleep(1.5)
            first.kill()
            scenario.killed_at = datetime.now(UTC)
            [attempt] = _attempts(db)
            assert attempt.lease_expires_at is not None, "the call had ended before the kill"
            scenario.lease_at_kill = utc(attempt.lease_expires_at)
            # While the dead gateway's lease runs, nobody may dial the number.
            probe = Dialer(db, "gw-probe", lease_s=LEASE_S)
            scenario.claimed_during_lease = [
                j.call_id for j in probe.claim(datetime.now(UTC), capacity=5)]
            with db.session() as session:
                scenario.locked_during_lease = session.get(PhoneLock, NUMBER) is not None
            day = folder / "recordings"
            partial = next(day.glob(f"*/{call_id}.wav.partial"))
            with wave.open(str(partial)) as wav:
                scenario.partial_frames = wav.getnframes()
            with db.session() as session:
                scenario.turns_at_kill = [(t.speaker, t.text)
                                          for t in CallRepo(session).turns(call_id)]

            second = GatewayProcess(folder, "gw-second", config)
            gateways.append(second)
            await second.ready()
            # The retry, after the lease ran out and the retry delay passed, then its end.
            await wait_until("the retry to be dialled and finished", lambda: (
                len(a := _attempts(db)) == 2 and a[1].completed_at is not None), 240, every=1)
            second.stop()
    finally:
        for gateway in gateways:
            with contextlib.suppress(Exception):
                gateway.stop(timeout=20)
            scenario.logs[gateway.log.stem] = gateway.tail()
        # Closed first: the first call's dialog may still be open (its BYE to the dead
        # gateway is retransmitted for 32 s, RFC 3261 timer F); closing ends and records it.
        await phone.close()
        scenario.simphone = list(phone.records)
    return scenario


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    folder = tmp_path_factory.mktemp("kill9")
    result = asyncio.run(asyncio.wait_for(_run(folder), 900))
    yield result
    result.db.dispose()


def test_the_partial_recording_and_the_transcript_survive_the_kill(
        scenario: Scenario) -> None:
    assert scenario.partial_frames >= 8000 * 3, scenario.logs
    speakers = [speaker for speaker, _ in scenario.turns_at_kill]
    assert "bot" in speakers and "customer" in speakers


def test_nobody_is_dialled_while_the_dead_gateways_lease_runs(scenario: Scenario) -> None:
    assert scenario.claimed_during_lease == []
    assert scenario.locked_during_lease
    first, retry = _attempts(scenario.db)
    assert scenario.lease_at_kill is not None
    assert utc(first.completed_at or datetime.max) >= scenario.lease_at_kill
    assert utc(retry.created_at) >= utc(first.completed_at or datetime.max)
    assert {a.gateway for a in (first, retry)} == {"gw-first", "gw-second"}


def test_the_next_gateway_finalises_and_links_the_recording(scenario: Scenario) -> None:
    with scenario.db.session() as session:
        call = session.get(Call, scenario.first_call)
        assert call is not None and call.recording_path, scenario.logs.get("gw-second")
        path = Path(call.recording_path)
    assert path.exists() and not partial_path(path).exists()
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
        assert wav.getnframes() >= scenario.partial_frames
    import hashlib
    assert call.recording_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_attempt_is_failed_at_lease_expiry_and_the_contact_retried(
        scenario: Scenario) -> None:
    first, retry = _attempts(scenario.db)
    with scenario.db.session() as session:
        call = session.get(Call, scenario.first_call)
        assert call is not None
        assert call.outcome == "failed"
        assert call.summary["interrupted"] == "lease_expired"
        turns = [(t.speaker, t.text) for t in CallRepo(session).turns(call.id)]
        contact = session.get(Contact, first.contact_id)
        assert contact is not None
    assert turns[:len(scenario.turns_at_kill)] == scenario.turns_at_kill  # kept
    assert first.dial_result == "answered"
    assert (retry.attempt_no, retry.kind) == (2, "retry")
    # The campaign's retry delay for a failed call: 1 minute after the reclaim.
    assert utc(retry.created_at) >= utc(first.completed_at or datetime.max) + timedelta(
        minutes=1) - timedelta(seconds=1)
    assert contact.status != "in_progress"


def test_the_customer_is_dialled_again_only_after_the_lease_ran_out(
        scenario: Scenario) -> None:
    """What the virtual customer saw: two INVITEs in all, the second after the dead
    gateway's lease had run out.  (The killed gateway sent no BYE, so the customer's side
    of the first dialog stays open until the SimPhone's own limit, as a carrier's RTP
    timeout would end it; the default retry delay for `failed` is 30 minutes.)"""
    calls = sorted(scenario.simphone, key=lambda r: r.started_at)
    assert len(calls) == 2, [r.to_json() for r in calls]
    first, second = calls
    assert scenario.killed_at is not None and scenario.lease_at_kill is not None
    assert datetime.fromisoformat(first.started_at) < scenario.killed_at
    assert datetime.fromisoformat(second.started_at) > scenario.lease_at_kill
    assert second.dial_result == "answered" and second.hangup_by == "simphone"
