"""What follows the end of a call: the attempt's result settled and the contact rescheduled or
closed, with the follow-up calls the campaign asks for.

:class:`Closer` runs inside the dialer's unit of work when an attempt is completed or its
lease is reclaimed (bot/campaigns/dialer.py ends the lease; this module does the rest):
the dial result and an unfinished call are settled, the call graded, the dialled callback
marked done, and the contact given its next attempt (retry times per dial result), closed,
or started on a new round: second confirmation of a trial sold, trial extension when the
second-confirmation customer cannot be reached.  :func:`schedule_round`, :func:`trial_end`
and :func:`confirm_due` are shared with the QA follow-ups (bot/campaigns/qa.py).

Rules chosen where the brief was silent (see also bot/campaigns/compliance.py):

- ``Contact.attempts`` counts the attempts of the current *round* against ``max_attempts``.
  A customer-requested callback is not counted, and is dialled even after the last attempt,
  for up to ``max_attempts`` such callbacks per contact; beyond that they count like any
  attempt (a customer who keeps saying "call me later" is not called forever).  A follow-up
  (second confirmation, trial extension, QA follow-up) starts a new round: the contact's
  count goes back to 0.  Every attempt stays in ``call_attempts`` whatever the count says.
- A contact with a pending callback after its call (asked for in the call, or scheduled by a
  follow-up) is due at the callback time moved into the calling windows.
- A declined call cancels the contact's pending customer-requested callbacks (a refusal
  on the callback, or on any later call, supersedes the earlier "call me later").
- Answered calls close the contact (``done``) except: ``callback_requested`` (the callback),
  ``no_response`` (retried per ``no_response``), and for notifications ``hung_up_early``
  (the notice was not heard: retried like ``no_response``).  A number on the DNC list after
  the call closes it as ``dnc`` and cancels its pending callbacks.
- An answered call left without an outcome is hung up (``bot.callrecord.close``) when the
  attempt is completed; by a reclaim it is ``failed`` (a system failure, with
  ``summary.interrupted``) and keeps ``answered`` as its dial result (the customer did
  answer). A ``failed`` call's contact is retried per the policy for ``failed``, like a
  failed dial.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import callrecord
from bot.campaigns.compliance import clamp_to_window, next_attempt
from bot.campaigns.definition import CampaignDefinition
from bot.campaigns.grading import grade_call
from bot.campaigns.registry import definition_or_none
from bot.store import CallbackRepo, CampaignRepo, DncRepo
from bot.store.models import Call, CallAttempt, Callback, Campaign, Contact, Escalation

log = logging.getLogger("waihu.dialer")

# Outcomes after which the contact needs no further call.
_CLOSING_OUTCOMES = frozenset({
    "consented", "declined", "notified", "survey_completed", "survey_partial", "wrong_person",
    "verification_failed", "escalated", "complaint", "do_not_call"})
# Dial results that mean a second-confirmation customer cannot be reached: always, or once
# the attempts are used up.
_UNREACHABLE_NOW = frozenset({"powered_off", "suspended"})
_UNREACHABLE_AT_LAST = frozenset({"busy", "no_answer", "rejected"})
_TRIAL_CALLBACKS = ("second_confirmation", "trial_extension")
# An escalation in one of these reached a person (or was already given its callback).
_TAKEN_ESCALATIONS = ("connected", "bridged", "returned_to_bot", "callback")
NO_AGENT_CALLBACK_DELAY = timedelta(hours=1)
NO_AGENT_CALLBACK_TEXT = "转人工未接通，回电"  # marks the callback: one per contact


class Closer:
    """Closes one attempt inside the caller's unit of work (complete or reclaim), once the
    dialer has ended its lease; ``follow_ups`` says what was scheduled."""

    def __init__(self, session: Session, attempt: CallAttempt, now: datetime) -> None:
        self.session = session
        self.attempt = attempt
        self.now = now
        self.callbacks = CallbackRepo(session)
        self.follow_ups: list[str] = []

    def close(self, *, reclaimed: bool) -> list[str]:
        attempt, session, now = self.attempt, self.session, self.now
        contact = session.scalar(select(Contact).where(Contact.id == attempt.contact_id)
                                 .with_for_update())
        campaign = session.get(Campaign, attempt.campaign_id)
        assert contact is not None and campaign is not None  # foreign keys
        defn = definition_or_none(campaign)
        if attempt.dial_result is None:
            callrecord.record_dial_result(session, attempt.call_id, "failed", now)
        call = callrecord.close(session, attempt.call_id, ended_at=now,
                                ended_by="lease_expired" if reclaimed else "completed")
        if call is not None and call.outcome is not None and defn is not None:
            call.grade = grade_call(defn.grading, call)
        attempt.ended_at = attempt.ended_at or now
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
        return self.follow_ups

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
        if outcome == "declined":  # a no is a no: "call me later" said before it is void
            self.callbacks.cancel_pending(contact.id, kinds=("customer_request",))
        if outcome == "escalated" and call is not None:
            self._callback_when_nobody_took(contact, call)
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

    def _callback_when_nobody_took(self, contact: Contact, call: Call) -> None:
        """The customer asked for a person and no agent took the call (none free within the
        wait limit, or the customer hung up waiting): the bot promised a callback, and this
        is it, ``NO_AGENT_CALLBACK_DELAY`` later, asked for like one the customer named."""
        waiting = self.session.scalars(select(Escalation).where(
            Escalation.call_id == call.id,
            Escalation.status.not_in(_TAKEN_ESCALATIONS))).all()
        if not waiting:
            return
        before = self.session.scalar(select(Callback.id).where(
            Callback.contact_id == contact.id,
            Callback.requested_text == NO_AGENT_CALLBACK_TEXT).limit(1))
        if before is not None:  # once: a second call nobody took ends there
            log.info("followup.no_agent_again call_id=%s", call.id)
            return
        due = self.now + NO_AGENT_CALLBACK_DELAY
        self.callbacks.schedule(contact.campaign_id, contact.id, due, "customer_request",
                                call_id=call.id, requested_text=NO_AGENT_CALLBACK_TEXT)
        for escalation in waiting:
            escalation.status = "callback"
        self.follow_ups.append(f"callback: nobody took the escalated call, due {due:%H:%M}")
        log.info("followup.no_agent_callback call_id=%s due=%s", call.id, due.isoformat())

    def _second_confirmation(self, contact: Contact, campaign: Campaign,
                             defn: CampaignDefinition, call: Call) -> None:
        """A trial sold: create or update the customer's contact in the second-confirmation
        campaign, due ``confirm_days_before_end`` days before the trial ends."""
        name = defn.follow_ups.second_confirmation
        if not name or not defn.has_trial:
            return
        target = CampaignRepo(self.session).by_name(name)
        target_defn = definition_or_none(target) if target is not None else None
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
                            id_hash_key=contact.id_hash_key,
                            fields=fields, priority=contact.priority)
            self.session.add(other)
            self.session.flush()
        else:
            other.fields = {**(other.fields or {}), **fields}
            if contact.id_last4_hash and not other.id_last4_hash:
                other.id_last4_hash, other.id_salt, other.id_hash_key = (
                    contact.id_last4_hash, contact.id_salt, contact.id_hash_key)
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
    if outcome is None or outcome == "failed":  # a system failure: retried as a failed dial
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

