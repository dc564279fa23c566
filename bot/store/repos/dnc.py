"""The do-not-call list and the blacklist."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session

from bot.store.base import utcnow
from bot.store.models import DncEntry
from bot.store.repos.common import check_phone
from bot.store.vocab import DNC_KINDS, DNC_SOURCES, require


class DncRepo:
    """Do-not-call and blacklist entries; either kind, while active, blocks the number."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        phone: str,
        kind: str,
        reason: str,
        source: str,
        added_by: str,
        call_id: str | None = None,
        at: datetime | None = None,
    ) -> DncEntry:
        """Add an entry, or return the active entry of the same kind for this number."""
        require(kind, DNC_KINDS, "DNC kind")
        require(source, DNC_SOURCES, "DNC source")
        existing = self.session.scalar(
            select(DncEntry).where(self._active(check_phone(phone)), DncEntry.kind == kind).limit(1)
        )
        if existing is not None:
            return existing
        entry = DncEntry(
            phone=phone, kind=kind, reason=reason, source=source, added_by=added_by,
            call_id=call_id, created_at=at or utcnow(),
        )
        self.session.add(entry)
        self.session.flush()
        return entry

    def remove(self, phone: str, removed_by: str, reason: str, kind: str | None = None,
               at: datetime | None = None) -> int:
        """Close the active entries of the number (only of *kind* if given); returns how many."""
        require(kind, DNC_KINDS, "DNC kind", nullable=True)
        query = select(DncEntry).where(self._active(check_phone(phone)))
        if kind is not None:
            query = query.where(DncEntry.kind == kind)
        entries = self.session.scalars(query).all()
        now = at or utcnow()
        for entry in entries:
            entry.removed_at = now
            entry.removed_by = removed_by
            entry.remove_reason = reason
        self.session.flush()
        return len(entries)

    def is_blocked(self, phone: str) -> bool:
        query = select(DncEntry.id).where(self._active(check_phone(phone))).limit(1)
        return self.session.scalar(query) is not None

    def active(self) -> Sequence[DncEntry]:
        return self.session.scalars(
            select(DncEntry).where(DncEntry.removed_at.is_(None)).order_by(DncEntry.id)
        ).all()

    @staticmethod
    def _active(phone: str) -> ColumnElement[bool]:
        return and_(DncEntry.phone == phone, DncEntry.removed_at.is_(None))
