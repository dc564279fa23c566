"""Personas answering what the bot asks back (`answers` in bot/personas.py): parsing, the
one decision (`Persona.answer_to`), the simphone's bookkeeping (`BotQuestions`) and the
text client (`bot.textcall.play_persona`)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from bot.channel import BotReply, BotSegment
from bot.personas import MAX_ANSWERS, PersonaError, parse_persona
from bot.textcall import TextCall, play_persona
from voice.simphone.call import Call
from voice.simphone.playback import BotQuestions, phrases

ASKED = "跟您确认一下，您是要转接人工客服吗？是请说“是的”或按1，不是请按2。"


def persona(**extra: Any) -> Any:
    return parse_persona({"id": "p", "turns": [{"say": "转人工"}], **extra})


def test_answers_map_a_cue_in_the_bot_s_words_to_a_reply() -> None:
    p = persona(answers={"转接人工客服吗": "是的", "您是要投诉": "对"})
    assert p.answers == (("转接人工客服吗", "是的"), ("您是要投诉", "对"))
    assert p.answer_to(ASKED) == "是的"
    assert p.answer_to("好的，正在为您转接人工客服，请稍候。") is None
    assert persona().answer_to(ASKED) is None
    assert phrases([p]) == ["转人工", "是的", "对"]  # the replies are synthesised too


@pytest.mark.parametrize("raw", [["转接人工", "是的"], {"转接人工": ""}, {"": "对"},
                                 {"转接人工": ["是的"]}])
def test_answers_that_are_not_words_are_refused(raw: Any) -> None:
    with pytest.raises(PersonaError, match="answers"):
        persona(answers=raw)


def test_the_simphone_answers_only_what_was_said_since_the_persona_spoke() -> None:
    said: list[str] = []
    call = cast(Call, SimpleNamespace(
        persona=persona(answers={"转接人工客服吗": "是的"}),
        invite=SimpleNamespace(get=lambda name: "c1" if name == "x-waihu-call-id" else "")))
    asked = BotQuestions(call, lambda call_id: said if call_id == "c1" else [])
    said.append(ASKED)
    assert asked.reply() == "是的"
    asked.spoke()
    assert asked.reply() is None  # the same question, already answered
    for _ in range(MAX_ANSWERS):  # asked again and again: the customer gives up
        said.append(ASKED)
        reply = asked.reply()
        asked.spoke()
    assert reply is None
    no_source = BotQuestions(call, None)
    assert no_source.reply() is None


class FakeTextCall:
    """What play_persona needs of a TextCall; the bot asks back after 转人工."""

    def __init__(self) -> None:
        self.ended = False
        self.said: list[str] = []

    async def start(self) -> BotReply:
        return BotReply([BotSegment("请问是张先生本人吗？")])

    async def say(self, text: str) -> BotReply:
        self.said.append(text)
        if text == "转人工":
            return BotReply([BotSegment(ASKED)])
        self.ended = True
        return BotReply([BotSegment("好的，正在为您转接人工客服，请稍候。")])

    async def hang_up(self) -> None:
        self.ended = True

    def outcome(self) -> dict[str, Any]:
        return {"said": self.said}


async def test_a_text_call_answers_the_question_asked_back() -> None:
    call = FakeTextCall()
    result = await play_persona(cast(TextCall, call), persona(answers={"转接人工客服吗": "是的"}))
    assert result == {"said": ["转人工", "是的"]}
    plain = FakeTextCall()
    assert await play_persona(cast(TextCall, plain), persona()) == {"said": ["转人工"]}
