"""The agent figures, per agent and day (DESIGN.md: "average talk time, after-call work
time, average handle time, calls per hour, first-call resolution, service level (answered
within X s), occupancy"), computed from rows alone, so that each can be checked by hand.

Counting rules:

- The day is a local date in one time zone; time in a state is clipped to the day and to
  *now* (a day still going on counts up to now).  An agent's state at the start of the day
  is their last change before it.
- *Offers* are those made that day; *accepted*, *declined*, *missed* (timed out) and
  *withdrawn* (the customer hung up or the wait ran out while it rang) are their answers.
  The means per call divide by the calls accepted that day.
- *Talk time* is time ``on_call``; *after-call work* is time in ``wrap_up``; *handle
  time* is both, per call accepted.
- *Staffed* time is logged in and not away (available, offered, on call, wrap-up).
  *Calls per hour* = calls accepted ÷ staffed hours; *occupancy* = (talk + after-call
  work) ÷ staffed time.
- *Service level*: offers accepted within the campaign's ``escalation.service_level_s`` ÷
  offers answered by the agent (withdrawn offers are nobody's doing and are left out, and
  an offer still ringing has no answer yet).
- *First-call resolution*: of the calls accepted that day, those not dispositioned
  ``callback`` and not followed, within 7 days of being taken, by a new escalation or a
  customer-requested callback of the same customer (the same phone number, any campaign).
  Calls taken less than 7 days before *now* count as resolved so far: ``fcr_open`` says how
  many are still in their window.
- A ratio whose denominator is 0 is ``None`` (shown as "-").
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.store.vocab import AGENT_STATES, DISPOSITIONS

FCR_WINDOW = timedelta(days=7)
WORKING = ("available", "offered", "on_call", "wrap_up")  # staffed: logged in, not away


@dataclass(frozen=True)
class StateRow:
    """An agent entered *state* at *at*."""

    agent_id: int
    at: datetime
    state: str


@dataclass(frozen=True)
class OfferRow:
    agent_id: int
    escalation_id: int
    customer: str  # whatever identifies the customer across campaigns (the phone number)
    offered_at: datetime
    answered_at: datetime | None
    outcome: str | None
    service_level_s: int  # the campaign's escalation.service_level_s


@dataclass(frozen=True)
class DispositionRow:
    agent_id: int
    escalation_id: int
    disposition: str
    at: datetime


@dataclass(frozen=True)
class FollowUpRow:
    """A later escalation or customer-requested callback of a customer."""

    customer: str
    at: datetime
    kind: str  # "escalation" or "callback"


def day_span(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    following = day + timedelta(days=1)
    return start, datetime(following.year, following.month, following.day, tzinfo=zone)


def state_seconds(rows: Sequence[StateRow], start: datetime, end: datetime) -> dict[str, float]:
    """Seconds spent in each state within [start, end), from one agent's changes in time
    order (including their last change before *start*)."""
    spent = dict.fromkeys(AGENT_STATES, 0.0)
    for row, following in zip(rows, [*rows[1:], None], strict=True):
        until = following.at if following is not None else end
        lo, hi = max(row.at, start), min(until, end)
        if hi > lo:
            spent[row.state] += (hi - lo).total_seconds()
    return spent


def _ratio(part: float, whole: float, digits: int = 4) -> float | None:
    return round(part / whole, digits) if whole else None


# Calls per hour over a few minutes staffed says nothing (one call in 21 s read as 174 an
# hour on the desk): below this the rate is not given.
MIN_STAFFED_FOR_RATE_S = 15 * 60


def _per_hour(calls: float, staffed_s: float) -> float | None:
    return _ratio(calls, staffed_s / 3600, 2) if staffed_s >= MIN_STAFFED_FOR_RATE_S else None


def _fcr(accepted: Sequence[OfferRow], dispositions: Mapping[int, DispositionRow],
         follow_ups: Mapping[str, Sequence[FollowUpRow]], now: datetime) -> dict[str, Any]:
    resolved = still_open = 0
    for offer in accepted:
        taken = offer.answered_at or offer.offered_at
        disposition = dispositions.get(offer.escalation_id)
        again = any(taken < f.at <= taken + FCR_WINDOW for f in follow_ups.get(offer.customer, ()))
        if not again and (disposition is None or disposition.disposition != "callback"):
            resolved += 1
        if taken + FCR_WINDOW > now:
            still_open += 1
    return {"first_call_resolution": _ratio(resolved, len(accepted)), "fcr_resolved": resolved,
            "fcr_open": still_open}


def _one_agent(agent_id: int, name: str, states: Sequence[StateRow],
               offers: Sequence[OfferRow], dispositions: Sequence[DispositionRow],
               escalation_dispositions: Mapping[int, DispositionRow],
               follow_ups: Mapping[str, Sequence[FollowUpRow]], start: datetime,
               end: datetime, now: datetime) -> dict[str, Any]:
    spent = state_seconds(states, start, min(end, now))
    outcomes = Counter(o.outcome for o in offers)
    accepted = [o for o in offers if o.outcome == "accepted"]
    answered = [o for o in offers if o.outcome not in (None, "withdrawn")]
    within = sum(1 for o in accepted if o.answered_at is not None
                 and (o.answered_at - o.offered_at).total_seconds() <= o.service_level_s)
    staffed = sum(spent[s] for s in WORKING)
    talk, acw = spent["on_call"], spent["wrap_up"]
    calls = len(accepted)
    return {
        "agent_id": agent_id,
        "agent": name,
        "offers": len(offers),
        "accepted": calls,
        "declined": outcomes.get("declined", 0),
        "missed": outcomes.get("timed_out", 0),
        "withdrawn": outcomes.get("withdrawn", 0),
        "ringing": outcomes.get(None, 0),
        "talk_s": round(talk, 1),
        "talk_mean_s": _ratio(talk, calls, 1),
        "after_call_work_s": round(acw, 1),
        "after_call_work_mean_s": _ratio(acw, calls, 1),
        "handle_mean_s": _ratio(talk + acw, calls, 1),
        "logged_in_s": round(staffed + spent["away"], 1),
        "staffed_s": round(staffed, 1),
        "away_s": round(spent["away"], 1),
        "calls_per_hour": _per_hour(calls, staffed),
        "occupancy": _ratio(talk + acw, staffed),
        "service_level": _ratio(within, len(answered)),
        "service_level_met": within,
        **_fcr(accepted, escalation_dispositions, follow_ups, now),
        "dispositions": {d: sum(1 for r in dispositions if r.disposition == d)
                         for d in DISPOSITIONS},
    }


def team_figures(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    def total(key: str) -> float:
        return sum(r[key] for r in rows)

    calls, staffed = total("accepted"), total("staffed_s")
    work = total("talk_s") + total("after_call_work_s")
    answered = total("offers") - total("withdrawn") - total("ringing")
    return {
        "agents": len(rows),
        **{k: total(k) for k in ("offers", "accepted", "declined", "missed", "withdrawn",
                                 "ringing", "fcr_resolved", "fcr_open", "service_level_met")},
        **{k: round(total(k), 1) for k in ("talk_s", "after_call_work_s", "logged_in_s",
                                           "staffed_s", "away_s")},
        "talk_mean_s": _ratio(total("talk_s"), calls, 1),
        "after_call_work_mean_s": _ratio(total("after_call_work_s"), calls, 1),
        "handle_mean_s": _ratio(work, calls, 1),
        "calls_per_hour": _per_hour(calls, staffed),
        "occupancy": _ratio(work, staffed),
        "service_level": _ratio(total("service_level_met"), answered),
        "first_call_resolution": _ratio(total("fcr_resolved"), calls),
        "dispositions": {d: sum(r["dispositions"][d] for r in rows) for d in DISPOSITIONS},
    }


def agent_day_figures(*, day: date, zone: ZoneInfo, now: datetime, names: Mapping[int, str],
                      states: Iterable[StateRow], offers: Iterable[OfferRow],
                      dispositions: Iterable[DispositionRow],
                      follow_ups: Iterable[FollowUpRow]) -> dict[str, Any]:
    """The figures of every agent active on *day* (logged in some of it, or offered a call),
    and of the team.  *offers*: those made that day; *dispositions*: those recorded that
    day and those of the day's offers; *states*: every agent's changes of the day and their
    last one before it."""
    start, end = day_span(day, zone)
    by_agent: dict[int, list[StateRow]] = defaultdict(list)
    for change in sorted(states, key=lambda r: (r.agent_id, r.at)):
        by_agent[change.agent_id].append(change)
    day_offers: dict[int, list[OfferRow]] = defaultdict(list)
    for offer in offers:
        if start <= offer.offered_at < end:
            day_offers[offer.agent_id].append(offer)
    all_dispositions = list(dispositions)
    of_escalation = {d.escalation_id: d for d in all_dispositions}
    recorded: dict[int, list[DispositionRow]] = defaultdict(list)
    for disposition in all_dispositions:
        if start <= disposition.at < end:
            recorded[disposition.agent_id].append(disposition)
    later: dict[str, list[FollowUpRow]] = defaultdict(list)
    for follow_up in follow_ups:
        later[follow_up.customer].append(follow_up)
    rows = []
    for agent_id in sorted(set(by_agent) | set(day_offers), key=lambda a: (names.get(a, ""), a)):
        figures = _one_agent(agent_id, names.get(agent_id, f"#{agent_id}"), by_agent[agent_id],
                             day_offers[agent_id], recorded[agent_id], of_escalation, later,
                             start, end, now)
        if figures["logged_in_s"] or figures["offers"]:
            rows.append(figures)
    return {"day": day.isoformat(), "timezone": zone.key,
            "as_of": min(now, end).astimezone(zone).isoformat(timespec="seconds"),
            "agents": rows, "team": team_figures(rows)}


# --- text ------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} s"


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def format_agent_figures(fig: dict[str, Any]) -> str:
    """A plain-text report of the agent figures for the terminal."""
    lines = [f"坐席日报 agents {fig['day']} ({fig['timezone']}, as of {fig['as_of']})"]
    if not fig["agents"]:
        lines.append("  没有坐席上线 no agent was logged in")
        return "\n".join(lines)

    def describe(name: str, r: dict[str, Any]) -> list[str]:
        dispositions = ", ".join(f"{d} {n}" for d, n in r["dispositions"].items() if n) or "-"
        return [
            f"  {name}: 分配 offers {r['offers']}, 接听 accepted {r['accepted']}, "
            f"拒接 declined {r['declined']}, 未接 missed {r['missed']}, "
            f"撤回 withdrawn {r['withdrawn']}",
            f"    通话 talk {_secs(r['talk_mean_s'])} avg ({_hours(r['talk_s'])}), "
            f"话后 after-call work {_secs(r['after_call_work_mean_s'])} avg, "
            f"处理 handle {_secs(r['handle_mean_s'])} avg",
            f"    在线 staffed {_hours(r['staffed_s'])} (离开 away {_hours(r['away_s'])}), "
            f"每小时 calls/hour {r['calls_per_hour'] if r['calls_per_hour'] is not None else '-'}"
            f", 占用率 occupancy {_pct(r['occupancy'])}",
            f"    服务水平 service level {_pct(r['service_level'])}, 一次解决率 first-call "
            f"resolution {_pct(r['first_call_resolution'])}"
            + (f" ({r['fcr_open']} still within 7 days)" if r["fcr_open"] else ""),
            f"    处理结果 dispositions: {dispositions}",
        ]

    for row in fig["agents"]:
        lines += describe(row["agent"], row)
    lines += describe(f"合计 team ({fig['team']['agents']})", fig["team"])
    return "\n".join(lines)
