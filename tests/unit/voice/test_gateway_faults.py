"""Outages are not the customer's fault (issue 13, item 6), on the real-time fake telephony:
a call that cannot go on says the failure line, is `failed` and its contact is retried like a
failed dial; the gateway claims nothing while a service is down and rides out database
errors without exiting or hanging up the calls in progress."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from bot.store import CallRepo, Database
from bot.store.models import Call, Contact
from tests.unit.campaigns.test_dialer import NOW, add_campaign, add_contacts
from tests.unit.voice.test_session import ScriptedAsr, ScriptedRasa, ToneSpeech, listen, said, tone
from voice.asr.base import AsrWorker
from voice.gateway import CallReport, Gateway, GatewayConfig
from voice.health import HealthConfig, ServiceHealth
from voice.session import SessionConfig
from voice.telephony.fake import FakeTelephony, FarEnd

GREETING = [{"text": "您好"}, listen(timeout_s=5)]
FAILURE_TEXT = SessionConfig().failure_text


def _db_down() -> OperationalError:
    return OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))


async def gateway_for(db: Database, rasa: Any, tmp_path: Path, tts: ToneSpeech,
                      asr: ScriptedAsr | None = None, far: FarEnd | None = None,
                      **config: Any) -> tuple[Gateway, FakeTelephony]:
    telephony = FakeTelephony()
    await telephony.start()
    if far is not None:
        telephony.prepare(far)
    session = SessionConfig(recordings_dir=tmp_path, **config.pop("session", {}))
    gateway = Gateway(db, telephony, AsrWorker(asr or ScriptedAsr(said("是我"))), tts, rasa,
                      GatewayConfig(gateway_id="gw-faults", ring_timeout_s=5, session=session,
                                    **config),
                      clock=lambda: NOW)
    return gateway, telephony


async def place_one(db: Database, rasa: Any, tmp_path: Path, tts: ToneSpeech,
                    **session: Any) -> tuple[CallReport, int]:
    campaign_id = add_campaign(db, name="faults")
    contact_id, = add_contacts(db, campaign_id, ["13800005678"])
    far = FarEnd(answer_after_ms=100)
    far.say(tone(500))  # the customer answers a question: 是我
    gateway, _ = await gateway_for(db, rasa, tmp_path, tts, far=far, session=session)
    job, = gateway.dialer.claim(NOW, 1)
    return await asyncio.wait_for(gateway.place_call(job, NOW), 30), contact_id


def assert_failed_and_retried(db: Database, report: CallReport, contact_id: int,
                              tts: ToneSpeech) -> None:
    assert report.session is not None and report.session.ended_by == "failure"
    assert tts.said[-1] == FAILURE_TEXT  # the customer heard why the call ends
    with db.session() as s:
        call = s.get(Call, report.call_id)
        assert call is not None
        assert call.outcome == "failed" and call.grade is None  # never hung_up_early
        attempt = CallRepo(s).get_attempt(report.call_id)
        assert attempt is not None and attempt.dial_result == "answered"
        assert attempt.completed_at is not None
        turns = [(t.speaker, t.text) for t in CallRepo(s).turns(report.call_id)]
        assert ("bot", FAILURE_TEXT) in turns
        contact = s.get(Contact, contact_id)
        assert contact is not None
        assert (contact.status, contact.last_result) == ("pending", "failed")
        due = contact.next_attempt_at
        assert due is not None
        due = due if due.tzinfo else due.replace(tzinfo=NOW.tzinfo)
        # the campaign's policy for `failed` (30 minutes by default), like a failed dial
        assert timedelta(minutes=30) <= due - NOW <= timedelta(minutes=31)


async def test_rasa_failing_mid_call_fails_the_call_politely_and_retries_the_contact(
        db: Database, tmp_path: Path) -> None:
    tts = ToneSpeech()
    rasa = ScriptedRasa(GREETING, fail_at=1)  # a 5xx or a refused connection
    report, contact_id = await place_one(db, rasa, tmp_path, tts)
    assert [m for m, _ in rasa.sent] == ["/call_started", "是我"]
    assert_failed_and_retried(db, report, contact_id, tts)


async def test_rasa_answering_without_its_actions_fails_the_call(
        sqlite_db: Database, tmp_path: Path) -> None:
    """The action server is down: Rasa still answers 200, repeating its last words (no
    classification from the deciding action); the call must not loop on that."""
    tts = ToneSpeech()
    rasa = ScriptedRasa(GREETING, GREETING, GREETING, actions_from=1)
    report, contact_id = await place_one(sqlite_db, rasa, tmp_path, tts)
    assert len(rasa.sent) == 2
    assert_failed_and_retried(sqlite_db, report, contact_id, tts)


class HangingRasa(ScriptedRasa):
    """Answers /call_started, then never again (a stopped process)."""

    async def send(self, sender: str, message: str,
                   metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        if self.sent:
            self.sent.append((message, dict(metadata or {})))
            await asyncio.Event().wait()
        return await super().send(sender, message, metadata)


async def test_rasa_not_answering_fails_the_call_after_the_dialogue_timeout(
        sqlite_db: Database, tmp_path: Path) -> None:
    tts = ToneSpeech()
    loop = asyncio.get_running_loop()
    began = loop.time()
    report, contact_id = await place_one(sqlite_db, HangingRasa(GREETING), tmp_path, tts,
                                         dialogue_timeout_s=1.0)
    assert report.session is not None and "no answer from Rasa" in (report.session.error or "")
    assert loop.time() - began < 15
    assert_failed_and_retried(sqlite_db, report, contact_id, tts)


# --- the production loop -----------------------------------------------------------------


class Switch:
    """A probe that answers while `up`."""

    def __init__(self) -> None:
        self.up = False
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if not self.up:
            raise ConnectionRefusedError("rasa is down")


async def test_no_call_is_claimed_while_a_service_is_down(
        sqlite_db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    campaign_id = add_campaign(sqlite_db, name="faults")
    add_contacts(sqlite_db, campaign_id, ["13800005678"])
    far = FarEnd(answer_after_ms=100)
    rasa = ScriptedRasa(GREETING, [{"text": "再见"}, {"custom": {"hangup": True}}])
    gateway, _ = await gateway_for(sqlite_db, rasa, tmp_path, ToneSpeech(), far=far, poll_s=0.1)
    rasa_up = Switch()
    gateway.health = ServiceHealth({"rasa": rasa_up}, HealthConfig(interval_s=0.1,
                                                                  timeout_s=0.5))
    stop = asyncio.Event()
    with caplog.at_level(logging.INFO, logger="waihu.health"):
        running = asyncio.create_task(gateway.run(stop))
        await asyncio.sleep(1.0)
        assert rasa_up.calls >= 3  # watched on its interval
        assert gateway.health.snapshot()["services"]["rasa"]["up"] is False
        with sqlite_db.session() as s:
            assert not s.query(Call).count() and not _attempts(s)  # nothing claimed
        rasa_up.up = True
        for _ in range(50):
            if _attempts_of(sqlite_db):
                break
            await asyncio.sleep(0.1)
        assert _attempts_of(sqlite_db) == 1  # claimed once Rasa is back
        stop.set()
        await asyncio.wait_for(running, 20)
    downs = [r for r in caplog.records if r.getMessage().startswith("health.down")]
    ups = [r for r in caplog.records if r.getMessage().startswith("health.up")]
    assert len(downs) == 1 and "service=rasa" in downs[0].getMessage()  # logged once
    assert len(ups) == 1 and "service=rasa" in ups[0].getMessage()


def _attempts(session: Any) -> int:
    from bot.store.models import CallAttempt
    return int(session.query(CallAttempt).count())


def _attempts_of(db: Database) -> int:
    with db.session() as s:
        return _attempts(s)


async def test_database_errors_while_claiming_and_renewing_are_ridden_out(
        sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Claims fail twice, then every renewal fails while a call is up: the loop backs off
    and goes on, and the call is not hung up (a failed renewal is no lost lease)."""
    campaign_id = add_campaign(sqlite_db, name="faults")
    add_contacts(sqlite_db, campaign_id, ["13800005678"])
    far = FarEnd(answer_after_ms=100)  # answers and stays on the line, silent
    rasa = ScriptedRasa([{"text": "您好"}, listen(timeout_s=30)])
    gateway, _ = await gateway_for(sqlite_db, rasa, tmp_path, ToneSpeech(), far=far,
                                   poll_s=0.1, lease_s=3, backoff_base_s=0.05,
                                   backoff_cap_s=0.2)
    gateway.health = ServiceHealth({})
    real_claim, real_renew = gateway.dialer.claim, gateway.dialer.renew
    claims = {"n": 0}
    renewals = {"failed": 0}

    def flaky_claim(now: Any, capacity: int) -> Any:
        claims["n"] += 1
        if claims["n"] <= 2:
            raise _db_down()
        return real_claim(now, capacity)

    def failing_renew(call_ids: Any, now: Any) -> Any:
        renewals["failed"] += 1
        raise _db_down()

    monkeypatch.setattr(gateway.dialer, "claim", flaky_claim)
    monkeypatch.setattr(gateway.dialer, "renew", failing_renew)
    stop = asyncio.Event()
    running = asyncio.create_task(gateway.run(stop))
    for _ in range(100):
        if gateway.legs:
            break
        await asyncio.sleep(0.05)
    assert gateway.legs, "the claim was not retried after the database errors"
    [leg] = gateway.legs.values()
    await asyncio.sleep(3.5)  # renewals every second, all failing
    assert renewals["failed"] >= 2
    assert not leg.closed.is_set() and not running.done()
    monkeypatch.setattr(gateway.dialer, "renew", real_renew)
    await leg.hangup()
    stop.set()
    await asyncio.wait_for(running, 20)  # ends normally: it never raised
