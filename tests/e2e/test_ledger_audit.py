"""A real text call that consents, through the Rasa server, the action server and the
database: its ledger entry is signed and binds the transcript turn and the phone number;
`waihu audit anchor` then `verify` pass; an entry edited by the database's owner (triggers
switched off) makes `verify` fail and name it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select, text

from bot.campaigns.definition import load_definition
from bot.cli import main
from bot.demo import sample_campaigns
from bot.services import RasaStack
from bot.store import CampaignRepo, ContactRepo, Database
from bot.store.ledger_signer import LedgerSigner
from bot.store.models import Call, Consent, TranscriptTurn
from bot.textcall import TextCall

pytestmark = pytest.mark.rasa
PHONE = "13700001234"


def test_a_consent_is_signed_anchored_verified_and_its_tampering_named(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    campaign_file = sample_campaigns()[0][0]  # marketing
    assert main(["--database", url, "campaign", "create", str(campaign_file)]) == 0
    db = Database(url)
    with db.session() as session:
        campaign = CampaignRepo(session).by_name(load_definition(campaign_file).name)
        assert campaign is not None
        campaign_id = campaign.id
        contact_id = ContactRepo(session).add(campaign_id, PHONE, name="王芳",
                                              gender="female").id

    async def consent_call(stack: RasaStack) -> str:
        async with aiohttp.ClientSession() as http:
            call_id, call = TextCall.dial(stack.endpoint.channel(http), db, campaign_id,
                                          contact_id)
            assert call is not None
            await call.start()
            for words in ("是我", "可以", "多少钱", "我同意"):
                await call.say(words)
            await call.key("1")
            if not call.ended:
                await call.hang_up()
            return call_id

    with RasaStack(url) as stack:
        call_id = asyncio.run(consent_call(stack))

    with db.session() as session:
        call = session.get(Call, call_id)
        assert call is not None and call.outcome == "consented"
        entries = session.scalars(select(Consent).order_by(Consent.id)).all()
        assert [e.kind for e in entries] == ["consent", "recording_seal"]
        consent = entries[0]
        turn = session.scalar(select(TranscriptTurn).where(
            TranscriptTurn.call_id == call_id, TranscriptTurn.seq == consent.turn_seq))
        assert turn is not None and turn.speaker == "customer"
        assert consent.turn_text == turn.text == "[按键 1]"
        assert consent.input_mode == "dtmf"
    signer = LedgerSigner.load()
    assert consent.key_id == signer.key_id
    assert signer.verify(consent.key_id, consent.entry_hash, consent.signature or "")
    assert consent.phone_hash == signer.phone_hash(PHONE)

    anchors = tmp_path / "anchors.jsonl"
    capsys.readouterr()
    assert main(["audit", "anchor", "--to", str(anchors), "--database", url]) == 0
    assert main(["audit", "verify", "--anchor", str(anchors), "--database", url]) == 0
    assert "ledger intact" in capsys.readouterr().out

    with db.session() as session:  # the owner of the file, past the triggers
        session.execute(text("DROP TRIGGER consents_no_update"))
        session.execute(text("UPDATE consents SET product = '别的产品' WHERE id = :id"),
                        {"id": consent.id})
    assert main(["audit", "verify", "--anchor", str(anchors), "--database", url,
                 "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [(p["kind"], p["entry_id"]) for p in report["problems"]] == [("edited", consent.id)]
    db.dispose()
