"""What the dialing rules need to know about contacts, read in bulk.

:func:`bot.campaigns.compliance.block_reason` decides from a :class:`ContactFacts` per contact;
this module reads those facts for a whole batch of contacts (or a whole campaign) in a few
queries: active DNC entries, numbers on a live call, due callbacks, customer-requested
callbacks so far, and the cross-campaign marketing cap.  The claim
(bot/campaigns/dialer.py) and the dry run (bot/campaigns/dryrun.py) read the same facts, so
the dry run reports exactly what a claim would do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, aliased

from bot.campaigns.compliance import ContactFacts
from bot.campaigns.definition import CampaignDefinition
from bot.store.models import CallAttempt, Callback, Campaign, Contact, DncEntry


def _due_callbacks(session: Session, contact_ids: Sequence[int] | None, campaign_id: int,
                   now: datetime) -> dict[int, Callback]:
    """The earliest pending callback due by *now* of each contact."""
    query = select(Callback).where(Callback.campaign_id == campaign_id,
                                   Callback.status == "pending", Callback.due_at <= now)
    if contact_ids is not None:
        query = query.where(Callback.contact_id.in_(list(contact_ids)))
    first: dict[int, Callback] = {}
    for callback in session.scalars(query.order_by(Callback.due_at, Callback.id)):
        first.setdefault(callback.contact_id, callback)
    return first


def _cap_until(session: Session, defn: CampaignDefinition, campaign_id: int,
               contact_ids: Sequence[int] | None, now: datetime) -> dict[int, datetime]:
    """For a marketing campaign: contact id -> end of the cross-campaign cap set by the latest
    answered call to its number from another marketing contact."""
    days = defn.dialing.marketing_cap_days
    if defn.type != "marketing" or days == 0:
        return {}
    other = aliased(Contact)
    query = (
        select(Contact.id, func.max(CallAttempt.answered_at))
        .join(other, and_(other.phone == Contact.phone, other.id != Contact.id))
        .join(CallAttempt, CallAttempt.contact_id == other.id)
        .join(Campaign, Campaign.id == other.campaign_id)
        .where(Contact.campaign_id == campaign_id, Campaign.type == "marketing",
               CallAttempt.dial_result == "answered",
               CallAttempt.answered_at > now - timedelta(days=days))
        .group_by(Contact.id)
    )
    if contact_ids is not None:
        query = query.where(Contact.id.in_(list(contact_ids)))
    return {cid: last + timedelta(days=days) for cid, last in session.execute(query)
            if last is not None}


def _callback_calls(session: Session, campaign_id: int,
                    contact_ids: Sequence[int] | None) -> dict[int, int]:
    """How many customer-requested callbacks each contact has had."""
    query = (select(CallAttempt.contact_id, func.count())
             .where(CallAttempt.campaign_id == campaign_id, CallAttempt.kind == "callback")
             .group_by(CallAttempt.contact_id))
    if contact_ids is not None:
        query = query.where(CallAttempt.contact_id.in_(list(contact_ids)))
    return {contact_id: n for contact_id, n in session.execute(query)}


def _blocked_contacts(session: Session, campaign_id: int,
                      contact_ids: Sequence[int] | None) -> set[int]:
    query = (select(Contact.id).join(DncEntry, DncEntry.phone == Contact.phone)
             .where(Contact.campaign_id == campaign_id, DncEntry.removed_at.is_(None)))
    if contact_ids is not None:
        query = query.where(Contact.id.in_(list(contact_ids)))
    return set(session.scalars(query))


def _on_call_contacts(session: Session, campaign_id: int,
                      contact_ids: Sequence[int] | None) -> set[int]:
    """Contacts whose number is on a live call: an attempt to it, in any campaign, holds a
    lease (their own live attempt included).  The lease is what says a call is live; the
    number's ``phone_locks`` row is only the guard a claim inserts (bot/campaigns/dialer.py)."""
    holder = aliased(Contact)
    live_numbers = (select(holder.phone)
                    .join(CallAttempt, CallAttempt.contact_id == holder.id)
                    .where(CallAttempt.lease_expires_at.is_not(None)))
    query = select(Contact.id).where(Contact.campaign_id == campaign_id,
                                     Contact.phone.in_(live_numbers))
    if contact_ids is not None:
        query = query.where(Contact.id.in_(list(contact_ids)))
    return set(session.scalars(query))


@dataclass(frozen=True)
class ClaimFacts:
    """The facts of a batch of one campaign's contacts (all of them if ``contact_ids`` is
    None), as of *now*."""

    blocked: set[int]
    on_call: set[int]
    callbacks: dict[int, Callback]
    callback_calls: dict[int, int]
    cap: dict[int, datetime]

    @classmethod
    def read(cls, session: Session, defn: CampaignDefinition, campaign_id: int,
             contact_ids: Sequence[int] | None, now: datetime) -> ClaimFacts:
        return cls(_blocked_contacts(session, campaign_id, contact_ids),
                   _on_call_contacts(session, campaign_id, contact_ids),
                   _due_callbacks(session, contact_ids, campaign_id, now),
                   _callback_calls(session, campaign_id, contact_ids),
                   _cap_until(session, defn, campaign_id, contact_ids, now))

    def of(self, contact: Contact) -> ContactFacts:
        callback = self.callbacks.get(contact.id)
        return ContactFacts(
            status=contact.status, attempts=contact.attempts,
            next_attempt_at=contact.next_attempt_at, last_result=contact.last_result,
            blocked=contact.id in self.blocked,
            due_callback=callback.kind if callback else None,
            callback_calls=self.callback_calls.get(contact.id, 0),
            marketing_cap_until=self.cap.get(contact.id),
            phone_locked=contact.id in self.on_call)
