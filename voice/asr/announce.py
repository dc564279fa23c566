"""Carrier announcements heard as early media, and what they mean for the dial result.

Chinese operators play a recorded sentence instead of ringing when a number cannot be
reached; the three the product acts on (DESIGN.md, "Dial results") are

- ``invalid_number`` — 您拨打的号码是空号，请查证后再拨 / 您拨打的号码不存在;
- ``suspended`` — 您拨打的电话已停机 / 您拨打的号码已暂停服务 (often after 欠费);
- ``powered_off`` — 您拨打的电话已关机 / 暂时无法接通 / 不在服务区.

Matching is by toneless pinyin, so a homophone the engine wrote instead (观机, 空好) still
counts.  The gateway transcribes the early media with ``ANNOUNCEMENT_HINTS`` as the
engine's hints and ``classify_announcement`` on the text (raw or normalised).
"""

from __future__ import annotations

from typing import Literal

from voice.asr.base import Hints
from voice.asr.snap import pinyin_key

Announcement = Literal["invalid_number", "suspended", "powered_off"]

ANNOUNCEMENT_HINTS: tuple[str, ...] = (
    "您拨打的号码是空号，请查证后再拨",
    "您拨打的号码不存在",
    "您拨打的电话已停机",
    "您拨打的号码已暂停服务",
    "您拨打的电话已关机",
    "您拨打的电话暂时无法接通",
    "您拨打的电话不在服务区",
)
ANNOUNCEMENT_LISTEN = Hints(expect="free", phrases=ANNOUNCEMENT_HINTS)
"""Hints for transcribing early media: ``free`` so that no phrase is forced on it."""

# Checked in order; whole syllables only, so 停机 does not match inside another word by chance.
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
)


def classify_announcement(text: str) -> Announcement | None:
    """The dial result a carrier announcement means, or None if it is not one of ours."""
    heard = f" {pinyin_key(text)} "
    for keyword, result in _KEYWORDS:
        if f" {pinyin_key(keyword)} " in heard:
            return result
    return None
