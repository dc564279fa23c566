"""The gateway's side of the desk, in units of work: the escalation a call hands over, the
offers made for it and how each was answered (the console writes the answers).

Each function runs inside the caller's session (on SQLite a ``db.session(write=True)``
for the ones that write, as bot/agents/desk.py asks) and returns plain values, never
rows, so the gateway can use them after the session has closed.  The rules stay in
bot/agents/desk.py; this module finds the rows and reads back what the desk wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.agents import desk
from bot.store.models import Agent, AgentCampaign, Call, Campaign, Escalation, EscalationOffer
from bot.store.repos.agent_desk import OfferRepo
from bot.store.repos.escalations import EscalationRepo


@dataclass(frozen=True)
class Handover:
    """A call waiting for an agent: its escalation and the campaign's limits."""

    escalation_id: int
    campaign: str
    offer_timeout_s: float
    wait_limit_s: float


@dataclass(frozen=True)
class OfferSeen:
    """An offer as the gateway follows it (``outcome`` None: still ringing)."""

    offer_id: int
    agent_id: int
    sip_uri: str | None
    outcome: str | None
    listened: bool
    reason: str = ""  # why this agent was chosen


def open_handover(session: Session, call_id: str, reason: str) -> Handover | None:
    """The call's escalation ready for the desk (``waiting``), or None when its campaign has
    no agents (the gateway then dials its fixed agent URI, as before the desk).  The
    escalation is the one the actions stored with the transfer (the call's latest
    ``pending`` one); a dialogue that asked for a transfer without storing one gets one here,
    with what the call's row knows."""
    call = session.get(Call, call_id)
    if call is None:
        return None
    campaign = session.get(Campaign, call.campaign_id)
    assert campaign is not None  # a foreign key
    agents = session.scalar(select(func.count()).select_from(AgentCampaign)
                            .where(AgentCampaign.campaign == campaign.name))
    if not agents:
        return None
    escalations = EscalationRepo(session)
    escalation = session.scalar(
        select(Escalation).where(Escalation.call_id == call_id, Escalation.status == "pending")
        .order_by(Escalation.id.desc()).limit(1))
    if escalation is None:
        escalation = escalations.add(call.id, call.campaign_id, call.contact_id, reason, {
            "campaign": campaign.name, "campaign_type": campaign.type,
            "stage_before": call.stage, "verified": call.verified, "pitched": call.pitched,
            "history": [], "source": "gateway"})
    escalations.set_status(escalation, "waiting")
    limits = desk.campaign_settings(campaign).escalation
    return Handover(escalation.id, campaign.name, float(limits.offer_timeout_s),
                    float(limits.wait_limit_s))


def _seen(session: Session, offer: EscalationOffer) -> OfferSeen:
    agent = session.get(Agent, offer.agent_id)
    return OfferSeen(offer.id, offer.agent_id, agent.sip_uri if agent else None, offer.outcome,
                     offer.listened_at is not None, offer.reason)


def offer_next(session: Session, escalation_id: int, at: datetime) -> OfferSeen | None:
    """Offer the escalation to the next agent by the campaign's strategy; None when nobody
    can take it now (the escalation keeps ``waiting``)."""
    made = desk.offer_next(session, escalation_id, at)
    if made.offer is None:
        escalation = EscalationRepo(session).get(escalation_id)
        if escalation.status != "waiting":  # after a decline or a missed offer
            EscalationRepo(session).set_status(escalation, "waiting")
        return None
    return _seen(session, made.offer)


def read_offer(session: Session, offer_id: int) -> OfferSeen:
    return _seen(session, OfferRepo(session).get(offer_id))


def close_offer(session: Session, offer_id: int, outcome: str, at: datetime) -> OfferSeen:
    """The gateway's answer to an offer still ringing: ``timed_out`` (nobody answered in
    time) or ``withdrawn`` (the customer hung up, or the wait limit came).  If the console
    answered first, its answer stands and is returned."""
    offer = OfferRepo(session).get(offer_id)
    if offer.outcome is None:
        offer = desk.answer_offer(session, offer_id, outcome, at)
    return _seen(session, offer)


def set_status(session: Session, escalation_id: int, status: str) -> None:
    escalations = EscalationRepo(session)
    escalations.set_status(escalations.get(escalation_id), status)


def end_agent_call(session: Session, agent_id: int, call_id: str, at: datetime) -> None:
    """The bridge ended: the agent's after-call work starts."""
    desk.end_call(session, agent_id, call_id, at)
