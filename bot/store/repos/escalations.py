"""Escalations: calls handed, or to be handed, to a human agent."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store.models import Escalation
from bot.store.repos.common import NotFound
from bot.store.vocab import ESCALATION_STATUSES, require


class EscalationRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self, call_id: str, campaign_id: int, contact_id: int, reason: str, context: dict[str, Any]
    ) -> Escalation:
        escalation = Escalation(
            call_id=call_id,
            campaign_id=campaign_id,
            contact_id=contact_id,
            reason=reason,
            context=context,
        )
        self.session.add(escalation)
        self.session.flush()
        return escalation

    def mark_for_call(self, call_id: str, status: str) -> Escalation | None:
        """Set the status of the call's latest pending escalation (the gateway reached an
        agent, or could not); None if the call has none pending."""
        require(status, ESCALATION_STATUSES, "escalation status")
        escalation = self.session.scalar(
            select(Escalation).where(Escalation.call_id == call_id,
                                     Escalation.status == "pending")
            .order_by(Escalation.id.desc()).limit(1))
        if escalation is not None:
            escalation.status = status
            self.session.flush()
        return escalation

    def get(self, escalation_id: int) -> Escalation:
        escalation = self.session.get(Escalation, escalation_id)
        if escalation is None:
            raise NotFound(f"escalation {escalation_id}")
        return escalation

    def set_status(self, escalation: Escalation, status: str) -> Escalation:
        """The desk's status of an escalation (waiting, offered, listening, bridged ...)."""
        require(status, ESCALATION_STATUSES, "escalation status")
        escalation.status = status
        self.session.flush()
        return escalation
