"""Campaigns and finished calls of chosen days, outcomes and agents, for the QA tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.store import CallRepo, CampaignRepo, ContactRepo, Database
from bot.store.models import Call, Escalation, EscalationOffer

from ..agents.seeding import add_agent

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 24)  # a Tuesday
AFTER_WEEK = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # Tuesday after: DAY and its week over


def add_campaign(db: Database, name: str = "qa-camp", **qa: Any) -> int:
    with db.session() as session:
        definition = {"name": name, "timezone": "Asia/Shanghai", "qa": qa}
        return CampaignRepo(session).add(name, "marketing", definition, "a" * 64).id


def add_call(db: Database, campaign_id: int, n: int, *, day: date = DAY,
             at: time = time(10, 0), talk_s: float = 60, outcome: str | None = "declined",
             ended: bool = True, agent: int | None = None) -> str:
    """The *n*-th finished call (number 1390000nnnn) answered on *day* at *at*, Shanghai."""
    answered = datetime.combine(day, at, SHANGHAI).astimezone(UTC)
    with db.session() as session:
        contact = ContactRepo(session).add(campaign_id, f"139{n:08d}", name="客户")
        calls = CallRepo(session)
        attempt = calls.start_attempt(campaign_id, contact.id, at=answered)
        calls.set_dial_result(attempt.call_id, "answered", at=answered)
        call: Call = calls.open_call(attempt.call_id)
        call.outcome = outcome
        if ended:
            call.ended_at = answered + timedelta(seconds=talk_s)
        if agent is not None:
            escalation = Escalation(call_id=call.id, campaign_id=campaign_id,
                                    contact_id=contact.id, reason="request_human",
                                    context={}, status="bridged")
            session.add(escalation)
            session.flush()
            session.add(EscalationOffer(escalation_id=escalation.id, agent_id=agent,
                                        offered_at=answered, answered_at=answered,
                                        outcome="accepted", strategy="equal_share",
                                        reason="test", snapshot={}))
        session.flush()
        return call.id


def add_agents(db: Database, *names: str) -> list[int]:
    with db.session() as session:
        return [add_agent(session, name) for name in names]
