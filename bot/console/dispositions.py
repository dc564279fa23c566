"""After the call: the disposition an agent records (and may change), audited, and the
callback it schedules.  Blocking database work for `Console.run`, each save in one unit of
work: the disposition (bot/agents/desk.py ends the after-call work with it), its audit
entry and, for ``callback``, the customer's callback row.

- ``disposition.recorded``: the first record, with the call, the disposition, the callback
  time and the after-call work it took.
- ``disposition.changed``: a later change by the same agent, with the old values beside the
  new ones.
- A ``callback`` disposition schedules a ``customer_request`` callback of the contact at
  the time given (moved into the campaign's next calling window) and makes the contact due
  then, so the dialer calls back as it does when the customer asks the bot; changing the
  time moves it, changing the disposition away from ``callback`` cancels it.  A number on
  the do-not-call list gets no callback: the disposition is refused and says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.agents import desk
from bot.campaigns.compliance import clamp_to_window
from bot.campaigns.registry import definition_or_none
from bot.console.desk_state import in_write, presence_message
from bot.console.hub import Message
from bot.privacy import mask_phone
from bot.qa import complaints
from bot.store import AuditRepo, CallbackRepo, Database, DncRepo, EscalationRepo
from bot.store.ledger import ConsentLedger
from bot.store.models import Campaign, Contact, Disposition, Escalation
from bot.store.repos.agent_desk import DispositionRepo
from bot.store.repos.common import NotFound
from bot.store.vocab import DISPOSITIONS

MAX_NOTES = 2000
# What the desk and the figures page say after a sale the ledger holds no consent for
# (``?done=unproven_sale``), as a warning.
UNPROVEN_SALE = "unproven_sale"
UNPROVEN_SALE_NOTICE = ("处理结果已保存。注意：同意账本中没有这位客户的确认——"
                        "成交须交回机器人复述并经客户确认。"
                        "Saved. Note: the consent ledger holds no confirmation from this "
                        "customer; a sale needs the bot's read-back and the customer's "
                        "confirmation.")
CALLBACK = "callback"
_PHONE_LIKE = re.compile(r"\d{7,}")


@dataclass(frozen=True)
class DispositionForm:
    escalation_id: int
    disposition: str
    notes: str | None
    callback_at: datetime | None


def parse_form(form: Mapping[str, Any], zone: ZoneInfo) -> DispositionForm:
    """The disposition form's fields; ``ValueError`` saying what is wrong.  The callback
    time is the page's local time (a ``datetime-local`` field) in *zone*."""
    try:
        escalation_id = int(str(form.get("escalation_id", "")))
    except ValueError:
        raise ValueError("表单缺少通话 the form does not name the call") from None
    disposition = str(form.get("disposition", ""))
    if disposition not in DISPOSITIONS:
        raise ValueError("请选择处理结果 choose how the call ended")
    notes = str(form.get("notes", "")).strip() or None
    if notes is not None and len(notes) > MAX_NOTES:
        raise ValueError(f"备注最多 {MAX_NOTES} 字 notes are at most {MAX_NOTES} characters")
    text = str(form.get("callback_at", "")).strip()
    callback_at = None
    if disposition == CALLBACK:
        if not text:
            raise ValueError("约定回电须填写时间 a callback needs its time")
        try:
            local = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"回电时间无效 not a time: {text!r}") from None
        callback_at = (local.replace(tzinfo=zone) if local.tzinfo is None else local)
    return DispositionForm(escalation_id, disposition, notes, callback_at)


@dataclass(frozen=True)
class Saved:
    disposition: str
    changed: bool  # an earlier record was changed
    callback_due: datetime | None  # the callback scheduled (moved into a calling window)
    presence: Message | None  # the agent's presence after it (for the hub)
    unproven_sale: bool = False  # a sale the ledger holds no consent for


def save(db: Database, agent_id: int, username: str, form: DispositionForm,
         at: datetime) -> Saved:
    """Record the disposition of an escalation the agent took, or change the one they
    recorded; ``DeskRefused`` or ``ValueError`` saying why not."""
    def work(session: Session) -> Saved:
        try:
            escalation = EscalationRepo(session).get(form.escalation_id)
        except NotFound:
            raise desk.DeskRefused(f"没有这通转接 no escalation {form.escalation_id}") from None
        actor = f"user:{username}"
        proven = escalation.call_id in ConsentLedger(session).consented_calls(
            [escalation.call_id])
        existing = DispositionRepo(session).of_escalation(escalation.id)
        if existing is None:
            row = desk.record_disposition(session, escalation.id, agent_id, form.disposition,
                                          at, notes=form.notes, callback_at=form.callback_at)
            AuditRepo(session).record(actor, "disposition.recorded", escalation.call_id, at=at,
                                      **_values(row), wrap_up_s=row.wrap_up_s,
                                      escalation_id=escalation.id, ledger_consent=proven)
            before = None
        else:
            if existing.agent_id != agent_id:
                raise desk.DeskRefused("这通电话由其他坐席处理 another agent took this call")
            old = _values(existing)
            if (existing.disposition, existing.notes, existing.callback_at) == (
                    form.disposition, form.notes, form.callback_at):  # sent twice: no change
                return Saved(existing.disposition, True, None,
                             presence_message(session, agent_id))
            DispositionRepo(session).amend(existing, form.disposition, notes=form.notes,
                                           callback_at=form.callback_at, at=at)
            row, before = existing, old
            AuditRepo(session).record(actor, "disposition.changed", escalation.call_id, at=at,
                                      escalation_id=escalation.id, before=old,
                                      after=_values(row), ledger_consent=proven)
        due = _callbacks(session, escalation, row, before, username)
        if row.disposition == "complaint":  # the complaint's record (once per call)
            complaints.record_desk_complaint(session, escalation, username, row.notes, at)
        return Saved(row.disposition, before is not None, due,
                     presence_message(session, agent_id),
                     unproven_sale=row.disposition == "sale" and not proven)
    return in_write(db, work)


def _values(row: Disposition) -> dict[str, Any]:
    """A disposition as the audit log keeps it: numbers in the notes masked."""
    notes = _PHONE_LIKE.sub(lambda m: mask_phone(m.group()), row.notes) if row.notes else None
    return {"disposition": row.disposition, "notes": notes,
            "callback_at": row.callback_at.isoformat() if row.callback_at else None}


def _callbacks(session: Session, escalation: Escalation, row: Disposition,
               before: dict[str, Any] | None, username: str) -> datetime | None:
    """Cancel the callback an earlier ``callback`` disposition scheduled, schedule the new
    one; when the new one is due."""
    repo = CallbackRepo(session)
    if before is not None and before["disposition"] == CALLBACK:
        for callback in repo.pending_for(escalation.contact_id, kinds=("customer_request",)):
            if callback.call_id == escalation.call_id:
                callback.status = "cancelled"
        session.flush()
    if row.disposition != CALLBACK or row.callback_at is None:
        return None
    contact = session.scalar(select(Contact).where(Contact.id == escalation.contact_id)
                             .with_for_update())
    campaign = session.get(Campaign, escalation.campaign_id)
    assert contact is not None and campaign is not None  # foreign keys
    if DncRepo(session).is_blocked(contact.phone):
        raise desk.DeskRefused("该号码在免打扰名单上，不能约定回电 the number is on the "
                               "do-not-call list: no callback can be made")
    defn = definition_or_none(campaign)
    due = (clamp_to_window(defn, row.callback_at) if defn is not None else None) \
        or row.callback_at
    repo.schedule(campaign.id, contact.id, due, "customer_request", call_id=escalation.call_id,
                  requested_text=f"坐席 {username} 约定回电" + (f": {row.notes}" if row.notes
                                                            else ""))
    if contact.status != "in_progress":  # a contact on a call finds it when that call ends
        contact.status, contact.next_attempt_at = "pending", due
    return due
