"""QA follow-ups: a reviewer's verdict on a call, and the follow-up call to the customer of a
sale found non-compliant (DESIGN.md, recording and QA).

The QA samples themselves are drawn elsewhere; this module stores the verdict and, where the
campaign asks for it (``follow_ups.qa_followup``), schedules a ``qa_followup`` callback that
starts a new round for the contact (:func:`bot.campaigns.followups.schedule_round`).  The
dialer places that call like any other callback.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from bot.campaigns.compliance import clamp_to_window
from bot.campaigns.followups import schedule_round
from bot.campaigns.registry import campaign_definition
from bot.store import CallbackRepo, Database, DncRepo, QaReviewRepo
from bot.store.base import utcnow
from bot.store.models import Call, Callback, Campaign, Contact

log = logging.getLogger("waihu.dialer")


@dataclass(frozen=True)
class QaResult:
    review_id: int
    callback_id: int | None
    note: str | None = None


def record_qa_review(db: Database, call_id: str, reviewer: str, compliant: bool,
                     notes: str | None = None, *, now: datetime | None = None) -> QaResult:
    """Store a reviewer's verdict.  A consented call found non-compliant (in a campaign with
    ``follow_ups.qa_followup``) gets a ``qa_followup`` callback to the customer, due at the
    next calling window (one per call; not for a number on the DNC list).  *now* defaults to
    the current time."""
    at = now or utcnow()
    with db.session(write=True) as session:
        review = QaReviewRepo(session).add(call_id, reviewer, compliant, notes, at=at)
        call = session.get(Call, call_id)
        assert call is not None  # QaReviewRepo.add checked it
        if compliant or call.outcome != "consented":
            return QaResult(review.id, None)
        campaign = session.get(Campaign, call.campaign_id)
        contact = session.scalar(select(Contact).where(Contact.id == call.contact_id)
                                 .with_for_update())
        assert campaign is not None and contact is not None  # foreign keys
        defn = campaign_definition(campaign)
        if not defn.follow_ups.qa_followup:
            return QaResult(review.id, None, "qa_followup is off for this campaign")
        if DncRepo(session).is_blocked(contact.phone):
            return QaResult(review.id, None, "the number is on the do-not-call list")
        existing = session.scalar(select(Callback).where(
            Callback.call_id == call_id, Callback.kind == "qa_followup",
            Callback.status == "pending"))
        if existing is not None:
            return QaResult(review.id, existing.id, "a QA follow-up is already scheduled")
        due = clamp_to_window(defn, at) or at
        callback = CallbackRepo(session).schedule(campaign.id, contact.id, due, "qa_followup",
                                                  call_id=call_id,
                                                  requested_text=notes or None)
        schedule_round(contact, due)
        log.info("followup.qa call_id=%s contact=%d due=%s", call_id, contact.id,
                 due.isoformat())
        return QaResult(review.id, callback.id)
