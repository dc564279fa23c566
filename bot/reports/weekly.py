"""The weekly client summary (issue 15 item 7; DESIGN.md "Weekly: total calls, connect
rate, valid-sale rate, complaints and how they were handled"): the period figures of
bot/reports/period.py with what the client reads besides, for one campaign or all:

- *sales after QA*: the consent ledger's sales of the week, those whose latest QA review
  found them non-compliant, and the valid rest (the same count as the period's valid sales);
- *QA results by rule*: the reviews recorded in the week (a call reviewed twice counts by
  its latest), compliant or not, and for each of the scorecard's four rules how many passed
  (qa_rule_results; a review made with `waihu qa review`, without a scorecard, has no rule
  rows and counts only in the verdicts); an *instant fail* is a non-compliant review whose
  rules all passed; *sampled* counts the calls drawn into the samples of the week's days;
- *decline reasons* of the calls dialled in the week that ended ``declined``, most common
  first (a decline without a reason counts as ``other``, as the actions record it);
- *complaints and their handling*: the complaints recorded in the week (the complaints
  table) by status, severity, root cause and the supervisor's decision, how many were
  blacklisted, handled on time, and overdue now; beside them the period's complaint calls;
- *agent figures*: bot/agents/report.py's day figures of each day of the week, summed per
  agent and for the team (the ratios recomputed from the sums), across every campaign: the
  agent figures are not kept per campaign; with each agent's QA verdicts (the week's latest
  reviews of the calls they took).

The local days and the time zone are the period's.  Counting up to *now*: a week still
going on is counted so far.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from bot.agents.figures import team_figures
from bot.agents.report import agent_figures
from bot.reports.export import WEEKLY
from bot.reports.figures import DECLINE_LABELS, rate
from bot.reports.period import format_period, period_figures
from bot.store.ledger import CONSENT
from bot.store.models import (
    COMPLAINT_DECISIONS,
    COMPLAINT_ROOT_CAUSES,
    COMPLAINT_SEVERITIES,
    COMPLAINT_STATUSES,
    QA_RULES,
    Call,
    CallAttempt,
    Campaign,
    Complaint,
    Consent,
    DncEntry,
    Escalation,
    EscalationOffer,
    QaReview,
    QaRuleResult,
    QaSample,
    QaSampleCall,
)
from bot.store.vocab import DECLINE_REASONS

RULE_LABELS = {"right_person": "本人确认 Right person", "understood": "听得明白 Understood",
               "approved_script": "规范话术 Approved script",
               "explicit_consent": "明确同意 Explicit consent"}


def weekly_figures(session: Session, *, campaign: Campaign | None, start: date, end: date,
                   tz: str | ZoneInfo, now: datetime) -> dict[str, Any]:
    """The weekly summary of *start* to *end* (local dates, both included)."""
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    fig = period_figures(session, campaign=campaign, start=start, end=end, tz=zone)
    lo = datetime.combine(start, time.min, zone)
    hi = datetime.combine(end + timedelta(days=1), time.min, zone)
    campaign_id = campaign.id if campaign is not None else None
    return {**fig, "report": WEEKLY, "as_of": min(now, hi).astimezone(zone).isoformat(
        timespec="seconds"),
        "sales": _sales(session, campaign_id, lo, hi),
        "qa": _qa(session, campaign_id, start, end, lo, hi),
        "decline_reasons": _decline_reasons(session, campaign_id, lo, hi),
        "complaint_handling": _complaints(session, campaign_id, lo, hi, now),
        "agents": _agents(session, start, end, zone, now, lo, hi)}


def _sales(session: Session, campaign_id: int | None, lo: datetime, hi: datetime
           ) -> dict[str, int]:
    latest: dict[str, bool] = {}
    query = (select(Consent.call_id, QaReview.compliant)
             .outerjoin(QaReview, QaReview.call_id == Consent.call_id)
             .where(Consent.kind == CONSENT, Consent.created_at >= lo, Consent.created_at < hi)
             .order_by(Consent.id, QaReview.id))
    if campaign_id is not None:
        query = query.where(Consent.campaign_id == campaign_id)
    sales: set[str] = set()
    for call_id, compliant in session.execute(query):
        sales.add(call_id)
        if compliant is not None:
            latest[call_id] = compliant
    failed = sum(1 for ok in latest.values() if not ok)
    return {"ledger": len(sales), "reviewed": len(latest), "non_compliant": failed,
            "valid": len(sales) - failed}


def _latest_reviews(session: Session, campaign_id: int | None, lo: datetime, hi: datetime
                    ) -> list[tuple[int, str, bool]]:
    """(review id, call id, compliant) of each call's latest review recorded in [lo, hi)."""
    later = aliased(QaReview)
    query = (select(QaReview.id, QaReview.call_id, QaReview.compliant)
             .join(Call, Call.id == QaReview.call_id)
             .where(QaReview.created_at >= lo, QaReview.created_at < hi,
                    ~select(later.id).where(later.call_id == QaReview.call_id,
                                            later.created_at >= lo, later.created_at < hi,
                                            later.id > QaReview.id).exists()))
    if campaign_id is not None:
        query = query.where(Call.campaign_id == campaign_id)
    return [(review_id, call_id, ok) for review_id, call_id, ok in session.execute(query)]


def _qa(session: Session, campaign_id: int | None, start: date, end: date, lo: datetime,
        hi: datetime) -> dict[str, Any]:
    samples = (select(QaSampleCall.call_id).join(QaSample, QaSample.id == QaSampleCall.sample_id)
               .where(QaSample.period_start >= start, QaSample.period_start <= end))
    if campaign_id is not None:
        samples = samples.where(QaSample.campaign_id == campaign_id)
    verdicts = {review_id: ok for review_id, _, ok in _latest_reviews(session, campaign_id,
                                                                        lo, hi)}
    rules: dict[int, dict[str, QaRuleResult]] = defaultdict(dict)
    for row in session.scalars(select(QaRuleResult).where(
            QaRuleResult.review_id.in_(list(verdicts)))):
        rules[row.review_id][row.rule] = row
    by_rule = []
    for rule in QA_RULES:
        rows = [r[rule] for r in rules.values() if rule in r]
        scored = [r for r in rows if r.points is not None and r.max_points]
        passed = sum(1 for r in rows if r.passed)
        by_rule.append({
            "rule": rule, "reviewed": len(rows), "passed": passed, "failed": len(rows) - passed,
            "pass_rate": rate(passed, len(rows)) if rows else None,
            "points_share": rate(sum(r.points or 0 for r in scored),
                                 sum(r.max_points or 0 for r in scored)) if scored else None})
    instant = sum(1 for review_id, ok in verdicts.items()
                  if not ok and rules.get(review_id)
                  and all(r.passed for r in rules[review_id].values()))
    compliant = sum(1 for ok in verdicts.values() if ok)
    return {"sampled": len(set(session.scalars(samples))), "reviewed": len(verdicts),
            "compliant": compliant, "non_compliant": len(verdicts) - compliant,
            "compliance_rate": rate(compliant, len(verdicts)) if verdicts else None,
            "instant_fails": instant,
            "without_scorecard": sum(1 for review_id in verdicts if review_id not in rules),
            "by_rule": by_rule}


def _decline_reasons(session: Session, campaign_id: int | None, lo: datetime, hi: datetime
                     ) -> list[dict[str, Any]]:
    query = (select(Call.decline_reason).join(CallAttempt, CallAttempt.id == Call.attempt_id)
             .where(Call.outcome == "declined", CallAttempt.started_at >= lo,
                    CallAttempt.started_at < hi))
    if campaign_id is not None:
        query = query.where(Call.campaign_id == campaign_id)
    counts = Counter(reason or "other" for reason in session.scalars(query))
    total = sum(counts.values())
    order = sorted(DECLINE_REASONS, key=lambda r: (-counts[r], DECLINE_REASONS.index(r)))
    return [{"reason": r, "label": DECLINE_LABELS[r], "count": counts[r],
             "share": rate(counts[r], total)} for r in order]


def _complaints(session: Session, campaign_id: int | None, lo: datetime, hi: datetime,
                now: datetime) -> dict[str, Any]:
    query = select(Complaint).where(Complaint.created_at >= lo, Complaint.created_at < hi)
    if campaign_id is not None:
        query = query.where(Complaint.campaign_id == campaign_id)
    rows = list(session.scalars(query))
    entries = [c.blacklist_entry_id for c in rows if c.blacklist_entry_id is not None]
    standing = set(session.scalars(select(DncEntry.id).where(
        DncEntry.id.in_(entries), DncEntry.removed_at.is_(None)))) if entries else set()

    def count(attr: str, values: tuple[str, ...]) -> dict[str, int]:
        return {v: sum(1 for c in rows if getattr(c, attr) == v) for v in values}

    return {
        "recorded": len(rows),
        "by_status": count("status", COMPLAINT_STATUSES),
        "by_severity": count("severity", COMPLAINT_SEVERITIES),
        "by_root_cause": {**count("root_cause", COMPLAINT_ROOT_CAUSES),
                          "unknown": sum(1 for c in rows if c.root_cause is None)},
        "by_decision": {**count("decision", COMPLAINT_DECISIONS),
                        "undecided": sum(1 for c in rows if c.decision is None)},
        # A "not serious" decision lifts the blacklist a complaint applied: count those
        # whose entry still stands, and the lifted ones apart.
        "blacklisted": sum(1 for c in rows if c.blacklist_entry_id in standing),
        "blacklist_lifted": sum(1 for c in rows if c.blacklist_entry_id is not None
                                and c.blacklist_entry_id not in standing),
        "contacted_on_time": sum(1 for c in rows if c.contacted_at is not None
                                 and c.contacted_at <= c.contact_due_at),
        "resolved_on_time": sum(1 for c in rows if c.resolved_at is not None
                                and c.resolved_at <= c.resolve_due_at),
        "overdue_now": sum(1 for c in rows if
                           (c.status == "new" and c.contact_due_at < now)
                           or (c.status != "resolved" and c.resolve_due_at < now)),
    }


def _agent_qa(session: Session, lo: datetime, hi: datetime) -> dict[int, tuple[int, int]]:
    """agent id -> (calls reviewed, compliant): the week's latest reviews of the calls the
    agent took (a call two agents took counts for both)."""
    verdicts = {call_id: ok for _, call_id, ok in _latest_reviews(session, None, lo, hi)}
    took: dict[int, set[str]] = defaultdict(set)
    for call_id, agent_id in session.execute(
            select(Escalation.call_id, EscalationOffer.agent_id)
            .join(EscalationOffer, EscalationOffer.escalation_id == Escalation.id)
            .where(EscalationOffer.outcome == "accepted",
                   Escalation.call_id.in_(list(verdicts)))):
        took[agent_id].add(call_id)
    return {agent_id: (len(calls), sum(1 for c in calls if verdicts[c]))
            for agent_id, calls in took.items()}


def _agents(session: Session, start: date, end: date, zone: ZoneInfo, now: datetime,
            lo: datetime, hi: datetime) -> dict[str, Any]:
    """Each day's agent figures summed per agent and for the team, with the QA verdicts on
    the calls they took (DESIGN.md lists the QA score among the agent figures)."""
    per_agent: dict[int, list[dict[str, Any]]] = defaultdict(list)
    day = start
    while day <= end and datetime.combine(day, time.min, zone) <= now:
        for row in agent_figures(session, day, zone, now)["agents"]:
            per_agent[row["agent_id"]].append(row)
        day += timedelta(days=1)
    qa = _agent_qa(session, lo, hi)

    def with_qa(row: dict[str, Any], reviewed: int, compliant: int) -> dict[str, Any]:
        return {**row, "qa_reviewed": reviewed, "qa_compliant": compliant,
                "qa_compliance": rate(compliant, reviewed) if reviewed else None}

    rows = []
    for agent_id, days in sorted(per_agent.items(), key=lambda a: (a[1][0]["agent"], a[0])):
        summed = team_figures(days)
        summed.pop("agents")
        rows.append(with_qa({"agent_id": agent_id, "agent": days[0]["agent"],
                             "days": len(days), **summed}, *qa.get(agent_id, (0, 0))))
    team = team_figures([r for days in per_agent.values() for r in days])
    team["agents"] = len(per_agent)  # not agent-days
    team = with_qa(team, sum(r["qa_reviewed"] for r in rows),
                   sum(r["qa_compliant"] for r in rows))
    return {"agents": rows, "team": team}


def format_weekly(fig: dict[str, Any]) -> str:
    """The weekly summary as plain text for the terminal."""
    from bot.reports.figures import pct

    def share(value: float | None) -> str:
        return "-" if value is None else pct(value)

    sales, qa, comp = fig["sales"], fig["qa"], fig["complaint_handling"]
    lines = [format_period(fig),
             f"  成交与质检 sales after QA: 确认记录 ledger {sales['ledger']}, 质检不合规 "
             f"non-compliant {sales['non_compliant']}, 有效 valid {sales['valid']}",
             f"  质检 QA: 抽样 sampled {qa['sampled']}, 已评 reviewed {qa['reviewed']}, 合规 "
             f"compliant {qa['compliant']} ({share(qa['compliance_rate'])}), 一票否决 "
             f"instant fail {qa['instant_fails']}"]
    lines += [f"    {RULE_LABELS[r['rule']]}: 通过 passed {r['passed']}/{r['reviewed']} "
              f"({share(r['pass_rate'])})" for r in qa["by_rule"]]
    lines.append("  拒绝原因 decline reasons: " + ", ".join(
        f"{r['label']} {r['count']}" for r in fig["decline_reasons"]))
    lines.append(f"  投诉处理 complaints recorded {comp['recorded']}: " + ", ".join(
        f"{s} {n}" for s, n in comp["by_status"].items()) + f"; 超时 overdue "
        f"{comp['overdue_now']}; 拉黑 blacklisted {comp['blacklisted']}")
    team = fig["agents"]["team"]
    lines.append(f"  坐席 agents {team['agents']}: 接听 accepted {team['accepted']}, 服务水平 "
                 f"service level {share(team['service_level'])}, 一次解决率 FCR "
                 f"{share(team['first_call_resolution'])}")
    return "\n".join(lines)
