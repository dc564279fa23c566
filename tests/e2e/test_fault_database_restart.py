"""PostgreSQL restarted mid-campaign (issue 13, items 6 and 9): the gateway's production
loop (`Gateway.run`) runs a campaign against a private PostgreSQL cluster while the cluster
is restarted (`pg_ctl restart -m fast`, every connection cut).  The gateway backs off and
goes on: it does not exit, every contact is reached, no attempt is left open, and no number
is dialled twice (no two attempts of a contact at once, one conversation per contact).

The telephony is the real-time fake and the dialogue a stand-in that records the outcome
through the call record (as the actions do): the database is what is under test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot import callrecord, channel
from bot.store import Database
from bot.store.models import CallAttempt, Contact
from tests import pgcluster
from tests.unit.campaigns.test_dialer import NOW, add_campaign, add_contacts, phones
from tests.unit.voice.test_session import ScriptedAsr, ToneSpeech, listen, said, tone
from voice.asr.base import AsrWorker
from voice.gateway import Gateway, GatewayConfig
from voice.health import ServiceHealth
from voice.session import SessionConfig
from voice.telephony.base import DialRequest
from voice.telephony.fake import FakeTelephony, FarEnd

CONTACTS = 8


@pytest.fixture
def cluster() -> Iterator[pgcluster.PrivateCluster]:
    reason = pgcluster.available()
    if reason is not None:
        pytest.skip(reason)
    with pgcluster.PrivateCluster() as pg:
        yield pg


class RecordingDialogue:
    """Greets, and on the customer's answer records `notified` through the call record
    (in the database, as the deciding action would) and says goodbye."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def send(self, sender: str, message: str,
                   metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        await asyncio.sleep(0.05)
        if message == channel.CALL_STARTED:
            return [{"text": "您好，通知您一件事"}, listen(timeout_s=5)]
        await asyncio.to_thread(self._record, sender)
        return [{"custom": channel.classified_payload("affirm", 1.0)},
                {"text": "好的，再见"}, {"custom": {"hangup": True}}]

    def _record(self, call_id: str) -> None:
        with self.db.session() as session:
            callrecord.record_outcome(session, call_id, "notified")


def customer(_: DialRequest) -> FarEnd:
    far = FarEnd(answer_after_ms=200)
    far.say(tone(600))  # 好的, once the greeting is out (the fake plays it at once)
    return far


def test_the_gateway_rides_out_a_postgresql_restart(cluster: pgcluster.PrivateCluster,
                                                    tmp_path: Path) -> None:
    db = Database(cluster.url)
    db.upgrade()
    campaign_id = add_campaign(db, name="restart", type="notification",
                               dialing={"concurrency": 2})
    contact_ids = add_contacts(db, campaign_id, phones(CONTACTS))
    offset = {"value": timedelta(0)}  # the test moves the clock on to let retries come due
    dials: list[str] = []

    def script(request: DialRequest) -> FarEnd:
        dials.append(request.call_id)
        return customer(request)

    async def scenario() -> None:
        telephony = FakeTelephony(script)
        await telephony.start()
        gateway = Gateway(
            db, telephony, AsrWorker(ScriptedAsr(*[said("好的")] * (CONTACTS * 3))),
            ToneSpeech(ms_per_char=10), RecordingDialogue(db),
            GatewayConfig(gateway_id="gw-restart", capacity=2, poll_s=0.2, lease_s=60,
                          backoff_base_s=0.1, backoff_cap_s=1.0,
                          session=SessionConfig(recordings_dir=tmp_path)),
            clock=lambda: NOW + offset["value"])
        gateway.health = ServiceHealth({})  # the database's own errors are under test
        stop = asyncio.Event()
        running = asyncio.create_task(gateway.run(stop))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        restarted = False
        while loop.time() < deadline:
            await asyncio.sleep(0.5)
            assert not running.done(), running  # it never exits on its own
            done, live = await asyncio.to_thread(_progress, db, campaign_id)
            if not restarted and done >= 2:
                await asyncio.to_thread(cluster.restart)  # calls are up right now
                restarted = True
            if restarted and done < CONTACTS and live == 0 and not gateway.legs:
                offset["value"] += timedelta(minutes=31)  # failed ones come due again
            if done == CONTACTS:
                break
        stop.set()
        await asyncio.wait_for(running, 60)
        await telephony.close()
        assert restarted

    try:
        asyncio.run(scenario())
        with db.session() as session:
            contacts = {c.id: c for c in session.scalars(
                select(Contact).where(Contact.id.in_(contact_ids)))}
            attempts = session.scalars(select(CallAttempt).order_by(CallAttempt.id)).all()
            assert {c.status for c in contacts.values()} == {"done"}, [
                (c.id, c.status, c.last_result) for c in contacts.values()]
            assert all(a.completed_at is not None and a.lease_expires_at is None
                       and a.dial_result is not None for a in attempts)  # none left open
            by_contact: dict[int, list[CallAttempt]] = {}
            for a in attempts:
                by_contact.setdefault(a.contact_id, []).append(a)
            for contact_id, mine in by_contact.items():
                # one after the other, never two at once
                for before, after in zip(mine, mine[1:], strict=False):
                    assert before.completed_at is not None and after.started_at is not None
                    assert before.completed_at <= after.started_at, contact_id
            # every dial has its attempt, and no attempt was dialled twice
            assert sorted(dials) == sorted(a.call_id for a in attempts)
            assert len(set(dials)) == len(dials)
    finally:
        db.dispose()


def _progress(db: Database, campaign_id: int) -> tuple[int, int]:
    """Contacts done, attempts holding a lease."""
    try:
        with db.session() as session:
            done = session.scalars(select(Contact.id).where(
                Contact.campaign_id == campaign_id, Contact.status == "done")).all()
            live = session.scalars(select(CallAttempt.id).where(
                CallAttempt.lease_expires_at.is_not(None))).all()
            return len(done), len(live)
    except Exception:  # the database is restarting: ask again later
        return 0, -1
