"""A call placed by hand (`waihu call`): the same rules as the dialer, or an audited override.

The dialer (bot/campaigns/dialer.py) never dials a number on the do-not-call list or the
blacklist, outside the campaign's calling windows, or while another live call holds the
number, nor a customer who declined the campaign's offer. An operator's one-off call obeys
the same rules, decided by their owners
(`DncRepo.is_blocked`, `compliance.in_window`, `PhoneLockRepo.available`), and takes the
number's lock for as long as its lease, like a claim. The rules of a campaign's rounds
(attempts, retry times, the marketing cap) do not apply: this call is outside the rounds.

`force=True` is for a test line: the call goes ahead whatever the rules say, and the
override is written to the audit log (`call.forced`, who ran it, the masked number and
the rules overridden) in the same unit of work as the attempt. A forced call to a number
another call holds goes without the lock (there is only one per number).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from bot.campaigns.compliance import in_window
from bot.campaigns.definition import CampaignDefinition
from bot.campaigns.dialer import CallJob
from bot.privacy import mask_phone
from bot.store import CallRepo, ContactRepo, Database, DncRepo, PhoneLockRepo
from bot.store.repos.audit import AuditRepo, os_actor

log = logging.getLogger("waihu.manual_call")

GATEWAY = "waihu-call"
Rule = Literal["do_not_call", "declined", "outside_window", "phone_locked"]
RULE_TEXT: dict[Rule, str] = {
    "do_not_call": "the number is on the do-not-call list or the blacklist",
    "declined": "the customer declined this campaign's offer (a no is not redialled)",
    "outside_window": "now is outside the campaign's calling windows",
    "phone_locked": "another live call holds the number",
}


class CallRefused(Exception):
    """The rules forbid the call; *rules* says which."""

    def __init__(self, phone: str, rules: tuple[Rule, ...]) -> None:
        self.rules = rules
        super().__init__(f"refused to call {mask_phone(phone)}: "
                         + "; ".join(RULE_TEXT[r] for r in rules)
                         + " (--force overrides the rules for a test line, and is audited)")


@dataclass(frozen=True)
class ContactDetails:
    """Who the customer on the line is said to be (a new contact only)."""

    name: str | None = None
    gender: str | None = None
    id_last4: str | None = None


@dataclass(frozen=True)
class ManualCall:
    job: CallJob
    overridden: tuple[Rule, ...] = ()  # rules a forced call broke (empty unless forced)


def claim_manual_call(db: Database, campaign_id: int, defn: CampaignDefinition, phone: str,
                      target: str, now: datetime, *, details: ContactDetails | None = None,
                      force: bool = False, lease: timedelta = timedelta(hours=1)
                      ) -> ManualCall:
    """The contact (created if new), its attempt, the lease and the number's lock, checked
    against the dialing rules; raises `CallRefused` (and writes nothing) unless *force*."""
    details = details or ContactDetails()
    with db.session(write=True) as session:
        contacts = ContactRepo(session)
        contact = contacts.by_phone(campaign_id, phone) or contacts.add(
            campaign_id, phone, name=details.name, gender=details.gender,
            id_last4=details.id_last4)
        locks = PhoneLockRepo(session)
        broken: list[Rule] = []
        if DncRepo(session).is_blocked(phone) or contact.status == "dnc":
            broken.append("do_not_call")
        if contact.last_result == "declined":
            broken.append("declined")
        if not in_window(defn, now):
            broken.append("outside_window")
        lockable = locks.available(phone)
        if not lockable:
            broken.append("phone_locked")
        if broken and not force:  # the exception rolls the new contact back
            log.warning("call.refused phone=%s rules=%s", mask_phone(phone), ",".join(broken))
            raise CallRefused(phone, tuple(broken))
        expires = now + lease
        attempt = CallRepo(session).start_attempt(
            campaign_id, contact.id, gateway=GATEWAY, at=now, lease_expires_at=expires)
        if lockable:
            locks.lock(phone, attempt.call_id, GATEWAY)
        if broken:
            AuditRepo(session).record(os_actor(), "call.forced", attempt.call_id,
                                      phone=mask_phone(phone), rules=list(broken))
            log.warning("call.forced call_id=%s phone=%s rules=%s", attempt.call_id,
                        mask_phone(phone), ",".join(broken))
        job = CallJob(attempt.call_id, campaign_id, defn.name, defn.type, contact.id, phone,
                      attempt.attempt_no, target, defn.dialing.caller_id, "first", None,
                      expires)
    return ManualCall(job, tuple(broken))
