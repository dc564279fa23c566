"""The agent desk's rows: presence changes, offers of escalated calls, dispositions.

Rows only, checked against the vocabularies: the rules (which change may happen, who gets
an offer) are bot/agents' pure functions, and bot/agents/desk.py joins the two in one unit
of work.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.store.base import utcnow
from bot.store.models import AgentStateChange, Disposition, Escalation, EscalationOffer
from bot.store.repos.common import NotFound
from bot.store.vocab import (
    AGENT_STATES,
    AWAY_REASONS,
    DISPOSITIONS,
    DISTRIBUTION_STRATEGIES,
    OFFER_OUTCOMES,
    PRESENCE_EVENTS,
    require,
)

NEVER_SEEN_STATE = "offline"


class AgentStateRepo:
    """Every change of an agent's presence, numbered per agent (``seq``)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def latest(self, agent_id: int) -> AgentStateChange | None:
        return self.session.scalar(
            select(AgentStateChange).where(AgentStateChange.agent_id == agent_id)
            .order_by(AgentStateChange.seq.desc()).limit(1))

    def latest_of(self, agent_ids: Iterable[int]) -> dict[int, AgentStateChange]:
        """The latest change of each of *agent_ids* that has one."""
        wanted = list(agent_ids)
        if not wanted:
            return {}
        last = (select(AgentStateChange.agent_id, func.max(AgentStateChange.seq).label("seq"))
                .where(AgentStateChange.agent_id.in_(wanted))
                .group_by(AgentStateChange.agent_id).subquery())
        rows = self.session.scalars(select(AgentStateChange).join(
            last, (AgentStateChange.agent_id == last.c.agent_id)
            & (AgentStateChange.seq == last.c.seq)))
        return {row.agent_id: row for row in rows}

    def record(self, agent_id: int, from_state: str, to_state: str, event: str, at: datetime,
               *, reason: str | None = None, call_id: str | None = None) -> AgentStateChange:
        """Append a change.  *from_state* must be the agent's current state: a change made
        meanwhile by someone else is refused here, and a truly concurrent one collides on
        the (agent, seq) key (IntegrityError: the unit of work is retried or reported)."""
        require(from_state, AGENT_STATES, "agent state")
        require(to_state, AGENT_STATES, "agent state")
        require(event, PRESENCE_EVENTS, "presence event")
        require(reason, AWAY_REASONS, "away reason", nullable=True)
        latest = self.latest(agent_id)
        current = latest.to_state if latest is not None else NEVER_SEEN_STATE
        if from_state != current:
            raise ValueError(f"agent {agent_id} is {current}, not {from_state}: their state "
                             "changed meanwhile")
        change = AgentStateChange(agent_id=agent_id, seq=(latest.seq if latest else 0) + 1,
                                  at=at, from_state=from_state, to_state=to_state, event=event,
                                  reason=reason, call_id=call_id)
        self.session.add(change)
        self.session.flush()
        return change

    def between(self, start: datetime, end: datetime,
                agent_ids: Iterable[int] | None = None) -> list[AgentStateChange]:
        """The changes made in [start, end), and before them each agent's last change
        before *start* (the state the period opens in), by agent and then in order."""
        query = select(AgentStateChange).where(AgentStateChange.at >= start,
                                               AgentStateChange.at < end)
        before = (select(AgentStateChange.agent_id,
                         func.max(AgentStateChange.seq).label("seq"))
                  .where(AgentStateChange.at < start))
        if agent_ids is not None:
            wanted = list(agent_ids)
            query = query.where(AgentStateChange.agent_id.in_(wanted))
            before = before.where(AgentStateChange.agent_id.in_(wanted))
        opening = before.group_by(AgentStateChange.agent_id).subquery()
        rows = list(self.session.scalars(query))
        rows += self.session.scalars(select(AgentStateChange).join(
            opening, (AgentStateChange.agent_id == opening.c.agent_id)
            & (AgentStateChange.seq == opening.c.seq)))
        return sorted(rows, key=lambda r: (r.agent_id, r.seq))


class OfferRepo:
    """Offers of escalated calls to agents, and their answers."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, escalation_id: int, agent_id: int, at: datetime, *, strategy: str,
            reason: str, snapshot: dict[str, Any]) -> EscalationOffer:
        """A ringing offer (no outcome yet); one at a time per escalation and per agent."""
        require(strategy, DISTRIBUTION_STRATEGIES, "distribution strategy")
        if not reason.strip():
            raise ValueError("an offer records why its agent was chosen")
        offer = EscalationOffer(escalation_id=escalation_id, agent_id=agent_id, offered_at=at,
                                strategy=strategy, reason=reason, snapshot=snapshot)
        self.session.add(offer)
        self.session.flush()
        return offer

    def get(self, offer_id: int) -> EscalationOffer:
        offer = self.session.get(EscalationOffer, offer_id)
        if offer is None:
            raise NotFound(f"escalation offer {offer_id}")
        return offer

    def ringing(self, escalation_id: int) -> EscalationOffer | None:
        return self.session.scalar(select(EscalationOffer).where(
            EscalationOffer.escalation_id == escalation_id, EscalationOffer.outcome.is_(None)))

    def of_escalation(self, escalation_id: int) -> list[EscalationOffer]:
        return list(self.session.scalars(
            select(EscalationOffer).where(EscalationOffer.escalation_id == escalation_id)
            .order_by(EscalationOffer.id)))

    def listened(self, offer: EscalationOffer, at: datetime) -> EscalationOffer:
        if offer.outcome is not None:
            raise ValueError(f"offer {offer.id} was already {offer.outcome}")
        offer.listened_at = offer.listened_at or at
        self.session.flush()
        return offer

    def answer(self, offer: EscalationOffer, outcome: str, at: datetime) -> EscalationOffer:
        require(outcome, OFFER_OUTCOMES, "offer outcome")
        if offer.outcome is not None:
            raise ValueError(f"offer {offer.id} was already {offer.outcome} at "
                             f"{offer.answered_at.isoformat() if offer.answered_at else '?'}")
        if at < offer.offered_at:
            raise ValueError(f"offer {offer.id} cannot be answered before it was made")
        offer.outcome, offer.answered_at = outcome, at
        self.session.flush()
        return offer

    def accepted(self, escalation_id: int) -> EscalationOffer | None:
        return self.session.scalar(select(EscalationOffer).where(
            EscalationOffer.escalation_id == escalation_id,
            EscalationOffer.outcome == "accepted"))

    def between(self, start: datetime, end: datetime) -> list[EscalationOffer]:
        """Offers made in [start, end)."""
        return list(self.session.scalars(
            select(EscalationOffer).where(EscalationOffer.offered_at >= start,
                                          EscalationOffer.offered_at < end)
            .order_by(EscalationOffer.id)))


class DispositionRepo:
    """What the agent who took an escalation recorded after the call (one per escalation)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def record(self, escalation: Escalation, agent_id: int, disposition: str, at: datetime, *,
               wrap_up_s: float, notes: str | None = None,
               callback_at: datetime | None = None) -> Disposition:
        _check(disposition, callback_at, at)
        if wrap_up_s < 0:
            raise ValueError("after-call work cannot last less than 0 s")
        row = Disposition(escalation_id=escalation.id, call_id=escalation.call_id,
                          agent_id=agent_id, disposition=disposition, notes=notes,
                          callback_at=callback_at, wrap_up_s=wrap_up_s, at=at)
        self.session.add(row)
        self.session.flush()
        return row

    def of_escalation(self, escalation_id: int) -> Disposition | None:
        return self.session.scalar(
            select(Disposition).where(Disposition.escalation_id == escalation_id))

    def amend(self, row: Disposition, disposition: str, *, notes: str | None = None,
              callback_at: datetime | None = None, at: datetime | None = None
              ) -> dict[str, Any]:
        """Change a recorded disposition; returns what it was (for the audit log)."""
        when = at or utcnow()
        _check(disposition, callback_at, when)
        before = {"disposition": row.disposition, "notes": row.notes,
                  "callback_at": row.callback_at.isoformat() if row.callback_at else None}
        row.disposition, row.notes, row.callback_at = disposition, notes, callback_at
        row.updated_at = when
        self.session.flush()
        return before

    def between(self, start: datetime, end: datetime) -> list[Disposition]:
        return list(self.session.scalars(
            select(Disposition).where(Disposition.at >= start, Disposition.at < end)
            .order_by(Disposition.id)))


def _check(disposition: str, callback_at: datetime | None, at: datetime) -> None:
    require(disposition, DISPOSITIONS, "disposition")
    if disposition == "callback" and callback_at is None:
        raise ValueError("a callback disposition needs the time of the callback")
    if disposition != "callback" and callback_at is not None:
        raise ValueError(f"a callback time goes with the callback disposition, not "
                         f"{disposition}")
    if callback_at is not None and callback_at <= at:
        raise ValueError("the callback time is in the past")
