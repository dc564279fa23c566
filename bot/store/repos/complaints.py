"""Complaints and their handling (the rules are in bot/qa/complaints.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from bot.store.models import (
    COMPLAINT_SEVERITIES,
    COMPLAINT_SOURCES,
    COMPLAINT_STATUSES,
    Complaint,
)
from bot.store.repos.common import NotFound
from bot.store.vocab import require


def overdue(now: datetime) -> ColumnElement[bool]:
    """Not contacted by its contact deadline, or not resolved by its resolve deadline."""
    return or_(and_(Complaint.status == "new", Complaint.contact_due_at < now),
               and_(Complaint.status != "resolved", Complaint.resolve_due_at < now))


class ComplaintRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, complaint: Complaint) -> Complaint:
        require(complaint.source, COMPLAINT_SOURCES, "complaint source")
        require(complaint.severity, COMPLAINT_SEVERITIES, "complaint severity")
        require(complaint.status, COMPLAINT_STATUSES, "complaint status")
        self.session.add(complaint)
        self.session.flush()
        return complaint

    def get(self, complaint_id: int, *, for_update: bool = False) -> Complaint:
        query = select(Complaint).where(Complaint.id == complaint_id)
        found = self.session.scalar(query.with_for_update() if for_update else query)
        if found is None:
            raise NotFound(f"complaint {complaint_id}")
        return found

    def of_call(self, call_id: str) -> Complaint | None:
        return self.session.scalar(select(Complaint).where(Complaint.call_id == call_id))

    def sharing_entry(self, entry_id: int) -> Sequence[Complaint]:
        """The complaints that applied or found this blacklist entry."""
        return self.session.scalars(select(Complaint).where(
            Complaint.blacklist_entry_id == entry_id)).all()

    def listed(self, now: datetime, *, status: str | None = None, only_overdue: bool = False,
               limit: int = 200) -> Sequence[Complaint]:
        """The newest complaints first, of one status and/or only the overdue ones."""
        require(status, COMPLAINT_STATUSES, "complaint status", nullable=True)
        query = select(Complaint).order_by(Complaint.created_at.desc(), Complaint.id.desc())
        if status is not None:
            query = query.where(Complaint.status == status)
        if only_overdue:
            query = query.where(overdue(now))
        return self.session.scalars(query.limit(limit)).all()
