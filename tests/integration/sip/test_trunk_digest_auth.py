"""A campaign trunk's digest credentials reach SIP: `trunk.username` and the password in
the environment variable `trunk.password_env` answer the trunk's challenge, whether it
comes as 401 WWW-Authenticate (a registrar's or a trunk's way) or 407 Proxy-Authenticate
(an SBC's), through the real gateway, a SIP stack built with no credentials of its own,
kamailio as the challenging trunk and Debian baresip as the customer's phone.

Only the SIP side is real here; the dialogue, ASR and TTS are the unit tests' stand-ins.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.store import Database
from tests.integration.sip.conftest import BaresipFactory, require_sip_peers
from tests.sip_peers import Kamailio
from tests.unit.campaigns.test_dialer import NOW, add_campaign, add_contacts
from tests.unit.voice.test_session import ScriptedAsr, ScriptedRasa, ToneSpeech
from voice.asr.base import AsrWorker
from voice.gateway import CallReport, Gateway, GatewayConfig
from voice.session import SessionConfig
from voice.telephony.base import DialRequest

require_sip_peers()
from voice.telephony.baresip_telephony import BaresipTelephony  # noqa: E402 - after the skip

pytestmark = pytest.mark.sip

TRUNK_USER = "trunk-7"
PASSWORD_ENV = "WAIHU_TEST_TRUNK_PASSWORD"
PASSWORD = "s3cret-of-the-trunk"


@pytest.fixture
async def telephony() -> AsyncIterator[BaresipTelephony]:
    """The gateway's SIP stack with no credentials: only the trunk's can answer."""
    stack = BaresipTelephony(("127.0.0.1", 0), rtp_timeout=2)
    await stack.start()
    yield stack
    await stack.close()


@pytest.fixture
async def trunk(tmp_path: Path, baresip_peer: BaresipFactory) -> AsyncIterator[Kamailio]:
    """kamailio challenging `wwwauth` (401) and `proxyauth` (407) for TRUNK_USER/PASSWORD,
    relaying authorised calls to a Debian baresip phone."""
    callee = await baresip_peer()
    proxy = Kamailio(tmp_path / "trunk", {"callee": callee.sip_port}, password=PASSWORD,
                     username=TRUNK_USER)
    proxy.start()
    try:
        yield proxy
    finally:
        await asyncio.to_thread(proxy.stop)


async def call_through(db: Database, telephony: BaresipTelephony, trunk_uri: str,
                       tmp_path: Path) -> CallReport:
    """One contact of a running campaign whose trunk is *trunk_uri* with TRUNK_USER and the
    password in PASSWORD_ENV, dialled once through the gateway; the bot hangs up at once."""
    campaign_id = add_campaign(db, name="digest", trunk={
        "uri": trunk_uri, "username": TRUNK_USER, "password_env": PASSWORD_ENV})
    add_contacts(db, campaign_id, ["13800001234"])
    gateway = Gateway(db, telephony, AsrWorker(ScriptedAsr()), ToneSpeech(),
                      ScriptedRasa([{"text": "再见"}, {"custom": {"hangup": True}}]),
                      GatewayConfig(gateway_id="digest", ring_timeout_s=10,
                                    session=SessionConfig(recordings_dir=tmp_path)),
                      clock=lambda: NOW)
    job, = gateway.dialer.claim(NOW, 1)
    return await asyncio.wait_for(gateway.place_call(job, NOW), 30)


def trunk_log(proxy: Kamailio) -> str:
    return (proxy.dir / "kamailio.log").read_text(errors="replace")


@pytest.mark.parametrize(("user", "challenge"), [("wwwauth", 401), ("proxyauth", 407)])
async def test_the_trunk_password_answers_the_challenge(
        sqlite_db: Database, telephony: BaresipTelephony, trunk: Kamailio, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, user: str,
        challenge: int) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    caplog.set_level(logging.DEBUG)
    report = await call_through(sqlite_db, telephony, trunk.uri(user), tmp_path)
    assert (report.dial_result, report.sip_status) == ("answered", 200), report.as_json()
    log = trunk_log(trunk)
    assert f"challenge {challenge} for {user}" in log  # first INVITE: no credentials
    assert f"authorised {TRUNK_USER} for {user}" in log
    assert PASSWORD not in caplog.text


@pytest.mark.parametrize(("user", "challenge"), [("wwwauth", 401), ("proxyauth", 407)])
async def test_a_wrong_trunk_password_fails_the_dial(
        sqlite_db: Database, telephony: BaresipTelephony, trunk: Kamailio, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, user: str, challenge: int) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    report = await call_through(sqlite_db, telephony, trunk.uri(user), tmp_path)
    assert (report.dial_result, report.sip_status) == ("failed", challenge), report.as_json()
    assert "authorised" not in trunk_log(trunk)


def test_the_password_stays_out_of_the_request_s_repr() -> None:
    request = DialRequest("sip:x@127.0.0.1", "c1", username=TRUNK_USER, password=PASSWORD)
    assert PASSWORD not in repr(request) and TRUNK_USER in repr(request)
