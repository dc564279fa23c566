"""ID digits said or keyed during identity verification, through the real Rasa server,
action server and database: the bot checks them (Rasa gets them in clear), the stored
transcript, the escalation's context and the logs show them masked; the other turns are
stored as they were said."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from bot.campaigns.definition import load_definition
from bot.campaigns.registry import save_campaign
from bot.channel import BotReply
from bot.services import RasaStack
from bot.store import ContactRepo, Database
from bot.store.models import Call, Escalation, TranscriptTurn
from bot.textcall import TextCall

pytestmark = pytest.mark.rasa

REPO = Path(__file__).resolve().parents[2]
CAMPAIGN = REPO / "examples" / "campaigns" / "second_confirmation.yml"  # verify_id: true
ID_LAST4 = "3175"
SECRETS = ("3175", "三一七五", "1111", "3 1 7 5")
PHONE_SAID = "13912345678"  # digits in a turn that answers no ID question: kept


@pytest.fixture(scope="module")
def calls(rasa_stack: RasaStack, db_url: str) -> Iterator[dict[str, object]]:
    """The run's Rasa stack and database (tests/e2e/conftest.py), under a campaign name and
    phones of this module's own; the service logs read are what these calls wrote."""
    db = Database(db_url)
    defn = load_definition(CAMPAIGN).model_copy(update={"name": "id-privacy"})
    campaign_id = save_campaign(db, defn)
    with db.session() as session:
        contacts = [ContactRepo(session).add(
            campaign_id, f"1380007{n:04d}", name="张伟", gender="male", id_last4=ID_LAST4,
            fields={"trial_end": "2026-12-20"}).id for n in range(3)]
    handler = _Capture()
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    logged_before = {p: p.stat().st_size for p in rasa_stack.workdir.glob("*.log")}
    try:
        replies = asyncio.run(_converse(rasa_stack, db, campaign_id, contacts))
        service_logs = "\n".join(_written_since(p, logged_before.get(p, 0))
                                 for p in rasa_stack.workdir.glob("*.log"))
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    yield {"db": db, "replies": replies, "logs": "\n".join(handler.lines) + service_logs}
    db.dispose()


def _written_since(log: Path, offset: int) -> str:
    with log.open("rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


async def _converse(stack: RasaStack, db: Database, campaign_id: int,
                    contacts: list[int]) -> dict[str, tuple[str, list[BotReply]]]:
    out: dict[str, tuple[str, list[BotReply]]] = {}
    async with aiohttp.ClientSession() as http:
        channel = stack.endpoint.channel(http)

        async def call(contact_id: int) -> tuple[str, TextCall]:
            call_id, text_call = TextCall.dial(channel, db, campaign_id, contact_id)
            assert text_call is not None
            await text_call.start()
            return call_id, text_call

        call_id, spoken = await call(contacts[0])  # said, then handed to a person
        out["spoken"] = (call_id, [await spoken.say("是我"),
                                   await spoken.say(f"我的后四位是{ID_LAST4}"),
                                   await spoken.say(f"转人工，我的电话是{PHONE_SAID}")])
        call_id, keyed = await call(contacts[1])  # keyed wrong, then right
        out["keyed"] = (call_id, [await keyed.say("是我"), await keyed.key("1111"),
                                  await keyed.key(ID_LAST4)])
        await keyed.hang_up()
        call_id, chinese = await call(contacts[2])  # spoken in Chinese numerals
        out["chinese"] = (call_id, [await chinese.say("是我"),
                                    await chinese.hear("三一七五", 0.9)])
        await chinese.hang_up()
    return out


def _customer_turns(db: Database, call_id: str) -> list[str]:
    with db.session() as session:
        return [t.text for t in session.scalars(
            select(TranscriptTurn).where(TranscriptTurn.call_id == call_id,
                                         TranscriptTurn.speaker == "customer")
            .order_by(TranscriptTurn.seq))]


def test_the_bot_checked_the_digits_in_clear(calls: dict) -> None:
    db: Database = calls["db"]
    for name, (call_id, replies) in calls["replies"].items():
        assert replies[0].private_answer, name  # the ID question is marked private
        with db.session() as session:
            call = session.get(Call, call_id)
            assert call is not None and call.verified, name


def test_the_stored_transcript_masks_only_the_answers_to_the_id_question(
        calls: dict) -> None:
    db: Database = calls["db"]
    assert _customer_turns(db, calls["replies"]["spoken"][0]) == [
        "是我", "我的后四位是****", f"转人工，我的电话是{PHONE_SAID}"]
    assert _customer_turns(db, calls["replies"]["keyed"][0]) == [
        "是我", "[按键 ****]", "[按键 ****]"]
    assert _customer_turns(db, calls["replies"]["chinese"][0]) == ["是我", "****"]


def test_the_agent_sees_the_context_without_the_digits(calls: dict) -> None:
    db: Database = calls["db"]
    call_id = calls["replies"]["spoken"][0]
    with db.session() as session:
        [escalation] = session.scalars(select(Escalation).where(
            Escalation.call_id == call_id)).all()
    history = [turn["text"] for turn in escalation.context["history"]]
    assert history[-3:] == ["是我", "我的后四位是****", f"转人工，我的电话是{PHONE_SAID}"]
    assert not any(secret in repr(escalation.context) for secret in SECRETS)


def test_no_log_shows_the_digits(calls: dict) -> None:
    logs: str = calls["logs"]
    assert "rasa.reply" in logs or "call.start" in logs  # the capture did capture
    for secret in SECRETS:
        assert secret not in logs, secret
