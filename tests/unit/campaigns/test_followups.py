"""Follow-ups after a call ends: customer callbacks, second confirmation of trials, and
trial extension when the customer cannot be reached (QA follow-ups: test_qa.py)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.campaigns.dialer import Dialer
from bot.store import Callback, CallbackRepo, Contact, ContactRepo, Database, EscalationRepo
from bot.store.models import Escalation

from .test_dialer import (
    MON,
    NOW,
    add_campaign,
    add_contacts,
    contact,
    gateway_result,
    run_call,
    set_contact,
    sh,
)


def callbacks(db: Database, contact_id: int) -> list[Callback]:
    with db.session() as session:
        return list(session.scalars(select(Callback).where(Callback.contact_id == contact_id)
                                    .order_by(Callback.id)))


def sc_contact(db: Database, campaign_id: int, phone: str) -> Contact:
    with db.session() as session:
        found = ContactRepo(session).by_phone(campaign_id, phone)
        assert found is not None
        return found


# --- customer-requested callbacks ------------------------------------------------------------


def request_callback(db: Database, dialer: Dialer, call_id: str, campaign_id: int,
                     contact_id: int, due: datetime, at: datetime = NOW) -> None:
    """The customer says "下午再打": the actions end the call and schedule the callback."""
    gateway_result(db, call_id, "answered", "callback_requested", at=at)
    with db.session() as session:
        CallbackRepo(session).schedule(campaign_id, contact_id, due, "customer_request",
                                       call_id=call_id, requested_text="中午十二点半再打吧")
    dialer.complete(call_id, at)


def test_callback_is_due_at_the_requested_time_clamped_and_not_counted(db: Database) -> None:
    cid = add_campaign(db, dialing={"max_attempts": 2})
    [contact_id] = add_contacts(db, cid, ["13812345678"])
    dialer = Dialer(db, "gw")
    [job] = dialer.claim(NOW, capacity=1)
    request_callback(db, dialer, job.call_id, cid, contact_id, sh(MON, 12, 30))
    waiting = contact(db, contact_id)
    assert (waiting.status, waiting.next_attempt_at) == ("pending", sh(MON, 14))  # lunch
    assert dialer.claim(sh(MON, 13, 59), capacity=1) == []
    [back] = dialer.claim(sh(MON, 14), capacity=1)
    [requested] = callbacks(db, contact_id)
    assert (back.kind, back.callback_id, back.attempt_no) == ("callback", requested.id, 2)
    assert contact(db, contact_id).attempts == 1  # the callback does not count
    run_call(db, dialer, back, "no_answer", at=sh(MON, 14))
    assert [c.status for c in callbacks(db, contact_id)] == ["done"]
    after = contact(db, contact_id)  # one counted attempt of two: retried as usual
    assert (after.status, after.next_attempt_at) == ("pending", sh(MON, 16))


def test_callback_is_dialled_even_after_the_last_attempt(db: Database) -> None:
    cid = add_campaign(db, dialing={"max_attempts": 1})
    [contact_id] = add_contacts(db, cid, ["13812345678"])
    dialer = Dialer(db, "gw")
    [job] = dialer.claim(NOW, capacity=1)
    request_callback(db, dialer, job.call_id, cid, contact_id, sh(MON, 16))
    [back] = dialer.claim(sh(MON, 16), capacity=1)
    assert back.kind == "callback"
    run_call(db, dialer, back, "busy", at=sh(MON, 16))
    assert contact(db, contact_id).status == "failed"  # and then the cap holds


def test_a_refusal_cancels_the_callbacks_asked_for_before(db: Database) -> None:
    """A no is a no: the customer asked to be called at 12:30 and again tomorrow, then
    declined on the 12:30 call; tomorrow's callback is not dialled."""
    cid = add_campaign(db)
    [contact_id] = add_contacts(db, cid, ["13812345678"])
    dialer = Dialer(db, "gw")
    [job] = dialer.claim(NOW, capacity=1)
    with db.session() as session:
        CallbackRepo(session).schedule(cid, contact_id, sh(MON, 12, 30) + timedelta(days=1),
                                       "customer_request", call_id=job.call_id)
    request_callback(db, dialer, job.call_id, cid, contact_id, sh(MON, 12, 30))
    [back] = dialer.claim(sh(MON, 14), capacity=1)
    run_call(db, dialer, back, "answered", "declined", at=sh(MON, 14),
             decline_reason="not_needed")
    assert [c.status for c in callbacks(db, contact_id)] == ["cancelled", "done"]
    assert (contact(db, contact_id).status, contact(db, contact_id).next_attempt_at) == (
        "done", None)
    assert dialer.claim(sh(MON, 14) + timedelta(days=7), capacity=1) == []


def escalate(db: Database, dialer: Dialer, job: Any, status: str) -> None:
    """The customer asked for a person; the escalation ended in *status*."""
    gateway_result(db, job.call_id, "answered", "escalated")
    with db.session() as session:
        escalation = EscalationRepo(session).add(job.call_id, job.campaign_id, job.contact_id,
                                                 "request_human", {})
        EscalationRepo(session).set_status(escalation, status)
    dialer.complete(job.call_id, NOW)


@pytest.mark.parametrize("status", ["failed", "timed_out", "declined", "abandoned"])
def test_a_customer_nobody_took_gets_the_promised_callback(db: Database, status: str) -> None:
    cid = add_campaign(db)
    [contact_id] = add_contacts(db, cid, ["13812345678"])
    dialer = Dialer(db, "gw")
    [job] = dialer.claim(NOW, capacity=1)
    escalate(db, dialer, job, status)
    [promised] = callbacks(db, contact_id)
    assert (promised.kind, promised.status, promised.call_id) == (
        "customer_request", "pending", job.call_id)
    assert promised.due_at == NOW + timedelta(hours=1)
    assert contact(db, contact_id).status == "pending"
    with db.session() as session:
        assert [e.status for e in session.scalars(select(Escalation))] == ["callback"]
    [back] = dialer.claim(NOW + timedelta(hours=1), capacity=1)
    assert (back.kind, back.callback_id) == ("callback", promised.id)
    # Nobody takes the callback either: the promise was kept once, the contact ends.
    escalate(db, dialer, back, status)
    assert [c.status for c in callbacks(db, contact_id)] == ["done"]
    assert contact(db, contact_id).status == "done"


@pytest.mark.parametrize("status", ["bridged", "connected"])
def test_a_customer_an_agent_took_is_not_called_back(db: Database, status: str) -> None:
    cid = add_campaign(db)
    [contact_id] = add_contacts(db, cid, ["13812345678"])
    dialer = Dialer(db, "gw")
    [job] = dialer.claim(NOW, capacity=1)
    escalate(db, dialer, job, status)
    assert callbacks(db, contact_id) == []
    assert contact(db, contact_id).status == "done"


def test_a_customer_who_keeps_asking_is_not_called_forever(db: Database) -> None:
    cid = add_campaign(db, dialing={"max_attempts": 2})
    [contact_id] = add_contacts(db, cid, ["13812345678"])
    dialer = Dialer(db, "gw")
    kinds = []
    # every call ends with "call me back", for a time that has already come
    while jobs := dialer.claim(NOW, capacity=1):
        [job] = jobs
        kinds.append((job.kind, contact(db, contact_id).attempts))
        request_callback(db, dialer, job.call_id, cid, contact_id, NOW - timedelta(minutes=1))
        assert len(kinds) < 10, kinds
    # the first dial, two free callbacks (max_attempts of them), then one that counts and
    # uses up the attempts
    assert kinds == [("first", 1), ("callback", 1), ("callback", 1), ("callback", 2)]
    assert contact(db, contact_id).status == "failed"


# --- second confirmation -----------------------------------------------------------------------


def sale_and_confirm(db: Database, confirm: dict[str, Any] | None = None,
                     **sale: Any) -> tuple[int, int]:
    confirm_id = add_campaign(db, "confirm", "second_confirmation", **(confirm or {}))
    sale_id = add_campaign(db, "sale", follow_ups={"second_confirmation": "confirm",
                                                   "confirm_days_before_end": 3}, **sale)
    return sale_id, confirm_id


def test_a_trial_sold_gets_a_second_confirmation_contact(db: Database) -> None:
    sale_id, confirm_id = sale_and_confirm(db)
    with db.session() as session:
        ContactRepo(session).add(sale_id, "13812345678", name="张三", gender="male", age=40,
                                 region="广州", id_last4="123X", fields={"plan": "A套餐"})
    dialer = Dialer(db, "gw")
    [job] = dialer.claim(NOW, capacity=1)
    gateway_result(db, job.call_id, "answered", "consented", verified=True, pitched=True)
    done = dialer.complete(job.call_id, NOW)
    assert done.contact_status == "done" and done.grade == "A"
    assert any("second_confirmation" in note for note in done.follow_ups)
    confirm = sc_contact(db, confirm_id, "13812345678")
    assert (confirm.name, confirm.gender, confirm.age, confirm.region) == (
        "张三", "male", 40, "广州")
    assert confirm.fields["trial_end"] == "2030-06-05"  # sold 2030-05-06 + 30 days
    assert confirm.fields["plan"] == "A套餐" and confirm.fields["origin_call_id"] == job.call_id
    with db.session() as session:
        assert ContactRepo(session).check_id_last4(confirm, "123x") is True
    due = sh(date(2030, 6, 2), 9)  # 3 days before the end, first window
    assert (confirm.status, confirm.attempts, confirm.next_attempt_at) == ("pending", 0, due)
    [scheduled] = callbacks(db, confirm.id)
    assert (scheduled.kind, scheduled.due_at, scheduled.call_id) == (
        "second_confirmation", due, job.call_id)
    assert dialer.claim(due - timedelta(minutes=1), capacity=5) == []
    [second] = dialer.claim(due, capacity=5)
    assert (second.campaign_id, second.kind, second.callback_id) == (
        confirm_id, "second_confirmation", scheduled.id)


def test_second_confirmation_uses_the_contacts_trial_end(db: Database) -> None:
    sale_id, confirm_id = sale_and_confirm(db)
    add_contacts(db, sale_id, ["13800000001"], fields={"trial_end": "2030-05-20"})
    add_contacts(db, sale_id, ["13800000002"], fields={"trial_end": "2030-05-07"})
    dialer = Dialer(db, "gw")
    for job in dialer.claim(NOW, capacity=5):
        run_call(db, dialer, job, "answered", "consented")
    later = sc_contact(db, confirm_id, "13800000001")
    assert later.next_attempt_at == sh(date(2030, 5, 17), 9)
    soon = sc_contact(db, confirm_id, "13800000002")
    assert soon.next_attempt_at == NOW  # the trial ends before 3 days are left: at once


def test_second_confirmation_updates_an_existing_contact(db: Database) -> None:
    sale_id, confirm_id = sale_and_confirm(db)
    [old] = add_contacts(db, confirm_id, ["13812345678"], fields={"trial_end": "2030-01-01",
                                                                  "note": "上次"})
    set_contact(db, old, status="done", attempts=3)
    with db.session() as session:
        CallbackRepo(session).schedule(confirm_id, old, NOW + timedelta(days=99),
                                       "trial_extension")
    add_contacts(db, sale_id, ["13812345678"])
    dialer = Dialer(db, "gw")
    [job] = dialer.claim(NOW, capacity=5)
    run_call(db, dialer, job, "answered", "consented")
    updated = contact(db, old)
    assert (updated.status, updated.attempts) == ("pending", 0)
    assert updated.fields["trial_end"] == "2030-06-05" and updated.fields["note"] == "上次"
    assert [(c.kind, c.status) for c in callbacks(db, old)] == [
        ("trial_extension", "cancelled"), ("second_confirmation", "pending")]


def test_missing_second_confirmation_campaign_is_reported(db: Database) -> None:
    sale_id = add_campaign(db, "sale", follow_ups={"second_confirmation": "nowhere"})
    [contact_id] = add_contacts(db, sale_id, ["13812345678"])
    dialer = Dialer(db, "gw")
    [job] = dialer.claim(NOW, capacity=1)
    gateway_result(db, job.call_id, "answered", "consented")
    done = dialer.complete(job.call_id, NOW)
    assert done.contact_status == "done"
    assert done.follow_ups == ("second_confirmation: campaign nowhere missing",)
    assert contact(db, contact_id).status == "done"


def test_no_second_confirmation_without_a_trial_or_consent(db: Database) -> None:
    sale_id, confirm_id = sale_and_confirm(db)
    add_contacts(db, sale_id, ["13800000001"])
    dialer = Dialer(db, "gw")
    [job] = dialer.claim(NOW, capacity=1)
    run_call(db, dialer, job, "answered", "declined", decline_reason="too_expensive")
    with db.session() as session:
        assert ContactRepo(session).list(confirm_id) == []


# --- trial extension ----------------------------------------------------------------------


def test_powered_off_customer_gets_the_trial_extended(db: Database) -> None:
    confirm_id = add_campaign(db, "confirm", "second_confirmation")
    [contact_id] = add_contacts(db, confirm_id, ["13812345678"],
                                fields={"trial_end": "2030-05-09"})
    dialer = Dialer(db, "gw")
    [job] = dialer.claim(NOW, capacity=1)
    gateway_result(db, job.call_id, "powered_off")
    result = dialer.complete(job.call_id, NOW)
    assert result.follow_ups and result.follow_ups[0].startswith("trial_extension")
    extended = contact(db, contact_id)
    assert extended.fields["trial_end"] == "2030-06-08"  # one more period of 30 days
    assert extended.fields["trial_extensions"] == 1
    due = sh(date(2030, 6, 5), 9)
    assert (extended.status, extended.attempts, extended.next_attempt_at) == (
        "pending", 0, due)
    [scheduled] = callbacks(db, contact_id)
    assert (scheduled.kind, scheduled.due_at, scheduled.status) == (
        "trial_extension", due, "pending")
    [again] = dialer.claim(due, capacity=1)
    assert (again.kind, again.callback_id) == ("trial_extension", scheduled.id)


def test_no_answer_extends_only_after_the_last_attempt(db: Database) -> None:
    confirm_id = add_campaign(db, "confirm", "second_confirmation",
                              dialing={"max_attempts": 2})
    [contact_id] = add_contacts(db, confirm_id, ["13812345678"],
                                fields={"trial_end": "2030-05-09"})
    dialer = Dialer(db, "gw")
    [first] = dialer.claim(NOW, capacity=1)
    run_call(db, dialer, first, "no_answer")
    retry = contact(db, contact_id)
    assert (retry.status, retry.next_attempt_at) == ("pending", sh(MON, 14))
    assert retry.fields["trial_end"] == "2030-05-09"
    [second] = dialer.claim(sh(MON, 14), capacity=1)
    run_call(db, dialer, second, "busy", at=sh(MON, 14))
    extended = contact(db, contact_id)
    assert extended.fields["trial_end"] == "2030-06-08"
    assert extended.status == "pending" and extended.attempts == 0
    with db.session() as session:
        extensions = session.scalars(select(Callback).where(
            Callback.kind == "trial_extension")).all()
        assert len(extensions) == 1


def test_an_answered_second_confirmation_is_not_extended(db: Database) -> None:
    confirm_id = add_campaign(db, "confirm", "second_confirmation")
    [contact_id] = add_contacts(db, confirm_id, ["13812345678"],
                                fields={"trial_end": "2030-05-09"})
    dialer = Dialer(db, "gw")
    [job] = dialer.claim(NOW, capacity=1)
    run_call(db, dialer, job, "answered", "declined", confirmation_result="cancel")
    assert contact(db, contact_id).status == "done"
    assert contact(db, contact_id).fields["trial_end"] == "2030-05-09"
    assert callbacks(db, contact_id) == []
