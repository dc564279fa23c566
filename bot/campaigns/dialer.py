"""The dialer: claims due contacts as call jobs for voice gateways, under leases.

A gateway loop looks like::

    dialer = Dialer(db, "gw-1", lease_s=60)
    jobs = dialer.claim(now, capacity=free_lines)      # attempts created, numbers locked
    ... every lease_s / 3: dialer.renew([ids of calls still up], now)
    ... the call runs; the gateway stores the dial result, the actions the outcome
    dialer.complete(job.call_id, now)                 # contact rescheduled or closed

Every claim first reclaims leases that expired (a gateway that died): the attempt is closed
as ``failed`` and the contact retried per the campaign's policy for ``failed``.  A contact
whose attempt holds a live lease is never handed out again, and a completed attempt is never
re-run, so a restarted dialer resumes where the old one stopped.

This module owns claiming and leases.  What a claim needs to know about contacts is read by
bot/campaigns/facts.py; what follows the end of a call (retries, second confirmation, trial
extension) is bot/campaigns/followups.py; QA follow-ups are bot/campaigns/qa.py; the dry run
``waihu campaign check`` is bot/campaigns/dryrun.py.

Concurrency: a claim works campaign by campaign, one unit of work each.  On PostgreSQL the
campaign row is locked (``FOR NO KEY UPDATE``) while its live calls are counted and its
contacts claimed, so ``dialing.concurrency`` holds exactly: claims of one campaign take turns
(milliseconds each), claims of different campaigns run side by side.  Contacts are selected
``FOR UPDATE SKIP LOCKED`` (a claimer never waits for a contact another transaction holds,
e.g. a completion creating a second-confirmation contact), and each number goes through
:class:`PhoneLockRepo` (a non-waiting advisory lock, then the ``phone_locks`` row).  The only
lock a claimer waits for is one campaign row, held by another claimer that waits for nothing:
no deadlock.  On SQLite every unit of work here takes the single write lock first
(``Database.session(write=True)``).

"On a call" has one record: the attempt's lease (``CallAttempt.lease_expires_at``, None once
the attempt is completed or reclaimed).  Renewing, reclaiming, counting a campaign's live
calls, and asking whether a number is busy (bot/campaigns/facts.py) all read the lease.  The
number's ``phone_locks`` row has no clock: it is the uniqueness guard that makes two claims of
one number collide, inserted with the lease and deleted with it in the same unit of work.  The
contact's ``in_progress`` status is its place in its rounds, set and cleared with the lease too.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, cast

from sqlalchemy import case, func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot.campaigns.compliance import (
    Reason,
    block_reason,
    clamp_to_window,
    counts_against_cap,
    in_window,
)
from bot.campaigns.definition import CampaignDefinition
from bot.campaigns.facts import ClaimFacts
from bot.campaigns.followups import Closer
from bot.campaigns.registry import definition_or_none
from bot.privacy import mask_phone
from bot.store import CallbackRepo, CallRepo, Database, NotFound, PhoneLockRepo
from bot.store.models import Call, CallAttempt, Callback, Campaign, Contact

log = logging.getLogger("waihu.dialer")

JobKind = Literal["first", "retry", "callback", "second_confirmation", "trial_extension",
                  "qa_followup"]
# The attempt kind a callback is dialled as.
_KIND_OF_CALLBACK: dict[str, JobKind] = {
    "customer_request": "callback", "second_confirmation": "second_confirmation",
    "trial_extension": "trial_extension", "qa_followup": "qa_followup"}
_BATCH = 50


@dataclass(frozen=True)
class CallJob:
    """One call for a gateway to place: dial ``target`` showing ``caller_id``, send
    ``/call_started`` to Rasa with ``call_id`` as sender, keep the lease renewed."""

    call_id: str
    campaign_id: int
    campaign_name: str
    campaign_type: str
    contact_id: int
    phone: str
    attempt_no: int
    target: str
    caller_id: str | None
    kind: JobKind
    callback_id: int | None
    lease_expires_at: datetime


@dataclass(frozen=True)
class Completion:
    """What :meth:`Dialer.complete` did with a finished attempt (``already``: nothing, it had
    been completed or reclaimed before)."""

    call_id: str
    contact_id: int
    contact_status: str
    next_attempt_at: datetime | None
    grade: str | None
    follow_ups: tuple[str, ...] = ()
    already: bool = False


# --- the dialer ----------------------------------------------------------------------------


class Dialer:
    """Claims, renews and completes call jobs for one gateway (``gateway_id``)."""

    def __init__(self, db: Database, gateway_id: str, lease_s: float = 60.0) -> None:
        if lease_s <= 0:
            raise ValueError("lease_s must be positive")
        self.db = db
        self.gateway_id = gateway_id
        self.lease = timedelta(seconds=lease_s)

    # -- claim ----------------------------------------------------------------------------

    def claim(self, now: datetime, capacity: int) -> list[CallJob]:
        """Up to *capacity* new call jobs, each with its attempt, lease and phone lock.

        Running campaigns by priority (highest first); inside one, contacts with a callback
        due first, then by contact priority, then the longest due.  Each campaign's
        ``dialing.concurrency`` bounds its live leases; every rule of
        :func:`bot.campaigns.compliance.block_reason` holds.
        """
        self.reclaim_expired(now)
        jobs: list[CallJob] = []
        if capacity <= 0:
            return jobs
        with self.db.session() as session:
            running = self._running(session)
        for campaign_id, defn in running:
            if len(jobs) >= capacity:
                break
            if not in_window(defn, now):
                continue
            try:
                # One unit of work per campaign: it holds one campaign lock at a time, so
                # claimers never wait on each other in a cycle.
                with self.db.session(write=True) as session:
                    got = self._claim_campaign(session, campaign_id, defn, now,
                                               capacity - len(jobs))
            except SQLAlchemyError:
                if not jobs:
                    raise
                # Earlier campaigns' jobs are committed: hand them out rather than let
                # their leases expire unused.
                log.exception("dialer.claim_failed campaign_id=%d", campaign_id)
                break
            jobs += got
            for job in got:
                log.info("dialer.claimed call_id=%s campaign=%s phone=%s kind=%s attempt=%d "
                         "gateway=%s", job.call_id, job.campaign_name, mask_phone(job.phone),
                         job.kind, job.attempt_no, self.gateway_id)
        return jobs

    @staticmethod
    def _running(session: Session) -> list[tuple[int, CampaignDefinition]]:
        """Running campaigns with a usable definition, highest priority first."""
        campaigns = session.scalars(select(Campaign).where(Campaign.status == "running"))
        pairs = [(c.id, d) for c in campaigns if (d := definition_or_none(c)) is not None]
        return sorted(pairs, key=lambda pair: (-pair[1].dialing.priority, pair[0]))

    def _claim_campaign(self, session: Session, campaign_id: int, defn: CampaignDefinition,
                        now: datetime, capacity: int) -> list[CallJob]:
        # The campaign row lock serialises claims of one campaign, so that its live calls
        # are counted exactly; FOR NO KEY UPDATE lets attempts that reference it be inserted.
        campaign = session.scalar(select(Campaign).where(Campaign.id == campaign_id)
                                  .with_for_update(key_share=True))
        if campaign is None or campaign.status != "running":
            return []  # paused (or removed) since it was listed
        room = min(defn.dialing.concurrency - live_calls(session, campaign.id), capacity)
        return self._claim_in(session, campaign, defn, now, room) if room > 0 else []

    def _claim_in(self, session: Session, campaign: Campaign, defn: CampaignDefinition,
                  now: datetime, room: int) -> list[CallJob]:
        due_callback = (select(Callback.id)
                        .where(Callback.contact_id == Contact.id, Callback.status == "pending",
                               Callback.due_at <= now)
                        .correlate(Contact).exists())
        jobs: list[CallJob] = []
        seen: set[int] = set()
        while len(jobs) < room:
            query = (
                select(Contact)
                .where(Contact.campaign_id == campaign.id, Contact.status == "pending",
                       or_(Contact.next_attempt_at.is_(None), Contact.next_attempt_at <= now,
                           due_callback))
                .order_by(case((due_callback, 0), else_=1), Contact.priority.desc(),
                          func.coalesce(Contact.next_attempt_at, Contact.created_at),
                          Contact.id)
                .limit(_BATCH)
                .with_for_update(skip_locked=True, of=Contact)
            )
            if seen:
                query = query.where(Contact.id.not_in(seen))
            batch = session.scalars(query).all()
            if not batch:
                break
            seen.update(c.id for c in batch)
            facts = ClaimFacts.read(session, defn, campaign.id, [c.id for c in batch], now)
            for contact in batch:
                if len(jobs) >= room:
                    break
                job = self._try_contact(session, campaign, defn, contact, facts, now)
                if job is not None:
                    jobs.append(job)
            if len(batch) < _BATCH:
                break
        return jobs

    def _try_contact(self, session: Session, campaign: Campaign, defn: CampaignDefinition,
                     contact: Contact, facts: ClaimFacts, now: datetime) -> CallJob | None:
        contact_facts = facts.of(contact)
        reason = block_reason(defn, campaign.status, contact_facts, now)
        if reason is not None:
            self._note_skip(session, defn, contact, reason, facts, now)
            return None
        locks = PhoneLockRepo(session)
        if not locks.available(contact.phone):
            return None  # another call has or is taking the number: try again later
        callback = facts.callbacks.get(contact.id)
        kind: JobKind | None = _KIND_OF_CALLBACK[callback.kind] if callback else None
        expires = now + self.lease
        attempt = CallRepo(session).start_attempt(
            campaign.id, contact.id, call_id=str(uuid.uuid4()), gateway=self.gateway_id,
            at=now, lease_expires_at=expires, kind=kind,
            callback_id=callback.id if callback else None,
            counted=counts_against_cap(defn, contact_facts))
        locks.lock(contact.phone, attempt.call_id, self.gateway_id)
        contact.status = "in_progress"
        session.flush()
        return CallJob(
            call_id=attempt.call_id, campaign_id=campaign.id, campaign_name=campaign.name,
            campaign_type=campaign.type, contact_id=contact.id, phone=contact.phone,
            attempt_no=attempt.attempt_no, target=defn.trunk.target(contact.phone),
            caller_id=defn.dialing.caller_id, kind=cast(JobKind, attempt.kind),
            callback_id=attempt.callback_id, lease_expires_at=expires)

    @staticmethod
    def _note_skip(session: Session, defn: CampaignDefinition, contact: Contact,
                   reason: Reason, facts: ClaimFacts, now: datetime) -> None:
        """Record what a skip teaches, so the contact stops coming back in every claim."""
        if reason == "dnc":
            contact.status = "dnc"
            contact.next_attempt_at = None
            CallbackRepo(session).cancel_pending(contact.id)
            log.info("dialer.skip_dnc contact=%d phone=%s", contact.id,
                     mask_phone(contact.phone))
        elif reason == "attempts_exhausted":
            contact.status = "failed"
            contact.next_attempt_at = None
        elif reason == "marketing_cap":
            until = facts.cap[contact.id]
            contact.next_attempt_at = clamp_to_window(defn, until) or until
        session.flush()

    # -- renew / complete / reclaim ----------------------------------------------------------

    def renew(self, call_ids: Iterable[str], now: datetime) -> list[str]:
        """Extend the leases of this gateway's live calls to now + lease_s.

        Returns the ids still held: a call missing from it lost its lease (reclaimed after
        it expired, or already completed) and should be hung up by the gateway.
        """
        ids = list(dict.fromkeys(call_ids))
        if not ids:
            return []
        expires = now + self.lease
        with self.db.session(write=True) as session:
            attempts = session.scalars(
                select(CallAttempt).where(CallAttempt.call_id.in_(ids),
                                          CallAttempt.gateway == self.gateway_id,
                                          CallAttempt.lease_expires_at.is_not(None))
                .with_for_update()).all()
            held = [a.call_id for a in attempts]
            for attempt in attempts:
                attempt.lease_expires_at = expires
        lost = set(ids) - set(held)
        if lost:
            log.warning("dialer.lease_lost gateway=%s call_ids=%s", self.gateway_id,
                        ",".join(sorted(lost)))
        return [i for i in ids if i in held]

    def complete(self, call_id: str, now: datetime) -> Completion:
        """Close an attempt once the gateway and the actions have stored its dial result and
        outcome: grade the call, reschedule or close the contact, release the number, mark a
        dialled callback done, generate follow-ups.  Idempotent."""
        with self.db.session(write=True) as session:
            attempt = session.scalar(select(CallAttempt).where(CallAttempt.call_id == call_id)
                                     .with_for_update())
            if attempt is None:
                raise NotFound(f"call attempt {call_id}")
            if attempt.lease_expires_at is None:
                if attempt.completed_at is None:
                    raise ValueError(f"call {call_id} was not handed out by the dialer")
                return _completion(session, attempt, (), already=True)
            return _close(session, attempt, now, reclaimed=False)

    def reclaim_expired(self, now: datetime) -> int:
        """Close the attempts whose lease expired before *now* (their gateway died): the
        attempt as ``failed`` unless it had finished, the contact retried per the policy for
        ``failed``.  Returns how many were reclaimed."""
        with self.db.session(write=True) as session:
            attempts = session.scalars(
                select(CallAttempt).where(CallAttempt.lease_expires_at < now)
                .order_by(CallAttempt.id).with_for_update(skip_locked=True)).all()
            for attempt in attempts:
                log.warning("dialer.reclaimed call_id=%s gateway=%s", attempt.call_id,
                            attempt.gateway)
                _close(session, attempt, now, reclaimed=True)
            return len(attempts)


# --- live calls and the end of a lease ------------------------------------------------------


def live_calls(session: Session, campaign_id: int) -> int:
    """How many of the campaign's attempts hold a lease (expired ones included until they
    are reclaimed)."""
    return session.scalar(
        select(func.count()).select_from(CallAttempt).where(
            CallAttempt.campaign_id == campaign_id,
            CallAttempt.lease_expires_at.is_not(None))) or 0


def _end_lease(session: Session, attempt: CallAttempt, now: datetime) -> None:
    """The attempt is over: its lease ends and, in the same unit of work, its number's lock
    goes (the lock never outlives the lease)."""
    attempt.lease_expires_at = None
    attempt.completed_at = now
    PhoneLockRepo(session).release(attempt.call_id)


def _close(session: Session, attempt: CallAttempt, now: datetime, *,
           reclaimed: bool) -> Completion:
    """End the attempt's lease, then settle the call and the contact (followups.py)."""
    _end_lease(session, attempt, now)
    follow_ups = Closer(session, attempt, now).close(reclaimed=reclaimed)
    return _completion(session, attempt, follow_ups)


def _completion(session: Session, attempt: CallAttempt, follow_ups: Sequence[str],
                already: bool = False) -> Completion:
    contact = session.get(Contact, attempt.contact_id)
    assert contact is not None  # foreign key
    call = session.get(Call, attempt.call_id)
    return Completion(attempt.call_id, contact.id, contact.status, contact.next_attempt_at,
                      call.grade if call else None, tuple(follow_ups), already)
