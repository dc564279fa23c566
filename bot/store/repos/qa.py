"""QA reviews of calls."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from bot.store.base import utcnow
from bot.store.models import Call, QaReview
from bot.store.repos.common import NotFound


class QaReviewRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, call_id: str, reviewer: str, compliant: bool, notes: str | None = None,
            at: datetime | None = None) -> QaReview:
        if self.session.get(Call, call_id) is None:
            raise NotFound(f"call {call_id}")
        if not reviewer.strip():
            raise ValueError("a QA review needs the reviewer's name")
        review = QaReview(call_id=call_id, reviewer=reviewer, compliant=compliant, notes=notes,
                          created_at=at or utcnow())
        self.session.add(review)
        self.session.flush()
        return review
