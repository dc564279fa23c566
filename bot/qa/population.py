"""The population a QA sample is drawn from: a campaign's valid calls of a period, each
with the kinds it is (a consent, a complaint, an escalation, a do-not-call request) and
the agents who took it.  Read from the database; the draw itself is bot/qa/draw.py."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.campaigns.definition import QaSampling, ValidCall
from bot.qa.draw import Candidate
from bot.store.models import (
    Call,
    CallAttempt,
    Campaign,
    Complaint,
    Consent,
    Disposition,
    DncEntry,
    Escalation,
    EscalationOffer,
)

DEFAULT_TIMEZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class QaSettings:
    """A campaign's ``qa:`` section (its defaults for a campaign saved before it existed)
    and the time zone its days are counted in."""

    sampling: QaSampling
    zone: ZoneInfo


def qa_settings(campaign: Campaign) -> QaSettings:
    definition = campaign.definition or {}
    return QaSettings(QaSampling.model_validate(definition.get("qa") or {}),
                      ZoneInfo(str(definition.get("timezone") or DEFAULT_TIMEZONE)))


def local_bounds(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """From the start of *first* to the end of *last* in *zone*, as UTC instants."""
    start = datetime.combine(first, time(), zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC)
    return start, end


def is_valid(call: Call, dial_result: str | None, valid: ValidCall) -> bool:
    """Answered, over, talked at least ``min_talk_s`` and not of an excluded outcome."""
    if dial_result != "answered" or call.ended_at is None:
        return False
    if (call.ended_at - call.started_at).total_seconds() < valid.min_talk_s:
        return False
    if call.outcome in valid.exclude_outcomes:
        return False
    return valid.outcomes is None or call.outcome in valid.outcomes


def valid_calls(session: Session, campaign_id: int, first: date, last: date, zone: ZoneInfo,
                valid: ValidCall) -> list[Candidate]:
    """The campaign's valid calls answered from *first* to *last* (local days), with their
    kinds and agents, ordered by call id."""
    start, end = local_bounds(first, last, zone)
    rows = session.execute(
        select(Call, CallAttempt.dial_result).join(CallAttempt, CallAttempt.id == Call.attempt_id)
        .where(Call.campaign_id == campaign_id, Call.started_at >= start,
               Call.started_at < end)).all()
    calls = sorted((call for call, result in rows if is_valid(call, result, valid)),
                   key=lambda c: c.id)
    ids = [c.id for c in calls]
    kinds = _kinds(session, ids)
    agents = _agents(session, ids)
    for call in calls:
        kinds[call.id] |= _OUTCOME_KINDS.get(call.outcome or "", set())
    return [Candidate(c.id, frozenset(kinds[c.id]), tuple(sorted(agents[c.id])))
            for c in calls]


_OUTCOME_KINDS = {"consented": {"consent"}, "complaint": {"complaint"},
                  "escalated": {"escalated"}, "do_not_call": {"do_not_call"}}


def _chunks(ids: list[str], size: int = 500) -> Iterable[list[str]]:
    # IN lists stay short: SQLite limits the number of bound parameters.
    for i in range(0, len(ids), size):
        yield ids[i:i + size]


def _kinds(session: Session, ids: list[str]) -> dict[str, set[str]]:
    """What the call's records say it was, whatever its final outcome: a consent in the
    ledger, a complaint recorded about it (the complaints table: heard by the bot, or
    entered by an agent or a supervisor, whether or not it blacklisted the number), a
    do-not-call entry it added, an escalation it asked for."""
    kinds: dict[str, set[str]] = defaultdict(set)
    for chunk in _chunks(ids):
        for call_id in session.scalars(select(Consent.call_id).where(
                Consent.call_id.in_(chunk), Consent.kind == "consent")):
            kinds[call_id].add("consent")
        for complaint_call in session.scalars(select(Complaint.call_id).where(
                Complaint.call_id.in_(chunk))):
            kinds[str(complaint_call)].add("complaint")
        for dnc_call, kind, source in session.execute(select(
                DncEntry.call_id, DncEntry.kind, DncEntry.source).where(
                DncEntry.call_id.in_(chunk))):
            # a complaint blacklists the number; "别再打了" puts it on the do-not-call list
            serious = source == "complaint" or kind == "blacklist"
            kinds[str(dnc_call)].add("complaint" if serious else "do_not_call")
        for call_id, reason in session.execute(select(Escalation.call_id, Escalation.reason)
                                               .where(Escalation.call_id.in_(chunk))):
            kinds[call_id].add("escalated")
            if reason == "complaint":
                kinds[call_id].add("complaint")
        for call_id in session.scalars(select(Disposition.call_id).where(
                Disposition.call_id.in_(chunk), Disposition.disposition == "complaint")):
            kinds[call_id].add("complaint")
    return kinds


def _agents(session: Session, ids: list[str]) -> dict[str, set[int]]:
    """The agents who took each call: an offer they accepted, or the disposition they
    recorded."""
    agents: dict[str, set[int]] = defaultdict(set)
    for chunk in _chunks(ids):
        for call_id, agent_id in session.execute(
                select(Escalation.call_id, EscalationOffer.agent_id)
                .join(EscalationOffer, EscalationOffer.escalation_id == Escalation.id)
                .where(Escalation.call_id.in_(chunk), EscalationOffer.outcome == "accepted")):
            agents[call_id].add(agent_id)
        for call_id, agent_id in session.execute(select(Disposition.call_id,
                                                        Disposition.agent_id)
                                                 .where(Disposition.call_id.in_(chunk))):
            agents[call_id].add(agent_id)
    return agents
