"""Understand a callback time said on the phone: "明天下午三点", "半小时后", "周五上午"."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

_NUM = {
    "零": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
    "十": 10,
}
_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_PERIOD_DEFAULT_HOUR = {"早上": 9, "上午": 10, "中午": 12, "下午": 15, "傍晚": 18, "晚上": 19}


def _number(token: str) -> int | None:
    """Arabic or Chinese numbers up to 99 ("十二", "二十", "3")."""
    if token.isdigit():
        return int(token)
    if not token or any(ch not in _NUM for ch in token):
        return None
    if "十" not in token:
        return _NUM[token] if len(token) == 1 else None
    tens, _, ones = token.partition("十")
    return (_NUM[tens] if tens else 1) * 10 + (_NUM[ones] if ones else 0)


def parse_callback_time(text: str, now: datetime) -> datetime | None:
    """The moment the customer asked to be called back, or None if the reply names none.

    ``now`` carries the campaign's time zone; the result is in the same zone.
    """
    text = re.sub(r"\s+", "", text)
    relative = re.search(
        r"([0-9零一二两三四五六七八九十]+|半)个?(小时|钟头|分钟)(以?后|之后)", text
    )
    if relative:
        amount, unit = relative.group(1), relative.group(2)
        if amount == "半":
            return now + timedelta(minutes=30)
        value = _number(amount)
        if value is not None:
            return now + (timedelta(minutes=value) if unit == "分钟" else timedelta(hours=value))
    vague = re.search(r"(等会|等一会|一会儿|待会|晚点|稍后)", text)
    if vague and not re.search(r"[0-9零一二两三四五六七八九十]点", text):
        return now + timedelta(hours=1)

    day = now
    day_named = False
    if "后天" in text:
        day, day_named = now + timedelta(days=2), True
    elif "明天" in text or "明早" in text:
        day, day_named = now + timedelta(days=1), True
    elif "今天" in text or "今晚" in text:
        day_named = True
    weekday = re.search(r"(?:周|星期|礼拜)([一二三四五六日天])", text)
    if weekday:
        ahead = (_WEEKDAYS[weekday.group(1)] - now.weekday()) % 7 or 7
        day, day_named = now + timedelta(days=ahead), True

    period = next((p for p in _PERIOD_DEFAULT_HOUR if p in text), None)
    if "明早" in text:
        period = "早上"
    if "今晚" in text:
        period = "晚上"
    hour_match = re.search(
        r"([0-9零一二两三四五六七八九十]+)[点:：时](半|([0-9零一二三四五六七八九十]+)分?)?", text
    )
    hour: int | None = None
    minute = 0
    if hour_match:
        hour = _number(hour_match.group(1))
        if hour_match.group(2) == "半":
            minute = 30
        elif hour_match.group(3):
            minute = _number(hour_match.group(3)) or 0
    if hour is None and period is None and not day_named:
        return None
    if hour is None:
        hour = _PERIOD_DEFAULT_HOUR.get(period or "上午", 10)
    elif period in ("下午", "傍晚", "晚上") and hour < 12:
        hour += 12
    elif period is None and 1 <= hour <= 7:
        hour += 12  # "三点" on the phone means 15:00: nobody asks for a call at 03:00
    if not 0 <= hour <= 23 or not 0 <= minute <= 59:
        return None
    moment = day.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if moment <= now and not day_named:
        moment += timedelta(days=1)
    return moment


def say_time(moment: datetime, now: datetime) -> str:
    """How the bot reads a callback time back: "明天下午3点", "今天15点30分" style."""
    days = (moment.date() - now.date()).days
    day = {0: "今天", 1: "明天", 2: "后天"}.get(days, f"{moment.month}月{moment.day}日")
    hour = moment.hour
    period = "上午" if hour < 12 else ("中午" if hour == 12 else ("下午" if hour < 18 else "晚上"))
    shown = hour if hour <= 12 else hour - 12
    minutes = "" if moment.minute == 0 else ("半" if moment.minute == 30 else f"{moment.minute}分")
    return f"{day}{period}{shown}点{minutes}"
