"""The Rasa channel contract: reply parsing, turn metadata, the REST client."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot import channel
from bot.channel import BotReply, RasaChannel, TurnMeta

LISTEN = {"custom": {"listen": {"expect": "yes_no", "hints": ["是的"], "dtmf_max": 1,
                                "timeout_s": 6}}}


def test_a_custom_entry_applies_to_the_text_just_before_it() -> None:
    reply = BotReply.parse([
        {"text": "价格是每月十元。"}, {"custom": {"barge_in": False, "disclosure": ["price"]}},
        {"text": "试用期到三月一日。"}, {"custom": {"barge_in": False}},
        {"text": "您同意吗？"}, LISTEN,
    ])
    assert [s.disclosure for s in reply.segments] == [("price",), ("unnamed",), ()]
    assert reply.texts == ["价格是每月十元。", "试用期到三月一日。", "您同意吗？"]
    assert reply.disclosures == ["price", "unnamed"]
    assert reply.listen == LISTEN["custom"]["listen"]
    assert not reply.ends_call


def test_endings() -> None:
    assert BotReply.parse([{"text": "再见"}, {"custom": {"hangup": True}}]).hangup
    handed = BotReply.parse([{"text": "正在为您转接"},
                             {"custom": {"transfer": {"reason": "complain"}}}])
    assert handed.transfer == {"reason": "complain"} and handed.ends_call
    assert BotReply.parse([]) == BotReply()


def test_turn_metadata_round_trip() -> None:
    meta = TurnMeta("speech", asr_confidence=0.82, asr_snapped=True,
                    disclosures_interrupted=("price",), before_question=True,
                    caller_hung_up=True)
    sent = meta.to_dict()
    assert sent == {"input_mode": "speech", "asr_confidence": 0.82, "asr_snapped": True,
                    "disclosures_interrupted": ["price"], "before_question": True,
                    "caller_hung_up": True}
    assert TurnMeta.from_dict(sent) == meta
    assert TurnMeta("dtmf").to_dict() == {"input_mode": "dtmf"}


def test_turn_metadata_from_an_unknown_or_missing_mode() -> None:
    assert TurnMeta.from_dict(None).input_mode == "text"
    assert TurnMeta.from_dict({"input_mode": "telepathy"}, "dtmf").input_mode == "dtmf"
    assert TurnMeta.from_dict({"asr_confidence": 1}).asr_confidence == 1.0


def test_call_events() -> None:
    assert channel.dtmf_message("12") == '/dtmf{"digits": "12"}'
    assert channel.is_event(channel.SILENCE_TIMEOUT) and not channel.is_event("是的")
    assert channel.shown("我的身份证后四位是1234") == "<speech>"
    meta = channel.call_started_meta(call_id="c1", campaign_id=1, contact_id=2,
                                     campaign_type="survey", input_mode="speech",
                                     now=datetime(2026, 3, 1, 10, tzinfo=UTC))
    assert meta["now"] == "2026-03-01T10:00:00+00:00" and meta["call_id"] == "c1"


def _fake_rasa(seen: list[dict[str, Any]]) -> TestServer:
    async def webhook(request: web.Request) -> web.Response:
        seen.append({"token": request.query.get("token"), "body": await request.json()})
        return web.json_response([{"recipient_id": "c1", "text": "您好"}, LISTEN])
    app = web.Application()
    app.router.add_post("/webhooks/waihu/webhook", webhook)
    return TestServer(app, host="127.0.0.1")


async def test_the_client_sends_sender_message_metadata_and_token(monkeypatch: Any) -> None:
    monkeypatch.delenv(channel.TOKEN_ENV, raising=False)
    seen: list[dict[str, Any]] = []
    async with _fake_rasa(seen) as server, aiohttp.ClientSession() as http:
        url = str(server.make_url("/"))
        reply = await RasaChannel(url, http, token="s3cret").ask("c1", "是的",
                                                                 {"input_mode": "text"})
        await RasaChannel(url, http).send("c1", "/silence_timeout")
        monkeypatch.setenv(channel.TOKEN_ENV, "from-env")
        await RasaChannel(url, http).send("c1", "/silence_timeout")
    assert reply.texts == ["您好"] and reply.listen is not None
    assert seen[0] == {"token": "s3cret", "body": {
        "sender": "c1", "message": "是的", "metadata": {"input_mode": "text"}}}
    assert seen[1]["token"] is None and seen[1]["body"]["metadata"] == {}
    assert seen[2]["token"] == "from-env"


def test_the_classification_rides_back_with_the_answer() -> None:
    reply = BotReply.parse([{"custom": channel.classified_payload("affirm", 0.93)},
                            {"text": "好的"}, LISTEN])
    assert reply.classified == {"intent": "affirm", "confidence": 0.93}
    assert reply.texts == ["好的"]
    assert BotReply.parse([{"text": "好的"}]).classified is None
