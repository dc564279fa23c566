"""The dialer: hands due contacts to voice gateways as call jobs, under leases, and closes them.

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

Rules chosen where the brief was silent (see also bot/campaigns/compliance.py):

- ``Contact.attempts`` counts the attempts of the current *round* against ``max_attempts``.
  A customer-requested callback is not counted, and is dialled even after the last attempt,
  for up to ``max_attempts`` such callbacks per contact; beyond that they count like any
  attempt (a customer who keeps saying "call me later" is not called forever).  A follow-up
  (second confirmation, trial extension, QA follow-up) starts a new round: the contact's
  count goes back to 0.  Every attempt stays in ``call_attempts`` whatever the count says.
- A contact with a pending callback after its call (asked for in the call, or scheduled by a
  follow-up) is due at the callback time moved into the calling windows.
- Answered calls close the contact (``done``) except: ``callback_requested`` (the callback),
  ``no_response`` (retried per ``no_response``), and for notifications ``hung_up_early``
  (the notice was not heard: retried like ``no_response``).  A number on the DNC list after
  the call closes it as ``dnc`` and cancels its pending callbacks.
- An answered call left without an outcome is hung up (``CallRepo.hang_up``) by
  :meth:`Dialer.complete`; by a reclaim it is only marked ``summary.interrupted`` and keeps
  ``answered`` as its dial result (the customer did answer), and the contact is retried as
  ``failed``.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal, cast

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, aliased

from bot.campaigns.compliance import (
    REASONS,
    ContactFacts,
    Reason,
    block_reason,
    clamp_to_window,
    counts_against_cap,
    deadline_warning,
    in_window,
    next_attempt,
    next_window_start,
)
from bot.campaigns.definition import CampaignDefinition, CampaignFileError
from bot.campaigns.grading import grade_call
from bot.campaigns.registry import campaign_definition
from bot.privacy import mask_phone
from bot.store import (
    CallbackRepo,
    CallRepo,
    CampaignRepo,
    ContactRepo,
    Database,
    DncRepo,
    NotFound,
    PhoneLockRepo,
    QaReviewRepo,
)
from bot.store.base import utcnow
from bot.store.models import Call, CallAttempt, Callback, Campaign, Contact, DncEntry, PhoneLock

log = logging.getLogger("waihu.dialer")

JobKind = Literal["first", "retry", "callback", "second_confirmation", "trial_extension",
                  "qa_followup"]
# The attempt kind a callback is dialled as.
_KIND_OF_CALLBACK: dict[str, JobKind] = {
    "customer_request": "callback", "second_confirmation": "second_confirmation",
    "trial_extension": "trial_extension", "qa_followup": "qa_followup"}
# Outcomes after which the contact needs no further call.
_CLOSING_OUTCOMES = frozenset({
    "consented", "declined", "notified", "survey_completed", "survey_partial", "wrong_person",
    "verification_failed", "escalated", "complaint", "do_not_call"})
# Dial results that mean a second-confirmation customer cannot be reached: always, or once
# the attempts are used up.
_UNREACHABLE_NOW = frozenset({"powered_off", "suspended"})
_UNREACHABLE_AT_LAST = frozenset({"busy", "no_answer", "rejected"})
_TRIAL_CALLBACKS = ("second_confirmation", "trial_extension")
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


def _definition_or_none(campaign: Campaign) -> CampaignDefinition | None:
    try:
        return campaign_definition(campaign)
    except CampaignFileError as exc:
        log.error("dialer.bad_definition campaign=%s error=%s", campaign.name, exc)
        return None


# --- facts about contacts, read in bulk ------------------------------------------------------


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


def _locked_contacts(session: Session, campaign_id: int,
                     contact_ids: Sequence[int] | None) -> set[int]:
    """Contacts whose number another attempt holds (their own live attempt included)."""
    query = (select(Contact.id).join(PhoneLock, PhoneLock.phone == Contact.phone)
             .where(Contact.campaign_id == campaign_id))
    if contact_ids is not None:
        query = query.where(Contact.id.in_(list(contact_ids)))
    return set(session.scalars(query))


@dataclass(frozen=True)
class _Facts:
    blocked: set[int]
    locked: set[int]
    callbacks: dict[int, Callback]
    callback_calls: dict[int, int]
    cap: dict[int, datetime]

    @classmethod
    def read(cls, session: Session, defn: CampaignDefinition, campaign_id: int,
             contact_ids: Sequence[int] | None, now: datetime) -> _Facts:
        return cls(_blocked_contacts(session, campaign_id, contact_ids),
                   _locked_contacts(session, campaign_id, contact_ids),
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
            phone_locked=contact.id in self.locked)


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
        pairs = [(c.id, d) for c in campaigns if (d := _definition_or_none(c)) is not None]
        return sorted(pairs, key=lambda pair: (-pair[1].dialing.priority, pair[0]))

    def _claim_campaign(self, session: Session, campaign_id: int, defn: CampaignDefinition,
                        now: datetime, capacity: int) -> list[CallJob]:
        # The campaign row lock serialises claims of one campaign, so that its live calls
        # are counted exactly; FOR NO KEY UPDATE lets attempts that reference it be inserted.
        campaign = session.scalar(select(Campaign).where(Campaign.id == campaign_id)
                                  .with_for_update(key_share=True))
        if campaign is None or campaign.status != "running":
            return []  # paused (or removed) since it was listed
        live = session.scalar(
            select(func.count()).select_from(CallAttempt).where(
                CallAttempt.campaign_id == campaign.id,
                CallAttempt.lease_expires_at.is_not(None))) or 0
        room = min(defn.dialing.concurrency - live, capacity)
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
            facts = _Facts.read(session, defn, campaign.id, [c.id for c in batch], now)
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
                     contact: Contact, facts: _Facts, now: datetime) -> CallJob | None:
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
        locks.lock(contact.phone, attempt.call_id, self.gateway_id, expires)
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
                   reason: Reason, facts: _Facts, now: datetime) -> None:
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
        """Extend the leases (and phone locks) of this gateway's live calls to now + lease_s.

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
            PhoneLockRepo(session).renew(held, expires)
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
            return _Closer(session, attempt, now).close(reclaimed=False)

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
                _Closer(session, attempt, now).close(reclaimed=True)
            return len(attempts)


# --- closing an attempt ------------------------------------------------------------------------


def _completion(session: Session, attempt: CallAttempt, follow_ups: Sequence[str],
                already: bool = False) -> Completion:
    contact = session.get(Contact, attempt.contact_id)
    assert contact is not None  # foreign key
    call = session.get(Call, attempt.call_id)
    return Completion(attempt.call_id, contact.id, contact.status, contact.next_attempt_at,
                      call.grade if call else None, tuple(follow_ups), already)


class _Closer:
    """Closes one attempt inside the caller's unit of work (complete or reclaim)."""

    def __init__(self, session: Session, attempt: CallAttempt, now: datetime) -> None:
        self.session = session
        self.attempt = attempt
        self.now = now
        self.calls = CallRepo(session)
        self.callbacks = CallbackRepo(session)
        self.follow_ups: list[str] = []

    def close(self, *, reclaimed: bool) -> Completion:
        attempt, session, now = self.attempt, self.session, self.now
        contact = session.scalar(select(Contact).where(Contact.id == attempt.contact_id)
                                 .with_for_update())
        campaign = session.get(Campaign, attempt.campaign_id)
        assert contact is not None and campaign is not None  # foreign keys
        defn = _definition_or_none(campaign)
        if attempt.dial_result is None:
            self.calls.set_dial_result(attempt.call_id, "failed", at=now)
        call = self.calls.get_call(attempt.call_id)
        if attempt.dial_result == "answered" and call is not None and call.outcome is None:
            if reclaimed:
                call.ended_at = call.ended_at or now
                call.summary = {**(call.summary or {}), "interrupted": "lease_expired"}
            else:
                self.calls.hang_up(call.id, at=now)
        if call is not None and call.outcome is not None and defn is not None:
            call.grade = grade_call(defn.grading, call)
        attempt.ended_at = attempt.ended_at or now
        attempt.lease_expires_at = None
        attempt.completed_at = now
        PhoneLockRepo(session).release(attempt.call_id)
        if attempt.callback_id is not None:
            dialled = session.get(Callback, attempt.callback_id)
            if dialled is not None and dialled.status == "pending":
                dialled.status = "done"
        outcome = call.outcome if call is not None else None
        contact.last_result = outcome or attempt.dial_result
        if defn is None:
            contact.status, contact.next_attempt_at = "failed", None
        else:
            self._reschedule(contact, campaign, defn, call)
        session.flush()
        log.info("dialer.completed call_id=%s dial=%s outcome=%s contact_status=%s "
                 "reclaimed=%s", attempt.call_id, attempt.dial_result, outcome,
                 contact.status, reclaimed)
        return _completion(session, attempt, self.follow_ups)

    def _reschedule(self, contact: Contact, campaign: Campaign, defn: CampaignDefinition,
                    call: Call | None) -> None:
        now = self.now
        if DncRepo(self.session).is_blocked(contact.phone):
            contact.status, contact.next_attempt_at = "dnc", None
            self.callbacks.cancel_pending(contact.id)
            return
        outcome = call.outcome if call is not None else None
        if outcome == "consented" and call is not None:
            self._second_confirmation(contact, campaign, defn, call)
        pending = self.callbacks.pending_for(contact.id)
        if pending:
            due = max(pending[0].due_at, now)
            contact.status = "pending"
            contact.next_attempt_at = clamp_to_window(defn, due) or due
            return
        result = _retry_result(self.attempt.dial_result, outcome, defn)
        if result is None:
            contact.status, contact.next_attempt_at = "done", None
            return
        exhausted = contact.attempts >= defn.dialing.max_attempts
        unreachable = result in _UNREACHABLE_NOW or (exhausted and result in _UNREACHABLE_AT_LAST)
        if defn.type == "second_confirmation" and unreachable and self._extend_trial(contact,
                                                                                    defn):
            return
        when = None if exhausted else next_attempt(defn, result, now)
        if when is None:
            contact.status, contact.next_attempt_at = "failed", None
        else:
            contact.status, contact.next_attempt_at = "pending", when

    # -- follow-ups -------------------------------------------------------------------------

    def _second_confirmation(self, contact: Contact, campaign: Campaign,
                             defn: CampaignDefinition, call: Call) -> None:
        """A trial sold: create or update the customer's contact in the second-confirmation
        campaign, due ``confirm_days_before_end`` days before the trial ends."""
        name = defn.follow_ups.second_confirmation
        if not name or not defn.has_trial:
            return
        target = CampaignRepo(self.session).by_name(name)
        target_defn = _definition_or_none(target) if target is not None else None
        if target is None or target_defn is None:
            log.error("followup.second_confirmation_missing call_id=%s campaign=%s",
                      call.id, name)
            self.follow_ups.append(f"second_confirmation: campaign {name} missing")
            return
        sold_on = (call.ended_at or self.now).astimezone(defn.zone).date()
        end = trial_end(defn, contact.fields or {}, sold_on)
        assert end is not None  # has_trial
        due = confirm_due(target_defn, end, defn.follow_ups.confirm_days_before_end, self.now)
        fields = {**(contact.fields or {}), "trial_end": end.isoformat(),
                  "origin_campaign": campaign.name, "origin_call_id": call.id}
        other = self.session.scalar(
            select(Contact).where(Contact.campaign_id == target.id,
                                  Contact.phone == contact.phone).with_for_update())
        if other is None:
            other = Contact(campaign_id=target.id, phone=contact.phone, name=contact.name,
                            gender=contact.gender, age=contact.age, region=contact.region,
                            id_last4_hash=contact.id_last4_hash, id_salt=contact.id_salt,
                            fields=fields, priority=contact.priority)
            self.session.add(other)
            self.session.flush()
        else:
            other.fields = {**(other.fields or {}), **fields}
            if contact.id_last4_hash and not other.id_last4_hash:
                other.id_last4_hash, other.id_salt = contact.id_last4_hash, contact.id_salt
            other.name = other.name or contact.name
            other.gender = other.gender or contact.gender
        self._new_round(other, target.id, due, "second_confirmation", call.id,
                        f"试用期至 {end.isoformat()}")
        self.follow_ups.append(f"second_confirmation: contact {other.id} in {name} due "
                               f"{due.isoformat()}")
        log.info("followup.second_confirmation call_id=%s campaign=%s contact=%d due=%s",
                 call.id, name, other.id, due.isoformat())

    def _extend_trial(self, contact: Contact, defn: CampaignDefinition) -> bool:
        """Second confirmation, customer unreachable: extend the trial one period and call
        again before the new end.  False when the trial end or length is unknown."""
        fields = dict(contact.fields or {})
        old = trial_end(defn, fields, None)
        period = defn.script.trial_days
        if old is None or not period:
            log.error("followup.trial_not_extended contact=%d reason=unknown trial end or "
                      "length", contact.id)
            return False
        new = old + timedelta(days=period)
        fields["trial_end"] = new.isoformat()
        fields["trial_extensions"] = int(fields.get("trial_extensions") or 0) + 1
        contact.fields = fields
        due = confirm_due(defn, new, defn.follow_ups.confirm_days_before_end, self.now)
        self._new_round(contact, contact.campaign_id, due, "trial_extension",
                        self.attempt.call_id, f"试用期延长: {old.isoformat()} -> {new.isoformat()}",
                        closing=True)
        self.follow_ups.append(f"trial_extension: trial ends {new.isoformat()}, "
                               f"call due {due.isoformat()}")
        log.info("followup.trial_extended call_id=%s contact=%d trial_end=%s due=%s",
                 self.attempt.call_id, contact.id, new.isoformat(), due.isoformat())
        return True

    def _new_round(self, contact: Contact, campaign_id: int, due: datetime, kind: str,
                   call_id: str, text: str, *, closing: bool = False) -> None:
        self.callbacks.cancel_pending(contact.id, kinds=_TRIAL_CALLBACKS)
        self.callbacks.schedule(campaign_id, contact.id, due, kind, call_id=call_id,
                                requested_text=text)
        schedule_round(contact, due, closing=closing)


def schedule_round(contact: Contact, due: datetime, *, closing: bool = False) -> None:
    """A follow-up starts a new round of attempts for the contact, due at *due*.  A contact
    on another call keeps its status (completing that call finds the pending callback);
    *closing* is for the contact whose call is being closed right now."""
    contact.attempts = 0
    if closing or contact.status != "in_progress":
        contact.status = "pending"
        contact.next_attempt_at = due


def _retry_result(dial_result: str | None, outcome: str | None,
                  defn: CampaignDefinition) -> str | None:
    """The result whose retry policy applies, or None when the contact is done."""
    if dial_result != "answered":
        return dial_result or "failed"
    if outcome is None:
        return "failed"
    if outcome in _CLOSING_OUTCOMES:
        return None
    if outcome == "hung_up_early":
        return "no_response" if defn.type == "notification" else None
    return "no_response"  # no_response, or callback_requested without a callback row


def trial_end(defn: CampaignDefinition, fields: dict[str, Any], sold_on: date | None
              ) -> date | None:
    """The contact's ``trial_end`` field, else the campaign's fixed ``script.trial_end``,
    else *sold_on* plus ``script.trial_days`` (as actions/context.py tells the customer)."""
    own = fields.get("trial_end")
    if own:
        return date.fromisoformat(str(own))
    if defn.script.trial_end:
        return defn.script.trial_end
    if defn.script.trial_days and sold_on is not None:
        return sold_on + timedelta(days=defn.script.trial_days)
    return None


def confirm_due(defn: CampaignDefinition, end: date, days_before: int, now: datetime
                ) -> datetime:
    """The first calling window on or after ``end - days_before`` (and not before *now*)."""
    start = datetime.combine(end - timedelta(days=days_before), time(0), tzinfo=defn.zone)
    earliest = max(start, now)
    return clamp_to_window(defn, earliest) or earliest


# --- QA -------------------------------------------------------------------------------------


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


# --- dry run -------------------------------------------------------------------------------


def check_campaign(db: Database, name: str, now: datetime) -> dict[str, Any]:
    """What a claim at *now* would do with the campaign's contacts, as if it were running:
    how many would be dialled and how many are skipped, by reason.  Changes nothing.
    Times are given in the campaign's time zone."""
    with db.session() as session:
        campaign = CampaignRepo(session).by_name(name)
        if campaign is None:
            raise NotFound(f"no campaign named {name!r}")
        defn = campaign_definition(campaign)
        contacts = ContactRepo(session).list(campaign.id)
        facts = _Facts.read(session, defn, campaign.id, None, now)
        counts: Counter[str] = Counter()
        waits: list[datetime] = []
        for contact in contacts:
            contact_facts = facts.of(contact)
            reason = block_reason(defn, "running", contact_facts, now)
            counts[reason or "would_dial"] += 1
            if reason == "retry_wait" and contact.next_attempt_at is not None:
                waits.append(contact.next_attempt_at)
        live = session.scalar(select(func.count()).select_from(CallAttempt).where(
            CallAttempt.campaign_id == campaign.id,
            CallAttempt.lease_expires_at.is_not(None))) or 0
    warning = deadline_warning(defn, now.astimezone(defn.zone).date())
    window_open = in_window(defn, now)
    next_start = next_window_start(defn, now)

    def local(t: datetime | None) -> str | None:
        return t.astimezone(defn.zone).isoformat() if t is not None else None

    return {
        "campaign": campaign.name,
        "type": campaign.type,
        "status": campaign.status,
        "at": local(now),
        "contacts": len(contacts),
        "would_dial": counts["would_dial"],
        "skipped": {r: counts[r] for r in REASONS if r != "campaign_not_running"},
        "in_window": window_open,
        "next_window_start": local(next_start),
        "next_retry_at": local(min(waits) if waits else None),
        "concurrency": defn.dialing.concurrency,
        "live_calls": live,
        "deadline": warning.as_json() if warning else None,
    }
