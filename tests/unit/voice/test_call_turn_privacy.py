"""The answer to the ID question: Rasa gets it in clear, the call's turns and the logs
show it masked; other answers are shown as they are."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bot import events
from tests.unit.voice.test_call_turn import Setup, heard
from voice.call.events import CallerInput

ASK_ID: list[dict[str, Any]] = [
    {"text": "请说出身份证号码的后四位。"}, {"custom": {"private_answer": True}},
    {"custom": {"listen": {"expect": "digits", "dtmf_max": 4}}}]
ASK_PERMISSION: list[dict[str, Any]] = [{"text": "现在方便吗？"}]


async def test_the_answer_to_the_id_question_is_masked_but_sent_in_clear(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="waihu.session")
    setup = Setup(ASK_ID, ASK_ID, ASK_PERMISSION, ASK_PERMISSION)
    turn = setup.turn
    assert (await turn.ask(*turn.message(heard("是我")))).private_answer
    await turn.ask(*turn.message(CallerInput("dtmf", "5678", None, 5, 5)))  # wrong: asked again
    await turn.ask(*turn.message(heard("一二三四", 0.9)))
    assert not turn.private_answer
    await turn.ask(*turn.message(CallerInput("dtmf", "1", None, 9, 9)))  # not an ID answer
    assert [message for _, message, _ in setup.channel.sent] == [
        "是我", '/dtmf{"digits": "5678"}', "一二三四", '/dtmf{"digits": "1"}']
    assert setup.texts() == [
        (events.TURN_CUSTOMER, "是我"), (events.TURN_CUSTOMER, "[按键 ****]"),
        (events.TURN_CUSTOMER, "****"), (events.TURN_CUSTOMER, "[按键 1]")]
    assert "5678" not in caplog.text and "一二三四" not in caplog.text
    assert '/dtmf{"digits": "****"}' in caplog.text and '/dtmf{"digits": "1"}' in caplog.text


async def test_an_unclear_answer_to_the_id_question_is_masked_too() -> None:
    from voice.asr.base import Transcript

    setup = Setup(ASK_ID)
    turn = setup.turn
    await turn.ask(*turn.message(heard("是我")))
    unclear = CallerInput("unclear", "", Transcript("", 0.2, "fake", raw="幺三五七吧",
                                                    unclear=True))
    turn.message(unclear)
    assert setup.texts()[-1] == (events.TURN_CUSTOMER, "[听不清] ****吧")
