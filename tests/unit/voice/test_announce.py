"""Carrier announcements: the busy one, the stricter check after an answer, the personas."""

from __future__ import annotations

import pytest

from bot.personas import PersonaError, parse_persona
from voice.asr.announce import ANNOUNCED_RESULTS, ANNOUNCEMENT_HINTS, classify_announcement
from voice.simphone.phone import ANNOUNCEMENTS


@pytest.mark.parametrize("text, expected", [
    ("您拨打的电话正在通话中，请稍后再拨", "busy"),
    ("您拨打的用户正忙，请稍后再拨", "busy"),
    ("对不起，您拨打的电话正在通话中", "busy"),
    ("用户正忙", "busy"),
    ("您撥打的電話正在通話中", "busy"),  # traditional script, as Whisper may write it
    # 请稍后再拨 alone is not busy: the powered-off announcement ends with it too.
    ("您拨打的用户暂时无法接通，请稍后再拨", "powered_off"),
    ("请稍后再拨", None),
])
def test_busy_announcement(text: str, expected: str | None) -> None:
    assert classify_announcement(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("您拨打的号码是空号，请查证后再拨", "invalid_number"),
    ("您拨打的电话已停机", "suspended"),
    ("您拨打的电话已观机", "powered_off"),  # homophones still count
    ("您拨打的电话正在通话中，请稍后再拨", "busy"),
    # A person who answered may say a keyword: without the announcement's opening it is
    # not taken for one (it would end the call and stop the retries).
    ("我手机快关机了", None),
    ("我这个号欠费停机了", None),
    ("我现在正忙，晚点再说", None),
    ("我在通话中", None),
    ("喂，你好", None),
])
def test_after_an_answer_the_opening_is_needed_too(text: str, expected: str | None) -> None:
    assert classify_announcement(text, answered=True) == expected


def test_every_hint_classifies_also_after_an_answer() -> None:
    assert {classify_announcement(h, answered=True) for h in ANNOUNCEMENT_HINTS} == set(
        ANNOUNCED_RESULTS)


def test_the_simphone_says_what_the_gateway_recognises() -> None:
    assert set(ANNOUNCEMENTS) == set(ANNOUNCED_RESULTS)
    for kind, (text, _status) in ANNOUNCEMENTS.items():
        assert classify_announcement(text, answered=True) == kind
    assert ANNOUNCEMENTS["busy"][1] == 486


@pytest.mark.parametrize("dial, result, announcement", [
    ("announce:busy", "busy", "busy"),
    ("announce:invalid_number", "invalid_number", "invalid_number"),
    ("announce_answered:invalid_number", "invalid_number", "invalid_number"),
    ("announce_answered:busy", "busy", "busy"),
    ("answer", "answered", None),
    ("busy", "busy", None),
])
def test_persona_dial_behaviours(dial: str, result: str, announcement: str | None) -> None:
    persona = parse_persona({"id": "p", "dial": dial})
    assert (persona.dial_result, persona.announcement) == (result, announcement)


@pytest.mark.parametrize("dial", ["announce:ringing", "announce_answered:", "announced:busy"])
def test_persona_with_an_unknown_announcement_is_refused(dial: str) -> None:
    with pytest.raises(PersonaError, match="dial must be one of"):
        parse_persona({"id": "p", "dial": dial})
