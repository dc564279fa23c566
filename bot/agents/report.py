"""The agent figures of one day read from the store (`waihu report --agents`, the console's
agent page): the rows bot/agents/figures.py computes from."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.agents.desk import campaign_settings
from bot.agents.figures import (
    FCR_WINDOW,
    DispositionRow,
    FollowUpRow,
    OfferRow,
    StateRow,
    agent_day_figures,
    day_span,
)
from bot.store.models import (
    Callback,
    Campaign,
    Contact,
    Disposition,
    Escalation,
    EscalationOffer,
    User,
)
from bot.store.repos.agent_desk import AgentStateRepo


def agent_figures(session: Session, day: date, zone: ZoneInfo, now: datetime) -> dict[str, Any]:
    """Every active agent's figures for the local *day* in *zone*, counted up to *now*."""
    start, end = day_span(day, zone)
    states = [StateRow(r.agent_id, r.at, r.to_state)
              for r in AgentStateRepo(session).between(start, end)]

    service_levels = {c.id: campaign_settings(c).escalation.service_level_s
                      for c in session.scalars(select(Campaign))}
    offers = [OfferRow(r.agent_id, r.escalation_id, r.phone, r.offered_at, r.answered_at,
                       r.outcome, service_levels[r.campaign_id])
              for r in session.execute(
                  select(EscalationOffer.agent_id, EscalationOffer.escalation_id,
                         EscalationOffer.offered_at, EscalationOffer.answered_at,
                         EscalationOffer.outcome, Escalation.campaign_id, Contact.phone)
                  .join(Escalation, Escalation.id == EscalationOffer.escalation_id)
                  .join(Contact, Contact.id == Escalation.contact_id)
                  .where(EscalationOffer.offered_at >= start, EscalationOffer.offered_at < end)
                  .order_by(EscalationOffer.id))]

    escalation_ids = [o.escalation_id for o in offers]
    dispositions = [DispositionRow(r.agent_id, r.escalation_id, r.disposition, r.at)
                    for r in session.scalars(select(Disposition).where(
                        ((Disposition.at >= start) & (Disposition.at < end))
                        | Disposition.escalation_id.in_(escalation_ids)))]

    customers = sorted({o.customer for o in offers if o.outcome == "accepted"})
    follow_ups: list[FollowUpRow] = []
    if customers:
        until = end + FCR_WINDOW
        follow_ups += [FollowUpRow(phone, at, "escalation") for phone, at in session.execute(
            select(Contact.phone, Escalation.created_at)
            .join(Contact, Contact.id == Escalation.contact_id)
            .where(Contact.phone.in_(customers), Escalation.created_at >= start,
                   Escalation.created_at < until))]
        follow_ups += [FollowUpRow(phone, at, "callback") for phone, at in session.execute(
            select(Contact.phone, Callback.created_at)
            .join(Contact, Contact.id == Callback.contact_id)
            .where(Contact.phone.in_(customers), Callback.kind == "customer_request",
                   Callback.created_at >= start, Callback.created_at < until))]

    agent_ids = {s.agent_id for s in states} | {o.agent_id for o in offers}
    names = {user_id: username for user_id, username in session.execute(
        select(User.id, User.username).where(User.id.in_(agent_ids)))}
    return agent_day_figures(day=day, zone=zone, now=now, names=names, states=states,
                             offers=offers, dispositions=dispositions, follow_ups=follow_ups)
