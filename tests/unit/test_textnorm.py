"""Digits, scores and callback times as phone ASR returns them."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.textnorm import digits_in, last4, parse_score
from bot.timeparse import parse_callback_time, say_time

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Monday


@pytest.mark.parametrize("text, expected", [
    ("后四位是幺三五七", "1357"), ("1357", "1357"), ("一 三 五 七", "1357"),
    ("尾号两三四叉", "234X"), ("三三", None), ("零零幺八九", "0189"),
])
def test_last4(text: str, expected: str | None) -> None:
    assert last4(text) == expected


def test_digits_in_ignores_other_words() -> None:
    assert digits_in("我的是洞拐勾") == "079"


@pytest.mark.parametrize("text, expected", [
    ("后四位一二三", "123"), ("最后4位是一二三", "123"), ("后四位数字是一二三四", "1234"),
    ("尾号幺二三", "123"), ("末四位 一二三四", "1234"), ("我身份证后四位是幺二三四", "1234"),
])
def test_the_words_naming_the_digits_are_not_digits(text: str, expected: str) -> None:
    # 后四位 said with one digit misheard must not make four digits out of the 四 of 后四位.
    assert digits_in(text) == expected
    assert last4(text) == (expected if len(expected) >= 4 else None)


@pytest.mark.parametrize("heard, expected", [
    ("后四为是摇二三字", "1234"),  # Whisper base on G.711: 位 as 为, 幺 as 摇, 四 as 字
    ("未后遥二三四", "1234"), ("九八齐六", "9876"), ("我的是一二三子", "1234"),
    ("身份证号码后四位数字是壹贰叁肆", "1234"),
])
def test_digits_as_a_phone_line_recogniser_writes_them(heard: str, expected: str) -> None:
    assert last4(heard) == expected


@pytest.mark.parametrize("text, score", [
    ("五分", 5), ("给4分吧", 4), ("三", 3), ("满意", 4), ("非常满意", 5), ("十分满意", 5),
    ("不满意", 2), ("非常不满意", 1), ("一般般", 3), ("还行吧", 3), ("两分", 2),
    ("不知道", None), ("我觉得那个师傅人还不错但是迟到了三个小时", 4),
    ("只能给两份", 2),  # Whisper base on G.711: 分 as 份
    ("望住嘛四人吧", 4),  # 网速嘛四分吧 through Whisper base on G.711: 分 as 人
])
def test_parse_score(text: str, score: int | None) -> None:
    assert parse_score(text) == score


@pytest.mark.parametrize("text, expected", [
    ("明天下午三点", datetime(2026, 11, 24, 15, 0)),
    ("明天上午十点半", datetime(2026, 11, 24, 10, 30)),
    ("后天上午", datetime(2026, 11, 25, 10, 0)),
    ("周五晚上七点", datetime(2026, 11, 27, 19, 0)),
    ("半小时后", datetime(2026, 11, 23, 10, 30)),
    ("两个小时以后", datetime(2026, 11, 23, 12, 0)),
    ("下午三点", datetime(2026, 11, 23, 15, 0)),
    ("三点吧", datetime(2026, 11, 23, 15, 0)),
    ("晚点再打", datetime(2026, 11, 23, 11, 0)),
    ("九点", datetime(2026, 11, 24, 9, 0)),  # 09:00 today has passed: tomorrow
])
def test_parse_callback_time(text: str, expected: datetime) -> None:
    assert parse_callback_time(text, NOW) == expected.replace(tzinfo=NOW.tzinfo)


def test_no_time_in_text() -> None:
    assert parse_callback_time("我在开车", NOW) is None


def test_say_time() -> None:
    assert say_time(datetime(2026, 11, 24, 15, 30, tzinfo=NOW.tzinfo), NOW) == "明天下午3点半"
    assert say_time(datetime(2026, 11, 23, 10, 0, tzinfo=NOW.tzinfo), NOW) == "今天上午10点"
