"""When a contact may be dialled: calling windows, retry timing, and the reasons not to.

Pure functions of a campaign definition and the facts the dialer reads from the database
(bot/campaigns/dialer.py); every time is an aware datetime and ``now`` is always a parameter.
Windows are read in the campaign's own time zone: ``09:00-12:00`` means 09:00 to 11:59:59 on
the wall clocks of ``defn.timezone``, on the listed weekdays, between ``schedule.start_date``
and ``schedule.end_date`` (both inclusive).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from bot.campaigns.definition import WEEKDAYS, CampaignDefinition

Reason = Literal["dnc", "done", "invalid", "attempts_exhausted", "in_progress", "retry_wait",
                 "marketing_cap", "outside_window", "campaign_not_running"]
# The order in which the reasons are tried: permanent ones first, so that a dry run's counts
# say what would still stop a contact once the calling window opens.
REASONS: tuple[Reason, ...] = ("campaign_not_running", "dnc", "done", "invalid",
                               "attempts_exhausted", "in_progress", "marketing_cap",
                               "retry_wait", "outside_window")
# Callbacks whose call is not a new marketing contact: the customer asked for it, or QA
# requires it.  The cross-campaign marketing cap does not hold them back.
CAP_EXEMPT_CALLBACKS = frozenset({"customer_request", "qa_followup"})
# How far ahead a window is searched for (a schedule with one weekday still has 52 a year).
_HORIZON_DAYS = 400


def _require_aware(t: datetime) -> None:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"naive datetime {t.isoformat()} refused; pass an aware one")


def is_calling_day(defn: CampaignDefinition, day: date) -> bool:
    schedule = defn.schedule
    if schedule.start_date and day < schedule.start_date:
        return False
    if schedule.end_date and day > schedule.end_date:
        return False
    return WEEKDAYS[day.weekday()] in schedule.weekdays


def _inside(span: tuple[time, time], clock: time) -> bool:
    start, end = span
    # time.max stands for 24:00: the window runs to the end of the day.
    return start <= clock and (clock < end or end == time.max)


def in_window(defn: CampaignDefinition, now: datetime) -> bool:
    """Whether *now* falls inside one of the campaign's calling windows."""
    _require_aware(now)
    local = now.astimezone(defn.zone)
    if not is_calling_day(defn, local.date()):
        return False
    clock = local.time().replace(tzinfo=None)
    return any(_inside(span, clock) for span in defn.schedule.spans)


def _window_starts(defn: CampaignDefinition, first_day: date) -> list[tuple[date, time]]:
    """(day, start) of the windows from *first_day* on, in order, up to the horizon."""
    starts: list[tuple[date, time]] = []
    for offset in range(_HORIZON_DAYS):
        day = first_day + timedelta(days=offset)
        if defn.schedule.end_date and day > defn.schedule.end_date:
            break
        if is_calling_day(defn, day):
            starts.extend((day, start) for start, _ in defn.schedule.spans)
    return starts


def _at(defn: CampaignDefinition, day: date, clock: time) -> datetime:
    return datetime.combine(day, clock, tzinfo=defn.zone).astimezone(UTC)


def next_window_start(defn: CampaignDefinition, after: datetime) -> datetime | None:
    """The start of the first calling window that begins at or after *after* (in UTC), or
    None when the schedule has ended.  Inside a window this is the start of the next one."""
    _require_aware(after)
    local = after.astimezone(defn.zone)
    for day, start in _window_starts(defn, local.date()):
        candidate = _at(defn, day, start)
        if candidate >= after:
            return candidate
    return None


def clamp_to_window(defn: CampaignDefinition, t: datetime) -> datetime | None:
    """*t* itself when it is inside a calling window, else the next window start (None when
    the schedule has ended)."""
    return t.astimezone(UTC) if in_window(defn, t) else next_window_start(defn, t)


def first_window_of_next_day(defn: CampaignDefinition, after: datetime) -> datetime | None:
    """The first window of the first calling day after *after*'s local date."""
    _require_aware(after)
    tomorrow = after.astimezone(defn.zone).date() + timedelta(days=1)
    starts = _window_starts(defn, tomorrow)
    return _at(defn, *starts[0]) if starts else None


def next_attempt(defn: CampaignDefinition, result: str, now: datetime) -> datetime | None:
    """When to dial again after *result* (a dial result, or ``no_response``); None = never.

    A delay (``30m``, ``2h``) is added to *now* and the sum moved into the next window if it
    falls outside one (busy at 11:45 -> 14:00, not 12:15); ``next_day`` is the first window of
    the next calling day.  None also when the schedule has no window left.
    """
    delay = defn.dialing.retry_delay(result)
    if delay == "never":
        return None
    if delay == "next_day":
        return first_window_of_next_day(defn, now)
    return clamp_to_window(defn, now + delay)


# --- per-contact check ---------------------------------------------------------------------


@dataclass(frozen=True)
class ContactFacts:
    """What the database says about one contact, read by the dialer for :func:`block_reason`.

    ``due_callback`` is the kind of the contact's earliest pending callback that is due now
    (None if there is none); ``callback_calls`` how many customer-requested callbacks it has
    had; ``marketing_cap_until`` the end of the cap set by the latest
    answered call to the number from another marketing contact; ``phone_locked`` whether
    another live call holds the number.
    """

    status: str
    attempts: int
    next_attempt_at: datetime | None = None
    last_result: str | None = None
    blocked: bool = False
    due_callback: str | None = None
    callback_calls: int = 0
    marketing_cap_until: datetime | None = None
    phone_locked: bool = False

    def callback(self, defn: CampaignDefinition) -> str | None:
        """The due callback that lifts the attempt cap, if any: a customer-requested one only
        while the contact has had fewer than ``max_attempts`` of them (someone who asks again
        and again is not called forever), a follow-up always (it starts a new round)."""
        if (self.due_callback == "customer_request"
                and self.callback_calls >= defn.dialing.max_attempts):
            return None
        return self.due_callback


def counts_against_cap(defn: CampaignDefinition, facts: ContactFacts) -> bool:
    """Whether the next attempt counts against ``max_attempts``: not for a customer-requested
    callback within its budget (see :meth:`ContactFacts.callback`)."""
    return facts.callback(defn) != "customer_request"


def block_reason(defn: CampaignDefinition, campaign_status: str, facts: ContactFacts,
                 now: datetime) -> Reason | None:
    """Why the contact may not be dialled at *now*, or None when it may.

    Rules (first that applies, in the order of :data:`REASONS`):
    ``campaign_not_running`` unless the campaign is running; ``dnc`` when the number has an
    active do-not-call/blacklist entry or the contact was closed as such; ``done``; ``invalid``
    (closed after an invalid number); ``attempts_exhausted`` (closed, or ``max_attempts``
    counted attempts made and no callback due: a follow-up, or a customer-requested callback
    within its budget, is dialled even then); ``in_progress`` (the contact is on a call);
    ``marketing_cap`` (a marketing campaign's contact whose number had an answered call from
    another marketing contact within ``marketing_cap_days``; customer-requested callbacks and
    QA follow-ups are exempt); ``retry_wait`` (not due yet); ``in_progress`` also when another
    live call holds the number; ``outside_window``.
    """
    if campaign_status != "running":
        return "campaign_not_running"
    if facts.blocked or facts.status == "dnc":
        return "dnc"
    if facts.status == "done":
        return "done"
    if facts.status == "failed":
        return "invalid" if facts.last_result == "invalid_number" else "attempts_exhausted"
    if facts.status == "in_progress":
        return "in_progress"
    callback = facts.callback(defn)
    if callback is None and facts.attempts >= defn.dialing.max_attempts:
        return "attempts_exhausted"
    if (defn.type == "marketing" and callback not in CAP_EXEMPT_CALLBACKS
            and facts.marketing_cap_until is not None and facts.marketing_cap_until > now):
        return "marketing_cap"
    if callback is None and facts.next_attempt_at is not None and facts.next_attempt_at > now:
        return "retry_wait"
    if facts.phone_locked:
        return "in_progress"
    if not in_window(defn, now):
        return "outside_window"
    return None


# --- notification deadlines ------------------------------------------------------------------


@dataclass(frozen=True)
class DeadlineWarning:
    """A notification launched too late (``level="warning"``) or after its deadline
    (``level="error"``: the notice can no longer reach anyone in time)."""

    level: Literal["warning", "error"]
    message: str
    deadline: date
    first_day: date
    days_left: int

    def as_json(self) -> dict[str, object]:
        return {"level": self.level, "message": self.message,
                "deadline": self.deadline.isoformat(), "first_day": self.first_day.isoformat(),
                "days_left": self.days_left}


def deadline_warning(defn: CampaignDefinition, today: date) -> DeadlineWarning | None:
    """For a notification with ``script.deadline``: an error when the deadline has passed, a
    warning when calling starts (today, or ``schedule.start_date`` if later) fewer than
    ``dialing.notify_lead_days`` days before it; else None (also for other campaign types)."""
    deadline = defn.script.deadline
    if defn.type != "notification" or deadline is None:
        return None
    first_day = max(today, defn.schedule.start_date or today)
    days_left = (deadline - first_day).days
    lead = defn.dialing.notify_lead_days
    if days_left < 0:
        return DeadlineWarning(
            "error", f"the deadline {deadline.isoformat()} has passed (calls would start "
            f"{first_day.isoformat()}): the notice can no longer reach anyone in time",
            deadline, first_day, days_left)
    if days_left < lead:
        return DeadlineWarning(
            "warning", f"calls start {first_day.isoformat()}, only {days_left} day(s) before "
            f"the deadline {deadline.isoformat()} (notify_lead_days: {lead}): customers "
            "reached late may not be able to act on the notice",
            deadline, first_day, days_left)
    return None
