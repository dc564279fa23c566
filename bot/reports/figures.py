"""The campaign figures the business reads (DESIGN.md, "Figures the business reads").

Counting rules, so that every number can be checked by hand:

- An *attempt* is one dial.  Attempts whose dial result is still NULL are being dialled now:
  they are counted in ``in_progress`` only, never as dialled (so never as failed).
- ``dialled`` counts attempts with a dial result; ``connected`` those ``answered``.
- A *call* is the conversation of an answered attempt.  Outcomes, grades, talk time and the
  like count finished calls (with an outcome); calls still going on are in ``in_progress``.
- ``consents`` counts calls with the outcome ``consented``; ``ledger_consents`` counts the rows
  of the consent ledger for the campaign (the two differ only if something went wrong).
- Local hours use the campaign's time zone (``definition.timezone``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import mean, median
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from bot.reports.dispositions import agent_dispositions, describe_dispositions
from bot.store.ledger import CONSENT
from bot.store.models import (
    COMPLAINT_STATUSES,
    Call,
    CallAttempt,
    Campaign,
    Complaint,
    Consent,
    Contact,
    DncEntry,
    Escalation,
    SurveyAnswer,
)
from bot.store.vocab import (
    CONFIRMATION_RESULTS,
    DECLINE_REASONS,
    SURVEY_SCORE_MAX,
    SURVEY_SCORE_MIN,
)

DEFAULT_TIMEZONE = "Asia/Shanghai"
DECLINE_LABELS = {"distrust": "不信任来电", "too_expensive": "价格太高",
                  "not_needed": "不需要", "other": "其他"}
FUNNEL_STAGES = ("dialled", "connected", "verified", "pitched", "consented")
FUNNEL_LABELS = {"dialled": "拨打", "connected": "接通", "verified": "核实身份",
                 "pitched": "介绍产品", "consented": "同意"}
GRADES = ("A", "B", "C", "D")
UNGRADED = "ungraded"
AGE_BANDS = ("<25", "25-34", "35-44", "45-54", "55-64", "65+")
UNKNOWN = "unknown"
CONFIRMATION_LABELS = {"keep": "保留", "cancel": "取消", "undecided": "未决定"}
SATISFACTION_LEVELS = {"satisfied": "满意", "neutral": "一般", "dissatisfied": "不满意"}


def rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def campaign_zone(campaign: Campaign) -> ZoneInfo:
    return ZoneInfo(str((campaign.definition or {}).get("timezone") or DEFAULT_TIMEZONE))


def age_band(age: int | None) -> str:
    if age is None:
        return UNKNOWN
    if age < 25:
        return "<25"
    if age >= 65:
        return "65+"
    low = 25 + (age - 25) // 10 * 10
    return f"{low}-{low + 9}"


def attempt_time(started_at: datetime | None, created_at: datetime) -> datetime:
    """When an attempt was dialled: its start, or its creation while it has none."""
    return started_at or created_at


# --- the rows read from the database --------------------------------------------------------


@dataclass(frozen=True)
class _Attempt:
    call_id: str
    contact_id: int
    dial_result: str | None
    at: datetime


@dataclass(frozen=True)
class _Call:
    id: str
    contact_id: int
    outcome: str | None
    decline_reason: str | None
    confirmation_result: str | None
    grade: str | None
    verified: bool
    pitched: bool
    script_completed: bool
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True)
class _Contact:
    id: int
    phone: str
    age: int | None
    region: str | None


def _attempts(session: Session, campaign_id: int) -> list[_Attempt]:
    rows = session.execute(
        select(CallAttempt.call_id, CallAttempt.contact_id, CallAttempt.dial_result,
               CallAttempt.started_at, CallAttempt.created_at)
        .where(CallAttempt.campaign_id == campaign_id).order_by(CallAttempt.id))
    return [_Attempt(r.call_id, r.contact_id, r.dial_result,
                     attempt_time(r.started_at, r.created_at)) for r in rows]


def _calls(session: Session, campaign_id: int) -> list[_Call]:
    rows = session.execute(
        select(Call.id, Call.contact_id, Call.outcome, Call.decline_reason,
               Call.confirmation_result, Call.grade, Call.verified, Call.pitched,
               Call.script_completed, Call.started_at, Call.ended_at)
        .where(Call.campaign_id == campaign_id).order_by(Call.started_at, Call.id))
    return [_Call(*row) for row in rows]


def _contacts(session: Session, campaign_id: int) -> dict[int, _Contact]:
    rows = session.execute(select(Contact.id, Contact.phone, Contact.age, Contact.region)
                           .where(Contact.campaign_id == campaign_id))
    return {r.id: _Contact(*r) for r in rows}


def complaint_entries(session: Session, campaign_id: int | None = None) -> list[DncEntry]:
    """Blacklist entries made because of a complaint (source ``complaint``), of one campaign.

    An entry written during a call belongs to that call's campaign; one without a call (e.g.
    entered by an operator after a complaint on the hotline) belongs to every campaign whose
    list has the number.  Removed entries count too: the complaint was handled that way.
    """
    query = select(DncEntry).where(DncEntry.source == "complaint")
    if campaign_id is not None:
        own_calls = select(CallAttempt.call_id).where(CallAttempt.campaign_id == campaign_id)
        known_calls = select(CallAttempt.call_id)
        phones = select(Contact.phone).where(Contact.campaign_id == campaign_id)
        query = query.where(or_(
            DncEntry.call_id.in_(own_calls),
            and_(or_(DncEntry.call_id.is_(None), DncEntry.call_id.not_in(known_calls)),
                 DncEntry.phone.in_(phones))))
    return list(session.scalars(query.order_by(DncEntry.id)))


def blacklisted_phones(session: Session, phones: Iterable[str]) -> set[str]:
    """The numbers of *phones* that are or were on the blacklist (any source)."""
    wanted = set(phones)
    if not wanted:
        return set()
    return set(session.scalars(select(DncEntry.phone).where(
        DncEntry.kind == "blacklist", DncEntry.phone.in_(wanted))))


# --- the figures ----------------------------------------------------------------------------


def campaign_figures(session: Session, campaign: Campaign) -> dict[str, Any]:
    """Every figure of one campaign, as plain JSON-ready values (see the module docstring)."""
    zone = campaign_zone(campaign)
    attempts = _attempts(session, campaign.id)
    calls = _calls(session, campaign.id)
    contacts = _contacts(session, campaign.id)
    done = [a for a in attempts if a.dial_result is not None]
    finished = [c for c in calls if c.outcome is not None]

    dial_results = Counter(a.dial_result for a in done)
    outcomes = Counter(c.outcome for c in finished)
    reasons = Counter(c.decline_reason for c in finished
                      if c.outcome == "declined" and c.decline_reason)
    dialled = len(done)
    connected = dial_results.get("answered", 0)
    consents = outcomes.get("consented", 0)
    declined = outcomes.get("declined", 0)
    ledger_consents = session.scalar(
        select(func.count()).select_from(Consent).where(
            Consent.campaign_id == campaign.id, Consent.kind == CONSENT)) or 0
    escalations = session.execute(
        select(Escalation.call_id, Escalation.reason, Escalation.status)
        .where(Escalation.campaign_id == campaign.id)).all()

    return {
        "campaign": campaign.name,
        "type": campaign.type,
        "timezone": zone.key,
        "dialled": dialled,
        "numbers_dialled": len({a.contact_id for a in done}),
        "connected": connected,
        "connect_rate": rate(connected, dialled),
        "consents": consents,
        "ledger_consents": ledger_consents,
        "consent_rate_over_dialled": rate(consents, dialled),
        "consent_rate_over_connected": rate(consents, connected),
        "declined": declined,
        "declined_after_connect_rate": rate(declined, connected),
        "hung_up_early": outcomes.get("hung_up_early", 0),
        "in_progress": {"attempts": len(attempts) - len(done),
                        "calls": len(calls) - len(finished)},
        "dial_results": dict(sorted(dial_results.items())),
        "outcomes": dict(sorted(outcomes.items())),
        "decline_reasons": {r: reasons.get(r, 0) for r in DECLINE_REASONS},
        "funnel": _funnel(dialled, connected, calls, consents),
        "connect_by_hour": _connect_by_hour(done, zone),
        "grades": _grades(finished),
        "by_age": _breakdown(done, finished, contacts, lambda c: age_band(c.age), AGE_BANDS,
                             any(c.age is not None for c in contacts.values())),
        "by_region": _breakdown(done, finished, contacts, lambda c: c.region or UNKNOWN, (),
                                any(c.region for c in contacts.values())),
        "survey": _survey(session, campaign),
        "escalations": {"total": len(escalations),
                        "by_reason": dict(sorted(Counter(e.reason for e in escalations).items())),
                        "by_status": dict(sorted(Counter(e.status for e in escalations).items()))},
        "complaints": _complaints(session, campaign.id, finished, contacts,
                                  {e.call_id for e in escalations}),
        "confirmation_results": {r: sum(c.confirmation_result == r for c in finished)
                                 for r in CONFIRMATION_RESULTS},
        "talk_time": talk_time((c.started_at, c.ended_at) for c in finished),
        "agent_dispositions": agent_dispositions(session, campaign.id),
    }


def _funnel(dialled: int, connected: int, calls: Sequence[_Call],
            consents: int) -> list[dict[str, Any]]:
    counts = {"dialled": dialled, "connected": connected,
              "verified": sum(c.verified for c in calls),
              "pitched": sum(c.pitched for c in calls), "consented": consents}
    return [{"stage": s, "label": FUNNEL_LABELS[s], "count": counts[s],
             "rate": rate(counts[s], dialled)} for s in FUNNEL_STAGES]


def _connect_by_hour(done: Sequence[_Attempt], zone: ZoneInfo) -> list[dict[str, Any]]:
    tried: Counter[int] = Counter()
    answered: Counter[int] = Counter()
    for a in done:
        hour = a.at.astimezone(zone).hour
        tried[hour] += 1
        answered[hour] += a.dial_result == "answered"
    return [{"hour": h, "attempts": tried[h], "connected": answered[h],
             "rate": rate(answered[h], tried[h])} for h in sorted(tried)]


def _grades(finished: Sequence[_Call]) -> dict[str, int]:
    counts = Counter(c.grade if c.grade in GRADES else UNGRADED for c in finished)
    return {g: counts.get(g, 0) for g in (*GRADES, UNGRADED)}


def _breakdown(done: Sequence[_Attempt], finished: Sequence[_Call],
               contacts: dict[int, _Contact], key: Any, order: tuple[str, ...],
               present: bool) -> list[dict[str, Any]]:
    """Per group of contacts (age band, region): list size, dialled, connected, consents.

    Empty when no contact of the list carries the column.  Fixed *order* groups are all
    listed (zeros too); other groups by size, ``unknown`` last.
    """
    if not present:
        return []
    group = {cid: key(c) for cid, c in contacts.items()}
    rows: dict[str, Counter[str]] = defaultdict(Counter)
    for cid in contacts:
        rows[group[cid]]["contacts"] += 1
    for a in done:
        row = rows[group.get(a.contact_id, UNKNOWN)]
        row["dialled"] += 1
        row["connected"] += a.dial_result == "answered"
    for c in finished:
        rows[group.get(c.contact_id, UNKNOWN)]["consents"] += c.outcome == "consented"
    if order:
        names = [*order, *([UNKNOWN] if UNKNOWN in rows else [])]
    else:
        names = sorted((n for n in rows if n != UNKNOWN),
                       key=lambda n: (-rows[n]["contacts"], n))
        names += [UNKNOWN] if UNKNOWN in rows else []
    return [{"group": n, "contacts": rows[n]["contacts"], "dialled": rows[n]["dialled"],
             "connected": rows[n]["connected"], "consents": rows[n]["consents"],
             "consent_rate_over_dialled": rate(rows[n]["consents"], rows[n]["dialled"]),
             "consent_rate_over_connected": rate(rows[n]["consents"], rows[n]["connected"])}
            for n in names]


def _survey(session: Session, campaign: Campaign) -> list[dict[str, Any]]:
    """Score distribution (1-5), n and mean per scored question, in the campaign's order."""
    questions = ((campaign.definition or {}).get("survey") or {}).get("questions") or []
    defined = {q["key"]: q for q in questions}
    rows = session.execute(
        select(SurveyAnswer.question_key, SurveyAnswer.question_text, SurveyAnswer.score)
        .where(SurveyAnswer.campaign_id == campaign.id, SurveyAnswer.score.is_not(None))
        .order_by(SurveyAnswer.id)).all()
    scores: dict[str, list[int]] = defaultdict(list)
    texts: dict[str, str] = {}
    for key, text, score in rows:
        if score is not None:  # the query asks for scored answers only; mypy cannot know
            scores[key].append(score)
        texts.setdefault(key, text)
    keys = [k for k in defined if k in scores] + sorted(k for k in scores if k not in defined)
    result = []
    for key in keys:
        values = scores[key]
        scale = defined.get(key, {}).get("scale", "score")
        row: dict[str, Any] = {
            "question": key,
            "text": defined.get(key, {}).get("text") or texts[key],
            "scale": scale,
            "n": len(values),
            "mean": round(mean(values), 2),
            "counts": {str(s): values.count(s)
                       for s in range(SURVEY_SCORE_MIN, SURVEY_SCORE_MAX + 1)},
        }
        if scale == "satisfaction":  # 满意 4-5, 一般 3, 不满意 1-2 (bot/textnorm.py)
            row["levels"] = {"satisfied": sum(v >= 4 for v in values),
                             "neutral": values.count(3),
                             "dissatisfied": sum(v <= 2 for v in values)}
        result.append(row)
    return result


def _complaints(session: Session, campaign_id: int, finished: Sequence[_Call],
                contacts: dict[int, _Contact], escalated: set[str]) -> dict[str, Any]:
    """Complaint calls and how they were handled, the complaint blacklist entries, and the
    campaign's complaint records (the complaints table: heard on a call, recorded by an
    agent or entered by a supervisor) by handling status."""
    complaint_calls = [c for c in finished if c.outcome == "complaint"]
    entries = complaint_entries(session, campaign_id)
    listed = blacklisted_phones(session, (contacts[c.contact_id].phone for c in complaint_calls))
    statuses = Counter(session.scalars(select(Complaint.status).where(
        Complaint.campaign_id == campaign_id)))
    return {
        "calls": len(complaint_calls),
        "escalated": sum(c.id in escalated for c in complaint_calls),
        "blacklisted": sum(contacts[c.contact_id].phone in listed for c in complaint_calls),
        "blacklist_entries": len(entries),
        "blacklist_entries_active": sum(e.removed_at is None for e in entries),
        "recorded": sum(statuses.values()),
        "by_status": {status: statuses[status] for status in COMPLAINT_STATUSES},
    }


def talk_time(spans: Iterable[tuple[datetime, datetime | None]]) -> dict[str, Any]:
    """Mean and median seconds from answer to hang-up over the calls that have ended."""
    seconds = [(end - start).total_seconds() for start, end in spans if end is not None]
    return {"calls": len(seconds),
            "mean_s": round(mean(seconds), 1) if seconds else None,
            "median_s": round(median(seconds), 1) if seconds else None}


# --- text ---------------------------------------------------------------------------------


def pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def format_figures(fig: dict[str, Any]) -> str:
    """A plain-text report for the terminal."""
    lines = [
        f"活动 Campaign: {fig['campaign']} ({fig['type']})",
        f"  拨打 dialled:                 {fig['dialled']}",
        f"  接通 connected:               {fig['connected']}  (接通率 {pct(fig['connect_rate'])})",
        f"  同意 consents:                {fig['consents']}  "
        f"(占拨打 {pct(fig['consent_rate_over_dialled'])}, "
        f"占接通 {pct(fig['consent_rate_over_connected'])})",
        f"  拒绝 declined after connect:  {fig['declined']}  "
        f"({pct(fig['declined_after_connect_rate'])})",
        f"  未听完挂机 hung up early:      {fig['hung_up_early']}",
        "  拨打结果 dial results:        " + ", ".join(
            f"{k} {v}" for k, v in fig["dial_results"].items()),
        "  通话结果 outcomes:            " + ", ".join(
            f"{k} {v}" for k, v in fig["outcomes"].items()),
        "  拒绝原因 decline reasons:",
    ]
    lines += [f"    {DECLINE_LABELS[r]} {r}: {n}" for r, n in fig["decline_reasons"].items()]
    if "funnel" not in fig:  # figures of an older shape
        return "\n".join(lines)
    busy = fig["in_progress"]
    if busy["attempts"] or busy["calls"]:
        lines.append(f"  进行中 in progress:           {busy['attempts']} 次拨打, "
                     f"{busy['calls']} 通通话 (未计入上述数字)")
    lines.append("  转化漏斗 funnel:              " + " → ".join(
        f"{s['label']} {s['count']} ({pct(s['rate'])})" for s in fig["funnel"]))
    lines.append("  意向等级 grades:              " + ", ".join(
        f"{g} {n}" for g, n in fig["grades"].items()))
    talk = fig["talk_time"]
    if talk["calls"]:
        lines.append(f"  通话时长 talk time:           平均 {talk['mean_s']} s, "
                     f"中位 {talk['median_s']} s ({talk['calls']} 通)")
    lines.append(f"  转人工 escalations:           {fig['escalations']['total']}")
    if fig.get("agent_dispositions", {}).get("escalated_calls"):
        lines.append(describe_dispositions(fig["agent_dispositions"]))
    comp = fig["complaints"]
    lines.append(f"  投诉 complaints:              {comp['calls']} 通 (转人工 {comp['escalated']}, "
                 f"拉黑 {comp['blacklisted']}); 投诉黑名单 {comp['blacklist_entries']} 条; "
                 f"投诉记录 {comp['recorded']} 条 (" + ", ".join(
                     f"{s} {n}" for s, n in comp["by_status"].items()) + ")")
    if fig["type"] == "second_confirmation" or any(fig["confirmation_results"].values()):
        lines.append("  二次确认 confirmations:       " + ", ".join(
            f"{CONFIRMATION_LABELS[r]} {n}" for r, n in fig["confirmation_results"].items()))
    if fig["connect_by_hour"]:
        lines.append("  分时接通率 connect by hour:")
        lines += [f"    {h['hour']:02d}时: {h['connected']}/{h['attempts']} ({pct(h['rate'])})"
                  for h in fig["connect_by_hour"]]
    for key, title in (("by_age", "年龄段 by age"), ("by_region", "地区 by region")):
        if fig[key]:
            lines.append(f"  {title}:")
            lines += [f"    {r['group']}: 拨打 {r['dialled']}, 接通 {r['connected']}, "
                      f"同意 {r['consents']} ({pct(r['consent_rate_over_dialled'])})"
                      for r in fig[key]]
    for q in fig["survey"]:
        dist = " ".join(f"{s}分×{n}" for s, n in q["counts"].items())
        lines.append(f"  问卷 {q['question']}: n={q['n']}, 平均 {q['mean']}; {dist}")
    return "\n".join(lines)
