"""Calling windows, retry timing, per-contact reasons and notification deadlines (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.campaigns.compliance import (
    ContactFacts,
    block_reason,
    clamp_to_window,
    deadline_warning,
    first_window_of_next_day,
    in_window,
    next_attempt,
    next_window_start,
)
from bot.campaigns.definition import CampaignDefinition, parse_definition

SH = ZoneInfo("Asia/Shanghai")
MON = date(2030, 5, 6)  # a Monday; 2030-05-11 is a Saturday


def sh(day: date, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=SH)


def defn(type: str = "marketing", **extra: Any) -> CampaignDefinition:
    data: dict[str, Any] = {
        "name": "c", "type": type, "company": "示例", "hotline": "10010",
        "script": {"product": "来电提醒", "price": "每月5元", "cancel_method": "短信",
                   "usage": "自动", "features": "提醒", "trial_days": 30,
                   "notice_text": "通知"},
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return parse_definition(data)


# --- windows -------------------------------------------------------------------------------


@pytest.mark.parametrize(("clock", "inside"), [
    ((8, 59, 59), False), ((9, 0, 0), True), ((11, 59, 59), True), ((12, 0, 0), False),
    ((13, 59, 59), False), ((14, 0, 0), True), ((19, 59, 59), True), ((20, 0, 0), False),
])
def test_default_windows_in_shanghai(clock: tuple[int, int, int], inside: bool) -> None:
    assert in_window(defn(), sh(MON, *clock)) is inside


def test_windows_are_read_in_the_campaign_time_zone() -> None:
    # 03:59 UTC is 11:59 in Shanghai (inside); 04:00 UTC is 12:00 (outside).
    assert in_window(defn(), datetime(2030, 5, 6, 3, 59, tzinfo=UTC))
    assert not in_window(defn(), datetime(2030, 5, 6, 4, 0, tzinfo=UTC))
    # The same instant is 13:00 in Tokyo: a Tokyo campaign is at lunch.
    tokyo = defn(timezone="Asia/Tokyo")
    assert not in_window(tokyo, datetime(2030, 5, 6, 4, 0, tzinfo=UTC))
    assert in_window(tokyo, datetime(2030, 5, 6, 5, 0, tzinfo=UTC))  # 14:00 in Tokyo


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        in_window(defn(), datetime(2030, 5, 6, 10, 0))


def test_weekdays_and_dates_limit_the_calling_days() -> None:
    weekdays = defn(schedule={"weekdays": ["mon", "tue", "wed", "thu", "fri"]})
    saturday = MON + timedelta(days=5)
    assert not in_window(weekdays, sh(saturday, 10))
    assert in_window(defn(), sh(saturday, 10))
    # Friday evening -> Monday morning
    assert next_window_start(weekdays, sh(MON + timedelta(days=4), 20, 5)) == sh(
        MON + timedelta(days=7), 9).astimezone(UTC)
    dated = defn(schedule={"start_date": "2030-05-08", "end_date": "2030-05-09"})
    assert not in_window(dated, sh(MON, 10))
    assert in_window(dated, sh(date(2030, 5, 9), 10))
    assert not in_window(dated, sh(date(2030, 5, 10), 10))
    assert next_window_start(dated, sh(MON, 10)) == sh(date(2030, 5, 8), 9)
    assert next_window_start(dated, sh(date(2030, 5, 9), 15)) is None  # schedule over


def test_next_window_start_and_clamp() -> None:
    d = defn()
    assert next_window_start(d, sh(MON, 7)) == sh(MON, 9)
    assert next_window_start(d, sh(MON, 9)) == sh(MON, 9)
    assert next_window_start(d, sh(MON, 10)) == sh(MON, 14)  # inside: the next one
    assert next_window_start(d, sh(MON, 21)) == sh(MON + timedelta(days=1), 9)
    assert clamp_to_window(d, sh(MON, 10, 30)) == sh(MON, 10, 30)
    assert clamp_to_window(d, sh(MON, 12, 30)) == sh(MON, 14)
    assert clamp_to_window(d, sh(MON, 23)) == sh(MON + timedelta(days=1), 9)
    late = defn(schedule={"windows": ["18:00-24:00"]})
    assert in_window(late, sh(MON, 23, 59, 59))
    assert clamp_to_window(late, sh(MON, 12)) == sh(MON, 18)


def test_first_window_of_next_day() -> None:
    d = defn(schedule={"windows": ["10:00-12:00", "14:00-20:00"], "weekdays":
                       ["mon", "tue", "wed", "thu", "fri"]})
    assert first_window_of_next_day(d, sh(MON, 9)) == sh(MON + timedelta(days=1), 10)
    # 23:30 Sunday in Shanghai is still Sunday there (15:30 UTC): next day is Monday
    sunday_night = sh(MON - timedelta(days=1), 23, 30)
    assert first_window_of_next_day(d, sunday_night) == sh(MON, 10)
    friday = MON + timedelta(days=4)
    assert first_window_of_next_day(d, sh(friday, 15)) == sh(MON + timedelta(days=7), 10)


# --- retries -------------------------------------------------------------------------------


def test_retry_timing_per_result() -> None:
    d = defn()
    now = sh(MON, 10)
    assert next_attempt(d, "busy", now) == sh(MON, 10, 30)
    assert next_attempt(d, "no_answer", now) == sh(MON, 14)  # 12:00 -> after lunch
    assert next_attempt(d, "no_answer", sh(MON, 15)) == sh(MON, 17)
    assert next_attempt(d, "powered_off", now) == sh(MON + timedelta(days=1), 9)
    assert next_attempt(d, "suspended", now) == sh(MON + timedelta(days=1), 9)
    assert next_attempt(d, "invalid_number", now) is None
    assert next_attempt(d, "failed", now) == sh(MON, 10, 30)
    # busy late in the evening: the delay ends after the last window -> next morning
    assert next_attempt(d, "busy", sh(MON, 19, 45)) == sh(MON + timedelta(days=1), 9)


def test_retry_overrides() -> None:
    d = defn(dialing={"retry": {"busy": "1h", "no_answer": "next_day", "rejected": "never"}})
    assert next_attempt(d, "busy", sh(MON, 9)) == sh(MON, 10)
    assert next_attempt(d, "no_answer", sh(MON, 9)) == sh(MON + timedelta(days=1), 9)
    assert next_attempt(d, "rejected", sh(MON, 9)) is None


# --- reasons -------------------------------------------------------------------------------

NOW = sh(MON, 10)


def facts(**kw: Any) -> ContactFacts:
    base: dict[str, Any] = {"status": "pending", "attempts": 0}
    return ContactFacts(**{**base, **kw})


@pytest.mark.parametrize(("status_or_facts", "reason"), [
    (facts(), None),
    (facts(blocked=True), "dnc"),
    (facts(status="dnc"), "dnc"),
    (facts(status="done"), "done"),
    (facts(status="failed", last_result="invalid_number"), "invalid"),
    (facts(status="failed", last_result="busy"), "attempts_exhausted"),
    (facts(attempts=3), "attempts_exhausted"),
    (facts(attempts=3, due_callback="customer_request"), None),
    (facts(attempts=3, due_callback="customer_request", callback_calls=2), None),
    (facts(attempts=3, due_callback="customer_request", callback_calls=3),
     "attempts_exhausted"),
    (facts(attempts=3, due_callback="qa_followup", callback_calls=9), None),
    (facts(next_attempt_at=NOW + timedelta(hours=1), due_callback="customer_request",
           callback_calls=3), "retry_wait"),
    (facts(status="in_progress"), "in_progress"),
    (facts(next_attempt_at=NOW + timedelta(minutes=1)), "retry_wait"),
    (facts(next_attempt_at=NOW), None),
    (facts(marketing_cap_until=NOW + timedelta(days=1)), "marketing_cap"),
    (facts(marketing_cap_until=NOW), None),
    (facts(marketing_cap_until=NOW + timedelta(days=1), due_callback="customer_request"), None),
    (facts(marketing_cap_until=NOW + timedelta(days=1), due_callback="qa_followup"), None),
    (facts(phone_locked=True), "in_progress"),
    (facts(blocked=True, status="done"), "dnc"),
])
def test_block_reasons(status_or_facts: ContactFacts, reason: str | None) -> None:
    assert block_reason(defn(), "running", status_or_facts, NOW) == reason


def test_campaign_state_and_window_reasons() -> None:
    assert block_reason(defn(), "paused", facts(), NOW) == "campaign_not_running"
    assert block_reason(defn(), "draft", facts(), NOW) == "campaign_not_running"
    assert block_reason(defn(), "running", facts(), sh(MON, 12, 30)) == "outside_window"
    # the cap only concerns marketing campaigns
    capped = facts(marketing_cap_until=NOW + timedelta(days=1))
    assert block_reason(defn("notification"), "running", capped, NOW) is None
    assert block_reason(defn(dialing={"max_attempts": 5}), "running", facts(attempts=3),
                        NOW) is None


# --- deadlines -----------------------------------------------------------------------------


def test_deadline_warning() -> None:
    notice = defn("notification", script={"deadline": "2030-05-10"},
                  dialing={"notify_lead_days": 2})
    assert deadline_warning(notice, date(2030, 5, 7)) is None  # 3 days ahead
    assert deadline_warning(notice, date(2030, 5, 8)) is None  # 2 days: not fewer
    late = deadline_warning(notice, date(2030, 5, 9))
    assert late is not None and late.level == "warning" and late.days_left == 1
    assert "2030-05-10" in late.message
    today = deadline_warning(notice, date(2030, 5, 10))
    assert today is not None and today.level == "warning" and today.days_left == 0
    passed = deadline_warning(notice, date(2030, 5, 11))
    assert passed is not None and passed.level == "error" and "passed" in passed.message
    # calls start at schedule.start_date when that is later than today
    delayed = defn("notification", script={"deadline": "2030-05-10"},
                   schedule={"start_date": "2030-05-09"})
    warning = deadline_warning(delayed, date(2030, 5, 1))
    assert warning is not None and warning.first_day == date(2030, 5, 9)
    assert deadline_warning(defn(), date(2030, 5, 9)) is None  # not a notification
    assert deadline_warning(defn("notification"), date(2030, 5, 9)) is None  # no deadline
