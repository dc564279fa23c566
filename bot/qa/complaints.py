"""Complaints (issue 15 item 5): every complaint gets a record, handled new -> contacted ->
resolved within deadlines, with the answer given and the root cause, and a supervisor's
decision whether it was serious enough to blacklist the number.

Where complaints come from, each recorded in the caller's unit of work:
- a call: the bot's complaint flow (actions/flowcontrol.py) ends in an ``AddDoNotCall``
  effect of source ``complaint``, which actions/actions.py hands to `record_call_complaint`
  instead of blacklisting itself;
- an agent's ``complaint`` disposition after a call (bot/console/dispositions.py);
- a supervisor's entry in the console (bot/console/complaint_pages.py).
One record per call: recording the same call's complaint again returns the first.

Blacklisting follows the campaign's ``complaints.blacklist``: ``immediately`` (the default,
the behaviour before this module: every complaint blacklists the number at once) or
``on_decision`` (the number stays callable until a supervisor decides the complaint was
serious).  The blacklist itself is DncRepo's (one owner): "serious" adds the entry; "not
serious" closes it (DncRepo.remove keeps who, when and why on the entry) only when this
complaint's entry is the number's active blacklist and no other complaint that applied it
stands; otherwise the decision is recorded and the entry kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.wording import CONTROL_WORDS
from bot.campaigns.phones import normalize_phone
from bot.campaigns.registry import definition_or_none
from bot.console.call_pop import mask_text
from bot.privacy import mask_phone
from bot.store import Database
from bot.store.models import (
    COMPLAINT_DECISIONS,
    COMPLAINT_ROOT_CAUSES,
    COMPLAINT_SEVERITIES,
    Call,
    Campaign,
    Complaint,
    Contact,
    DncEntry,
    Escalation,
    TranscriptTurn,
)
from bot.store.repos.audit import AuditRepo
from bot.store.repos.complaints import ComplaintRepo
from bot.store.repos.dnc import DncRepo

log = logging.getLogger("waihu.qa")

# The practice's handling deadlines, counted in working days (Monday to Friday in the
# campaign's time zone; public holidays are not known here).
CONTACT_WITHIN_WORKING_DAYS = 1
RESOLVE_WITHIN_WORKING_DAYS = 5
DEFAULT_SEVERITY = "medium"
MAX_TEXT = 2000
NEXT_STATUS = {"new": "contacted", "contacted": "resolved"}
COMPLAINT_WORDS = dict(CONTROL_WORDS)["complain"]
BOT = "bot"  # who recorded a call's complaint (as the DNC entries it adds say)

Effect = Literal["blacklisted", "already_listed", "lifted", "kept", "none"]


class ComplaintRefused(ValueError):
    """A change the complaint's state does not allow, with the reason to show."""


# --- the rules (pure) -----------------------------------------------------------------------

def add_working_days(start: datetime, days: int, zone: ZoneInfo) -> datetime:
    """*start* moved on by *days* working days (Mon-Fri) in *zone*, at the same local time;
    a complaint made at a weekend has its first working day's deadline on Monday."""
    local = start.astimezone(zone)
    day, added = local.date(), 0
    while added < days:
        day += timedelta(days=1)
        if day.weekday() < 5:
            added += 1
    moved = datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=zone)
    return moved.astimezone(start.tzinfo)


def deadlines(created_at: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """(contact the customer by, resolve by)."""
    return (add_working_days(created_at, CONTACT_WITHIN_WORKING_DAYS, zone),
            add_working_days(created_at, RESOLVE_WITHIN_WORKING_DAYS, zone))


def overdue_step(status: str, contact_due_at: datetime, resolve_due_at: datetime,
                 now: datetime) -> str | None:
    """The step that is late: ``contact`` (still new past its contact deadline),
    ``resolve`` (not resolved past its resolve deadline), or None."""
    if status == "new" and now > contact_due_at:
        return "contact"
    if status != "resolved" and now > resolve_due_at:
        return "resolve"
    return None


def check_step(status: str, to: str, answer: str | None, root_cause: str | None) -> None:
    """ComplaintRefused unless *to* is the next status and what it needs is given: a
    complaint is resolved with the answer given to the customer and its root cause."""
    if NEXT_STATUS.get(status) != to:
        raise ComplaintRefused(f"投诉状态为 {status}，不能改为 {to} a {status} complaint "
                               f"cannot become {to}")
    if to == "resolved" and not (answer or "").strip():
        raise ComplaintRefused("结案须填写给客户的答复 resolving needs the answer given")
    if to == "resolved" and root_cause not in COMPLAINT_ROOT_CAUSES:
        raise ComplaintRefused("结案须选择根本原因 resolving needs the root cause "
                               "(value, system or people)")


def blacklists_at_once(policy: str) -> bool:
    return policy == "immediately"


def decision_effect(decision: str, listed: bool, only_ours: bool) -> Effect:
    """What a supervisor's *decision* does to the number.  *listed*: the blacklist entry
    this complaint applied (or found) is still active; *only_ours*: it was applied for this
    complaint and every other complaint that applied it was decided not serious."""
    if decision not in COMPLAINT_DECISIONS:
        raise ComplaintRefused(f"unknown decision {decision!r}")
    if decision == "serious":
        return "already_listed" if listed else "blacklisted"
    if not listed:
        return "none"
    return "lifted" if only_ours else "kept"


def clean_text(text: str | None, what: str) -> str | None:
    value = (text or "").strip() or None
    if value is not None and len(value) > MAX_TEXT:
        raise ComplaintRefused(f"{what}最多 {MAX_TEXT} 字 at most {MAX_TEXT} characters")
    return value


# --- recording a complaint (in the caller's unit of work) -----------------------------------

@dataclass(frozen=True)
class Recorded:
    complaint: Complaint
    created: bool  # False: the call's complaint was already recorded


def record_complaint(session: Session, contact: Contact, campaign: Campaign, *,
                     source: str, words: str, by: str, at: datetime,
                     call_id: str | None = None, severity: str = DEFAULT_SEVERITY,
                     actor: str | None = None) -> Recorded:
    """Record a complaint (once per call), with its deadlines in the campaign's time zone,
    and blacklist the number at once where the campaign's policy says so.  Audited as
    ``complaint.recorded``."""
    repo = ComplaintRepo(session)
    if call_id is not None and (existing := repo.of_call(call_id)) is not None:
        return Recorded(existing, False)
    if severity not in COMPLAINT_SEVERITIES:
        raise ComplaintRefused(f"unknown severity {severity!r}")
    defn = definition_or_none(campaign)
    zone = defn.zone if defn is not None else ZoneInfo("Asia/Shanghai")
    policy = defn.complaints.blacklist if defn is not None else "immediately"
    contact_due, resolve_due = deadlines(at, zone)
    complaint = repo.add(Complaint(
        campaign_id=campaign.id, contact_id=contact.id, call_id=call_id, source=source,
        words=(clean_text(words, "投诉内容") or "（未记录 not recorded）"), severity=severity,
        status="new", created_at=at, created_by=by, contact_due_at=contact_due,
        resolve_due_at=resolve_due, blacklist_policy=policy))
    if blacklists_at_once(policy):
        _blacklist(session, complaint, contact, "客户投诉" if source != "call"
                   else "客户在通话中投诉", by, at)
    AuditRepo(session).record(actor or f"user:{by}", "complaint.recorded",
                              f"complaint:{complaint.id}", at=at, call_id=call_id,
                              source=source, severity=severity, policy=policy,
                              phone=mask_phone(contact.phone),
                              blacklist_entry_id=complaint.blacklist_entry_id)
    log.info("complaint.recorded id=%s call_id=%s source=%s policy=%s phone=%s",
             complaint.id, call_id, source, policy, mask_phone(contact.phone))
    return Recorded(complaint, True)


def _blacklist(session: Session, complaint: Complaint, contact: Contact, reason: str,
               by: str, at: datetime) -> None:
    entry = DncRepo(session).add(contact.phone, "blacklist", reason, "complaint", by,
                                 call_id=complaint.call_id, at=at)
    complaint.blacklist_entry_id = entry.id


def complaint_words(session: Session, call_id: str, said: str = "") -> str:
    """What the customer said: the last customer turn of the call with a complaint's own
    words (the bot may have confirmed it back, so the last turn can be a bare "是的"), else
    *said*, else the last customer turn."""
    turns = session.scalars(select(TranscriptTurn.text).where(
        TranscriptTurn.call_id == call_id, TranscriptTurn.speaker == "customer")
        .order_by(TranscriptTurn.seq.desc())).all()
    return next((t for t in turns if COMPLAINT_WORDS.search(t)), None) \
        or said.strip() or (turns[0] if turns else "")


def record_call_complaint(session: Session, call: Call, contact: Contact, said: str,
                          at: datetime) -> Recorded:
    """The bot heard a complaint on *call* (the hook in actions/actions.py)."""
    campaign = session.get(Campaign, call.campaign_id)
    assert campaign is not None  # foreign key
    return record_complaint(session, contact, campaign, source="call", call_id=call.id,
                            words=complaint_words(session, call.id, said), by=BOT, at=at,
                            actor="service:bot")


def record_desk_complaint(session: Session, escalation: Escalation, username: str,
                          notes: str | None, at: datetime) -> Recorded:
    """An agent's ``complaint`` disposition (bot/console/dispositions.py): the notes are
    what the customer said, as the agent wrote it down."""
    contact = session.get(Contact, escalation.contact_id)
    campaign = session.get(Campaign, escalation.campaign_id)
    assert contact is not None and campaign is not None  # foreign keys
    return record_complaint(session, contact, campaign, source="agent",
                            call_id=escalation.call_id, by=username, at=at,
                            words=notes or "坐席记录的投诉 complaint recorded by the agent")


# --- handling it (console users; the caller's unit of work) ---------------------------------

def advance(session: Session, complaint_id: int, to: str, by: str, at: datetime, *,
            answer: str | None = None, root_cause: str | None = None) -> Complaint:
    """Move a complaint to its next status, with who and when (and for ``resolved`` the
    answer and root cause); the answer may also be given when contacting."""
    complaint = ComplaintRepo(session).get(complaint_id, for_update=True)
    answer = clean_text(answer, "答复") or complaint.answer
    check_step(complaint.status, to, answer, root_cause)
    before = complaint.status
    complaint.status, complaint.answer = to, answer
    if to == "contacted":
        complaint.contacted_at, complaint.contacted_by = at, by
    else:
        complaint.resolved_at, complaint.resolved_by = at, by
        complaint.root_cause = root_cause
    session.flush()
    AuditRepo(session).record(f"user:{by}", f"complaint.{to}", f"complaint:{complaint.id}",
                              at=at, before=before, answer=answer, root_cause=root_cause,
                              late=overdue_step(before, complaint.contact_due_at,
                                                complaint.resolve_due_at, at))
    return complaint


def set_severity(session: Session, complaint_id: int, severity: str, by: str,
                 at: datetime) -> Complaint:
    if severity not in COMPLAINT_SEVERITIES:
        raise ComplaintRefused(f"unknown severity {severity!r}")
    complaint = ComplaintRepo(session).get(complaint_id, for_update=True)
    if complaint.severity != severity:
        AuditRepo(session).record(f"user:{by}", "complaint.severity",
                                  f"complaint:{complaint.id}", at=at,
                                  before=complaint.severity, after=severity)
        complaint.severity = severity
        session.flush()
    return complaint


def decide(session: Session, complaint_id: int, decision: str, by: str,
           at: datetime) -> Effect:
    """A supervisor's decision whether the complaint was serious enough to blacklist the
    number, recorded with who and when (a later decision replaces it, audited each time).
    Serious: blacklisted through DncRepo (a no-op when already listed).  Not serious: the
    blacklist this complaint applied is lifted when no one else's stands (`decision_effect`),
    otherwise kept and said so."""
    complaint = ComplaintRepo(session).get(complaint_id, for_update=True)
    contact = session.get(Contact, complaint.contact_id)
    assert contact is not None  # foreign key
    entry = (session.get(DncEntry, complaint.blacklist_entry_id)
             if complaint.blacklist_entry_id is not None else None)
    listed = entry is not None and entry.removed_at is None
    others = ([c for c in ComplaintRepo(session).sharing_entry(entry.id)
               if c.id != complaint.id and c.decision != "not_serious"]
              if entry is not None else [])
    ours = (entry is not None and entry.source == "complaint"
            and entry.call_id == complaint.call_id and not others)
    effect = decision_effect(decision, listed, ours)
    before = complaint.decision
    complaint.decision, complaint.decided_by, complaint.decided_at = decision, by, at
    if effect == "blacklisted":
        _blacklist(session, complaint, contact, f"投诉经主管认定为严重 complaint "
                   f"{complaint.id} decided serious by {by}", by, at)
    elif effect == "lifted":
        DncRepo(session).remove(contact.phone, by, f"投诉经主管认定为不严重 complaint "
                                f"{complaint.id} decided not serious", kind="blacklist", at=at)
    session.flush()
    AuditRepo(session).record(f"user:{by}", "complaint.decided", f"complaint:{complaint.id}",
                              at=at, decision=decision, before=before, effect=effect,
                              policy=complaint.blacklist_policy,
                              phone=mask_phone(contact.phone),
                              blacklist_entry_id=complaint.blacklist_entry_id)
    log.info("complaint.decided id=%s decision=%s effect=%s by=%s", complaint.id, decision,
             effect, by)
    return effect


# --- for the console and the command line (units of work of their own) ----------------------

def _row(session: Session, c: Complaint, now: datetime) -> dict[str, Any]:
    contact = session.get(Contact, c.contact_id)
    campaign = session.get(Campaign, c.campaign_id)
    return {
        "id": c.id, "campaign": campaign.name if campaign else "", "call_id": c.call_id,
        "phone": mask_phone(contact.phone) if contact else "", "source": c.source,
        "words": mask_text(c.words), "severity": c.severity, "status": c.status,
        "created_at": c.created_at, "created_by": c.created_by,
        "contact_due_at": c.contact_due_at, "resolve_due_at": c.resolve_due_at,
        "contacted_at": c.contacted_at, "contacted_by": c.contacted_by,
        "resolved_at": c.resolved_at, "resolved_by": c.resolved_by,
        "answer": mask_text(c.answer) if c.answer else None, "root_cause": c.root_cause,
        "policy": c.blacklist_policy, "decision": c.decision, "decided_by": c.decided_by,
        "decided_at": c.decided_at,
        "overdue": overdue_step(c.status, c.contact_due_at, c.resolve_due_at, now)}


def complaint_list(db: Database, now: datetime, status: str | None = None,
                   only_overdue: bool = False) -> list[dict[str, Any]]:
    with db.session() as session:
        return [_row(session, c, now) for c in ComplaintRepo(session).listed(
            now, status=status, only_overdue=only_overdue)]


EXCERPT_BEFORE, EXCERPT_AFTER = 3, 2  # turns shown around the complaint's words


def complaint_detail(db: Database, complaint_id: int, now: datetime) -> dict[str, Any]:
    """One complaint (NotFound otherwise) with the transcript around the customer's words,
    the blacklist entry's state and the handling history from the audit log."""
    with db.session() as session:
        c = ComplaintRepo(session).get(complaint_id)
        detail = _row(session, c, now)
        turns = [] if c.call_id is None else list(session.scalars(
            select(TranscriptTurn).where(TranscriptTurn.call_id == c.call_id)
            .order_by(TranscriptTurn.seq)))
        at = next((i for i in range(len(turns) - 1, -1, -1) if turns[i].text == c.words),
                  max(len(turns) - EXCERPT_AFTER - 1, 0))
        detail["excerpt"] = [
            {"seq": t.seq, "speaker": t.speaker, "text": mask_text(t.text),
             "said": t.text == c.words}
            for t in turns[max(at - EXCERPT_BEFORE, 0):at + EXCERPT_AFTER + 1]]
        entry = (session.get(DncEntry, c.blacklist_entry_id)
                 if c.blacklist_entry_id is not None else None)
        detail["blacklist"] = None if entry is None else {
            "id": entry.id, "source": entry.source, "added_by": entry.added_by,
            "created_at": entry.created_at, "removed_at": entry.removed_at,
            "removed_by": entry.removed_by}
        detail["history"] = [
            {"at": e.at, "actor": e.actor, "action": e.action, "note": _note(e.detail)}
            for e in AuditRepo(session).entries(subject=f"complaint:{c.id}")]
        return detail


def _note(detail: dict[str, Any]) -> str:
    """An audit entry of a complaint in a few words for its page."""
    if "decision" in detail:
        return f"{detail['decision']} ({detail.get('effect')})"
    if "after" in detail:
        return f"{detail.get('before')} → {detail['after']}"
    return "late: " + str(detail["late"]) if detail.get("late") else ""


def enter_complaint(db: Database, by: str, at: datetime, *, words: str,
                    severity: str = DEFAULT_SEVERITY, call_id: str | None = None,
                    phone: str | None = None) -> Recorded:
    """A supervisor enters a complaint: about a call (its customer), or a customer found by
    phone number (their latest contact record)."""
    with db.session(write=True) as session:
        if call_id:
            call = session.get(Call, call_id)
            if call is None:
                raise ComplaintRefused(f"没有这通电话 no call {call_id}")
            contact = session.get(Contact, call.contact_id)
        elif phone:
            try:
                number = normalize_phone(phone)
            except ValueError as exc:
                raise ComplaintRefused(f"号码无效 {exc}") from None
            contact = session.scalar(select(Contact).where(Contact.phone == number)
                                     .order_by(Contact.id.desc()).limit(1))
            if contact is None:
                raise ComplaintRefused("名单中没有这个号码 no contact has this number")
        else:
            raise ComplaintRefused("请填写通话编号或号码 give the call or the number")
        if not clean_text(words, "投诉内容"):
            raise ComplaintRefused("请填写客户的原话 give what the customer said")
        assert contact is not None  # foreign key
        campaign = session.get(Campaign, contact.campaign_id)
        assert campaign is not None
        return record_complaint(session, contact, campaign, source="supervisor", words=words,
                                by=by, at=at, call_id=call_id or None, severity=severity)


def change(db: Database, complaint_id: int, by: str, at: datetime, *, step: str | None = None,
           answer: str | None = None, root_cause: str | None = None,
           severity: str | None = None, decision: str | None = None) -> Effect | None:
    """One change from the detail page, in one unit of work."""
    with db.session(write=True) as session:
        if severity is not None:
            set_severity(session, complaint_id, severity, by, at)
        if step is not None:
            advance(session, complaint_id, step, by, at, answer=answer, root_cause=root_cause)
        return decide(session, complaint_id, decision, by, at) if decision else None
