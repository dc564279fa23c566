"""Agents, a campaign with escalation settings, and escalated calls, for the desk tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from bot.store import CallRepo, CampaignRepo, ContactRepo, Database, EscalationRepo
from bot.store.models import Agent, AgentCampaign, Escalation, User

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Asia/Shanghai
CAMPAIGN = "card-upgrade"


def add_agent(session: Session, username: str, campaigns: tuple[str, ...] = (CAMPAIGN,),
              weight: int = 1, disabled: bool = False) -> int:
    user = User(username=username, role="agent", password_hash="x", disabled=disabled)
    session.add(user)
    session.flush()
    session.add(Agent(user_id=user.id, sip_uri=f"sip:{username}@127.0.0.1", weight=weight))
    session.add_all(AgentCampaign(agent_id=user.id, campaign=c) for c in campaigns)
    session.flush()
    return user.id


def add_campaign(db: Database, name: str = CAMPAIGN, **escalation: Any) -> int:
    with db.session() as session:
        definition = {"name": name, "timezone": "Asia/Shanghai", "escalation": escalation}
        return CampaignRepo(session).add(name, "marketing", definition, "a" * 64).id


def escalate(db: Database, phone: str, campaign: str = CAMPAIGN,
             at: datetime = T0) -> Escalation:
    """A call to the contact with *phone* (added to *campaign* the first time), answered at
    *at* and escalated."""
    with db.session() as session:
        found = CampaignRepo(session).by_name(campaign)
        assert found is not None
        contacts = ContactRepo(session)
        contact = contacts.by_phone(found.id, phone) or contacts.add(found.id, phone, name="王五")
        calls = CallRepo(session)
        attempt = calls.start_attempt(found.id, contact.id, at=at)
        calls.set_dial_result(attempt.call_id, "answered", at=at)
        call = calls.open_call(attempt.call_id)
        escalation = EscalationRepo(session).add(call.id, found.id, contact.id,
                                                 "request_human", {})
        escalation.created_at = at
        session.flush()
        return escalation
