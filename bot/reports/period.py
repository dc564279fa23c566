"""Daily and weekly figures across one or all campaigns (DESIGN.md: "Weekly: total calls,
connect rate, valid-sale rate, complaints and how they were handled").

A period is a range of local dates, both ends included, in one time zone.  An attempt (and
the call it became) belongs to the day it was dialled; a valid sale to the day it entered
the consent ledger; a complaint to the day it was recorded (the complaints table, which
also has those an agent or a supervisor entered, with their handling status).  Only ledger
entries count as valid sales, and not those QA found non-compliant (the latest review of
the call decides).  Attempts still being dialled are counted in ``in_progress``, not in
``calls``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from bot.reports.figures import attempt_time, blacklisted_phones, pct, rate
from bot.store.ledger import CONSENT
from bot.store.models import (
    Call,
    CallAttempt,
    Campaign,
    Complaint,
    Consent,
    Contact,
    Escalation,
    QaReview,
)

PERIODS = ("daily", "weekly")


def period_bounds(period: str, day: date) -> tuple[date, date]:
    """First and last local date of the daily or weekly (ISO week, Monday first) period."""
    if period == "daily":
        return day, day
    if period == "weekly":
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=6)
    raise ValueError(f"unknown period {period!r}; expected one of {', '.join(PERIODS)}")


def period_label(start: date, end: date) -> str:
    """``2026-11-23`` for a day, ``2026-W48`` for an ISO week, else ``start_end``."""
    if start == end:
        return start.isoformat()
    year, week, weekday = start.isocalendar()
    if weekday == 1 and end == start + timedelta(days=6):
        return f"{year}-W{week:02d}"
    return f"{start.isoformat()}_{end.isoformat()}"


def _utc_bounds(start: date, end: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    return (datetime.combine(start, time.min, zone),
            datetime.combine(end + timedelta(days=1), time.min, zone))


def _empty() -> dict[str, int]:
    return dict.fromkeys(("calls", "in_progress", "connected", "valid_sales", "complaints",
                          "complaints_escalated", "complaints_blacklisted",
                          "complaints_recorded", "complaints_unresolved", "escalations"), 0)


def _finish(counts: dict[str, int]) -> dict[str, Any]:
    calls, connected, sales = counts["calls"], counts["connected"], counts["valid_sales"]
    return {
        "calls": calls,
        "in_progress": counts["in_progress"],
        "connected": connected,
        "connect_rate": rate(connected, calls),
        "valid_sales": sales,
        "valid_sale_rate": rate(sales, connected),
        "valid_sale_rate_over_dialled": rate(sales, calls),
        "escalations": counts["escalations"],
        "complaints": {"calls": counts["complaints"],
                       "escalated": counts["complaints_escalated"],
                       "blacklisted": counts["complaints_blacklisted"],
                       "recorded": counts["complaints_recorded"],
                       "unresolved": counts["complaints_unresolved"]},
    }


def period_figures(session: Session, *, campaign: Campaign | None = None, start: date,
                   end: date, tz: str | ZoneInfo) -> dict[str, Any]:
    """Totals, one row per campaign and one per local day, from *start* to *end* included."""
    if end < start:
        raise ValueError(f"period ends ({end}) before it starts ({start})")
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    lo, hi = _utc_bounds(start, end, zone)
    # An attempt is in the period by its start, or by its creation while it has not started.
    in_period = (((CallAttempt.started_at >= lo) & (CallAttempt.started_at < hi))
                 | (CallAttempt.started_at.is_(None) & (CallAttempt.created_at >= lo)
                    & (CallAttempt.created_at < hi)))
    if campaign is not None:
        in_period = in_period & (CallAttempt.campaign_id == campaign.id)

    def day_of(moment: datetime) -> date:
        return moment.astimezone(zone).date()

    by_campaign: dict[int, dict[str, int]] = defaultdict(_empty)
    by_day: dict[date, dict[str, int]] = defaultdict(_empty)

    def add(campaign_id: int, day: date, key: str, n: int = 1) -> None:
        by_campaign[campaign_id][key] += n
        by_day[day][key] += n

    attempt_day: dict[str, date] = {}
    for row in session.execute(
            select(CallAttempt.call_id, CallAttempt.campaign_id, CallAttempt.dial_result,
                   CallAttempt.started_at, CallAttempt.created_at).where(in_period)):
        day = day_of(attempt_time(row.started_at, row.created_at))
        attempt_day[row.call_id] = day
        if row.dial_result is None:
            add(row.campaign_id, day, "in_progress")
            continue
        add(row.campaign_id, day, "calls")
        if row.dial_result == "answered":
            add(row.campaign_id, day, "connected")

    # Complaint calls of those attempts, and how each was handled.
    complaint_calls = (select(Call.id, Call.campaign_id, Contact.phone)
                       .join(CallAttempt, CallAttempt.id == Call.attempt_id)
                       .join(Contact, Contact.id == Call.contact_id)
                       .where(Call.outcome == "complaint", in_period))
    complaint_rows = session.execute(complaint_calls).all()
    escalated = set(session.scalars(select(Escalation.call_id).where(
        Escalation.call_id.in_(select(complaint_calls.subquery().c.id)))))
    listed = blacklisted_phones(session, (r.phone for r in complaint_rows))
    for call_id, campaign_id, phone in complaint_rows:
        day = attempt_day[call_id]
        add(campaign_id, day, "complaints")
        add(campaign_id, day, "complaints_escalated", call_id in escalated)
        add(campaign_id, day, "complaints_blacklisted", phone in listed)

    # Complaints recorded (the complaints table: heard on a call, or entered by an agent or a
    # supervisor, with or without a call), by the day they were recorded, and those of them
    # not resolved yet.
    complaint_query = select(Complaint.campaign_id, Complaint.created_at, Complaint.status).where(
        Complaint.created_at >= lo, Complaint.created_at < hi)
    if campaign is not None:
        complaint_query = complaint_query.where(Complaint.campaign_id == campaign.id)
    for campaign_id, created_at, status in session.execute(complaint_query):
        add(campaign_id, day_of(created_at), "complaints_recorded")
        add(campaign_id, day_of(created_at), "complaints_unresolved", status != "resolved")

    # Escalations of any reason, by the day they were made.
    esc_query = select(Escalation.campaign_id, Escalation.created_at).where(
        Escalation.created_at >= lo, Escalation.created_at < hi)
    if campaign is not None:
        esc_query = esc_query.where(Escalation.campaign_id == campaign.id)
    for campaign_id, created_at in session.execute(esc_query):
        add(campaign_id, day_of(created_at), "escalations")

    # Valid sales: consent ledger entries made inside the period, except those whose latest
    # QA review found the sale non-compliant (DESIGN.md: such a sale is invalid).
    later = aliased(QaReview)
    failed_qa = select(QaReview.id).where(
        QaReview.call_id == Consent.call_id, QaReview.compliant.is_(False),
        ~select(later.id).where(later.call_id == QaReview.call_id,
                                later.id > QaReview.id).exists())
    sale_query = select(Consent.campaign_id, Consent.created_at).where(
        Consent.kind == CONSENT,  # not the recording seals that share the chain
        Consent.created_at >= lo, Consent.created_at < hi, ~failed_qa.exists())
    if campaign is not None:
        sale_query = sale_query.where(Consent.campaign_id == campaign.id)
    for campaign_id, created_at in session.execute(sale_query):
        add(campaign_id, day_of(created_at), "valid_sales")

    totals: Counter[str] = Counter()
    for counts in by_campaign.values():
        totals.update(counts)
    names: dict[int, str] = {row.id: row.name for row in session.execute(
        select(Campaign.id, Campaign.name).where(Campaign.id.in_(list(by_campaign))))}
    if campaign is not None:
        names.setdefault(campaign.id, campaign.name)
        by_campaign.setdefault(campaign.id, _empty())
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    return {
        "period": "daily" if start == end else "weekly" if len(days) == 7
        and start.weekday() == 0 else "range",
        "label": period_label(start, end),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "timezone": zone.key,
        "campaign": campaign.name if campaign is not None else None,
        "totals": _finish({**_empty(), **totals}),
        "campaigns": [{"campaign": names[cid], **_finish(by_campaign[cid])}
                      for cid in sorted(by_campaign, key=lambda c: names[c])],
        "days": [{"date": d.isoformat(), **_finish(by_day.get(d, _empty()))} for d in days],
    }


def format_period(fig: dict[str, Any]) -> str:
    """A plain-text daily or weekly report for the terminal."""
    kind = {"daily": "日报", "weekly": "周报"}.get(fig["period"], "报表")
    scope = fig["campaign"] or "全部活动 all campaigns"

    def line(label: str, row: dict[str, Any]) -> str:
        comp = row["complaints"]
        return (f"{label}: 拨打 {row['calls']}, 接通 {row['connected']} "
                f"({pct(row['connect_rate'])}), 有效成交 {row['valid_sales']} "
                f"(占接通 {pct(row['valid_sale_rate'])}), 投诉通话 {comp['calls']} "
                f"(转人工 {comp['escalated']}, 拉黑 {comp['blacklisted']}), 投诉记录 "
                f"{comp['recorded']} (未解决 {comp['unresolved']})")

    lines = [f"{kind} {fig['label']} ({fig['start']} – {fig['end']}, {fig['timezone']}): {scope}",
             "  " + line("合计 total", fig["totals"])]
    if fig["totals"]["in_progress"]:
        lines.append(f"  进行中 in progress: {fig['totals']['in_progress']} 次拨打 (未计入)")
    if fig["campaign"] is None:
        lines += ["  按活动 by campaign:"] + [f"    {line(r['campaign'], r)}"
                                            for r in fig["campaigns"]]
    if len(fig["days"]) > 1:
        lines += ["  按日 by day:"] + [f"    {line(r['date'], r)}" for r in fig["days"]]
    return "\n".join(lines)
