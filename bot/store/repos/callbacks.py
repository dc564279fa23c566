"""Callbacks: calls to make again at a set time (asked for, or scheduled by a follow-up)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store.models import Callback
from bot.store.vocab import CALLBACK_KINDS, require


class CallbackRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def schedule(
        self,
        campaign_id: int,
        contact_id: int,
        due_at: datetime,
        kind: str,
        call_id: str | None = None,
        requested_text: str | None = None,
    ) -> Callback:
        require(kind, CALLBACK_KINDS, "callback kind")
        callback = Callback(
            campaign_id=campaign_id,
            contact_id=contact_id,
            due_at=due_at,
            kind=kind,
            call_id=call_id,
            requested_text=requested_text,
        )
        self.session.add(callback)
        self.session.flush()
        return callback

    def pending_for(self, contact_id: int, *, due_by: datetime | None = None,
                    kinds: Sequence[str] | None = None) -> Sequence[Callback]:
        """The contact's pending callbacks (due by *due_by*, of *kinds*), earliest first."""
        query = select(Callback).where(Callback.contact_id == contact_id,
                                       Callback.status == "pending")
        if due_by is not None:
            query = query.where(Callback.due_at <= due_by)
        if kinds is not None:
            query = query.where(Callback.kind.in_(list(kinds)))
        return self.session.scalars(query.order_by(Callback.due_at, Callback.id)).all()

    def cancel_pending(self, contact_id: int, kinds: Sequence[str] | None = None) -> int:
        """Cancel the contact's pending callbacks (only of *kinds* if given); how many."""
        callbacks = self.pending_for(contact_id, kinds=kinds)
        for callback in callbacks:
            callback.status = "cancelled"
        self.session.flush()
        return len(callbacks)
