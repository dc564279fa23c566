"""The audit log: who did what (insert-only; bot.store.models.AuditEntry)."""

from __future__ import annotations

import getpass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store.base import utcnow
from bot.store.models import AuditEntry


def os_actor() -> str:
    """The actor of a command run from a shell: the login that ran it."""
    try:
        return f"os:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "os:unknown"


class AuditRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(self, actor: str, action: str, subject: str | None = None,
               at: datetime | None = None, **detail: Any) -> AuditEntry:
        """Add an entry; *detail* must already be masked (no full phone number or ID)."""
        if not actor.strip() or not action.strip():
            raise ValueError("an audit entry needs an actor and an action")
        entry = AuditEntry(actor=actor, action=action, subject=subject, detail=detail,
                           at=at or utcnow())
        self.session.add(entry)
        self.session.flush()
        return entry

    def entries(self, action: str | None = None, subject: str | None = None
                ) -> list[AuditEntry]:
        query = select(AuditEntry).order_by(AuditEntry.id)
        if action is not None:
            query = query.where(AuditEntry.action == action)
        if subject is not None:
            query = query.where(AuditEntry.subject == subject)
        return list(self.session.scalars(query))
