"""Carrier announcements, and what they mean for the dial result.

Chinese operators play a recorded sentence instead of ringing when a number cannot be
reached; the four the product acts on (DESIGN.md, "Dial results") are

- ``invalid_number`` — 您拨打的号码是空号，请查证后再拨 / 您拨打的号码不存在;
- ``suspended`` — 您拨打的电话已停机 / 您拨打的号码已暂停服务 (often after 欠费);
- ``powered_off`` — 您拨打的电话已关机 / 暂时无法接通 / 不在服务区;
- ``busy`` — 您拨打的电话正在通话中，请稍后再拨 / 您拨打的用户正忙 (the dialer retries it
  like a 486 Busy Here).

Matching is by toneless pinyin, so a homophone the engine wrote instead (观机, 空好) still
counts.  The gateway transcribes the early media with ``ANNOUNCEMENT_HINTS`` as the
engine's hints and ``classify_announcement`` on the text (raw or normalised).

Some gateways answer (200 OK) and only then play the announcement: the call session checks
the caller's first words with ``answered=True``, which also asks for the announcement's
opening (您拨打的…), because there a person may be on the line, and a customer who says
"我手机快关机了" must not be taken for a switched-off phone.
"""

from __future__ import annotations

from typing import Literal

from voice.asr.base import Hints
from voice.asr.snap import pinyin_key

Announcement = Literal["invalid_number", "suspended", "powered_off", "busy"]
ANNOUNCED_RESULTS: tuple[Announcement, ...] = ("invalid_number", "suspended", "powered_off",
                                              "busy")

ANNOUNCEMENT_HINTS: tuple[str, ...] = (
    "您拨打的号码是空号，请查证后再拨",
    "您拨打的号码不存在",
    "您拨打的电话已停机",
    "您拨打的号码已暂停服务",
    "您拨打的电话已关机",
    "您拨打的电话暂时无法接通",
    "您拨打的电话不在服务区",
    "您拨打的电话正在通话中，请稍后再拨",
    "您拨打的用户正忙，请稍后再拨",
)
ANNOUNCEMENT_LISTEN = Hints(expect="free", phrases=ANNOUNCEMENT_HINTS)
"""Hints for transcribing early media: ``free`` so that no phrase is forced on it."""

# Checked in order; whole syllables only, so 停机 does not match inside another word by chance.
# 稍后再拨 is no keyword: 暂时无法接通，请稍后再拨 ends with it too.
_KEYWORDS: tuple[tuple[str, Announcement], ...] = (
    ("空号", "invalid_number"),
    ("号码不存在", "invalid_number"),
    ("查证后再拨", "invalid_number"),
    ("停机", "suspended"),
    ("暂停服务", "suspended"),
    ("欠费", "suspended"),
    ("关机", "powered_off"),
    ("无法接通", "powered_off"),
    ("不在服务区", "powered_off"),
    ("通话中", "busy"),
    ("正忙", "busy"),
)
# How every announcement opens (您拨打的 / 你拨打的 / 对不起，您拨打的): asked for after an answer.
_OPENING = "拨打的"


def classify_announcement(text: str, *, answered: bool = False) -> Announcement | None:
    """The dial result a carrier announcement means, or None if it is not one of ours.

    *answered*: the text is what the far end said after a 200 OK, where it may be a person;
    then it must also have the announcement's opening (拨打的)."""
    heard = f" {pinyin_key(text)} "
    if answered and f" {pinyin_key(_OPENING)} " not in heard:
        return None
    for keyword, result in _KEYWORDS:
        if f" {pinyin_key(keyword)} " in heard:
            return result
    return None
