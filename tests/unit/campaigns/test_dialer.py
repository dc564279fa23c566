"""The dialer on real databases: claims, order, rules, leases, restarts, several processes."""

from __future__ import annotations

import json
import multiprocessing
import time
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot import callrecord
from bot.campaigns.dialer import CallJob, Dialer
from bot.campaigns.dryrun import check_campaign
from bot.campaigns.registry import (
    CampaignControlError,
    pause_campaign,
    resume_campaign,
    save_campaign,
    start_campaign,
)
from bot.cli import main
from bot.store import (
    Call,
    CallAttempt,
    CallbackRepo,
    CallRepo,
    Campaign,
    Contact,
    ContactRepo,
    Database,
    DncEntry,
    DncRepo,
    PhoneLock,
)

from .test_compliance import defn

SH = ZoneInfo("Asia/Shanghai")
MON = date(2030, 5, 6)
NOW = datetime(2030, 5, 6, 10, 0, tzinfo=SH)


def sh(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=SH)


# --- helpers (test_followups.py, test_qa.py and test_dryrun.py use them too) ----------------


def add_campaign(db: Database, name: str = "m", type: str = "marketing",
                 status: str = "running", **extra: Any) -> int:
    campaign_id = save_campaign(db, defn(type, name=name, **extra))
    with db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        campaign.status = status
    return campaign_id


def add_contacts(db: Database, campaign_id: int, phones: list[str], **kw: Any) -> list[int]:
    with db.session() as session:
        repo = ContactRepo(session)
        return [repo.add(campaign_id, phone, **kw).id for phone in phones]


def phones(n: int, start: int = 0) -> list[str]:
    return [f"1380000{i:04d}" for i in range(start, start + n)]


def gateway_result(db: Database, call_id: str, dial: str = "answered",
                   outcome: str | None = None, at: datetime = NOW, **flags: Any) -> None:
    """What the gateway and the actions store for a call before it is completed."""
    with db.session() as session:
        callrecord.record_dial_result(session, call_id, dial, at)
        if dial == "answered" and outcome is not None:
            CallRepo(session).record_outcome(call_id, outcome, **flags)
            callrecord.close(session, call_id, ended_at=at, ended_by="bot")


def run_call(db: Database, dialer: Dialer, job: CallJob, dial: str = "answered",
             outcome: str | None = None, at: datetime = NOW, **flags: Any) -> None:
    gateway_result(db, job.call_id, dial, outcome, at, **flags)
    dialer.complete(job.call_id, at)
    on_call(db)


def set_contact(db: Database, contact_id: int, **values: Any) -> None:
    with db.session() as session:
        found = session.get(Contact, contact_id)
        assert found is not None
        for name, value in values.items():
            setattr(found, name, value)


def contact(db: Database, contact_id: int) -> Contact:
    with db.session() as session:
        found = session.get(Contact, contact_id)
        assert found is not None
        return found


def attempt(db: Database, call_id: str) -> CallAttempt:
    with db.session() as session:
        found = CallRepo(session).get_attempt(call_id)
        assert found is not None
        return found


def on_call(db: Database) -> set[str]:
    """The numbers on a live call, after checking that the attempts' leases are the only
    record of it: every lease has its number's lock and its contact ``in_progress``, and no
    lock or ``in_progress`` contact is left without a lease."""
    with db.session() as session:
        leased = {(phone, call_id, contact_id) for phone, call_id, contact_id in session.execute(
            select(Contact.phone, CallAttempt.call_id, Contact.id)
            .join(CallAttempt, CallAttempt.contact_id == Contact.id)
            .where(CallAttempt.lease_expires_at.is_not(None)))}
        locked = {(phone, call_id) for phone, call_id in session.execute(
            select(PhoneLock.phone, PhoneLock.call_id))}
        in_progress = set(session.scalars(select(Contact.id)
                                          .where(Contact.status == "in_progress")))
    assert locked == {(phone, call_id) for phone, call_id, _ in leased}
    assert in_progress == {contact_id for _, _, contact_id in leased}
    return {phone for phone, _ in locked}


# --- claiming ------------------------------------------------------------------------------


def test_claim_creates_the_attempt_lease_lock_and_job(db: Database) -> None:
    cid = add_campaign(db, dialing={"caller_id": "02088886666"},
                       trunk={"uri": "sip:{number}@10.0.0.1", "prefix": "9"})
    [contact_id] = add_contacts(db, cid, ["13812345678"])
    [job] = Dialer(db, "gw-1", lease_s=90).claim(NOW, capacity=5)
    assert (job.campaign_id, job.campaign_name, job.campaign_type) == (cid, "m", "marketing")
    assert (job.contact_id, job.phone, job.attempt_no) == (contact_id, "13812345678", 1)
    assert job.target == "sip:913812345678@10.0.0.1" and job.caller_id == "02088886666"
    assert (job.kind, job.callback_id) == ("first", None)
    assert job.lease_expires_at == NOW + timedelta(seconds=90)
    row = attempt(db, job.call_id)
    assert (row.gateway, row.lease_expires_at, row.kind) == ("gw-1", job.lease_expires_at,
                                                             "first")
    assert row.started_at == NOW and row.dial_result is None
    assert contact(db, contact_id).status == "in_progress"
    assert contact(db, contact_id).attempts == 1
    with db.session() as session:
        lock = session.get(PhoneLock, "13812345678")
        assert lock is not None and (lock.call_id, lock.gateway) == (job.call_id, "gw-1")
    assert on_call(db) == {"13812345678"}
    assert Dialer(db, "gw-2").claim(NOW, capacity=5) == []  # nothing is handed out twice


def test_claim_order(db: Database) -> None:
    low = add_campaign(db, "low", dialing={"priority": 0})
    high = add_campaign(db, "high", dialing={"priority": 9})
    [a_low] = add_contacts(db, low, ["13900000001"])
    older, newer, vip, called_back = add_contacts(db, high, phones(4))
    set_contact(db, older, next_attempt_at=NOW - timedelta(hours=2))
    set_contact(db, newer, next_attempt_at=NOW - timedelta(hours=1))
    set_contact(db, vip, priority=5)
    set_contact(db, called_back, next_attempt_at=NOW)
    with db.session() as session:
        CallbackRepo(session).schedule(high, called_back, NOW - timedelta(minutes=5),
                                       "customer_request")
    jobs = Dialer(db, "gw").claim(NOW, capacity=10)
    assert [j.contact_id for j in jobs] == [called_back, vip, older, newer, a_low]
    assert jobs[0].kind == "callback" and jobs[0].callback_id is not None


def test_capacity_and_campaign_concurrency(db: Database) -> None:
    cid = add_campaign(db, dialing={"concurrency": 2})
    add_contacts(db, cid, phones(5))
    dialer = Dialer(db, "gw")
    assert len(dialer.claim(NOW, capacity=1)) == 1
    jobs = dialer.claim(NOW, capacity=10)
    assert len(jobs) == 1  # two live calls is the campaign's limit
    assert Dialer(db, "other").claim(NOW, capacity=10) == []  # across gateways too
    run_call(db, dialer, jobs[0], "busy")
    assert len(dialer.claim(NOW, capacity=10)) == 1


def test_outside_the_window_nothing_is_claimed(db: Database) -> None:
    cid = add_campaign(db, schedule={"weekdays": ["mon", "tue", "wed", "thu", "fri"]})
    add_contacts(db, cid, phones(2))
    dialer = Dialer(db, "gw")
    assert dialer.claim(sh(MON, 12, 30), capacity=5) == []
    assert dialer.claim(sh(MON + timedelta(days=5), 10), capacity=5) == []  # Saturday
    assert dialer.claim(sh(MON, 8, 59), capacity=5) == []
    assert len(dialer.claim(sh(MON, 9), capacity=5)) == 2


def test_pause_and_resume(db: Database) -> None:
    cid = add_campaign(db, status="draft")
    add_contacts(db, cid, phones(3))
    dialer = Dialer(db, "gw")
    assert dialer.claim(NOW, capacity=5) == []  # a draft is not dialled
    start_campaign(db, "m", NOW)
    [job] = dialer.claim(NOW, capacity=1)
    assert pause_campaign(db, "m") == "paused"
    assert dialer.claim(NOW, capacity=5) == []
    run_call(db, dialer, job, "answered", "declined")  # the call in progress finishes
    assert contact(db, job.contact_id).status == "done"
    assert resume_campaign(db, "m") == "running"
    assert len(dialer.claim(NOW, capacity=5)) == 2
    with pytest.raises(CampaignControlError, match="no campaign"):
        pause_campaign(db, "nope")


def test_start_campaign_deadline_rules(db: Database) -> None:
    save_campaign(db, defn("notification", name="late", script={"deadline": "2030-05-07"}))
    result = start_campaign(db, "late", NOW)
    assert result.status == "running" and result.warning is not None
    assert result.warning.level == "warning" and result.warning.days_left == 1
    save_campaign(db, defn("notification", name="over", script={"deadline": "2030-05-05"}))
    with pytest.raises(CampaignControlError, match="has passed"):
        start_campaign(db, "over", NOW)
    forced = start_campaign(db, "over", NOW, force=True)
    assert forced.status == "running" and forced.warning is not None
    assert forced.warning.level == "error"
    save_campaign(db, defn(name="sale", follow_ups={"second_confirmation": "confirm"}))
    notes = start_campaign(db, "sale", NOW).notes
    assert any("'confirm' does not exist" in note for note in notes)


# --- results, retries, caps ----------------------------------------------------------------


def test_retry_timing_after_busy_no_answer_powered_off_invalid(db: Database) -> None:
    cid = add_campaign(db)
    busy, no_answer, off, invalid = add_contacts(db, cid, phones(4))
    dialer = Dialer(db, "gw")
    jobs = {j.contact_id: j for j in dialer.claim(NOW, capacity=4)}
    for contact_id, result in [(busy, "busy"), (no_answer, "no_answer"), (off, "powered_off"),
                               (invalid, "invalid_number")]:
        run_call(db, dialer, jobs[contact_id], result)
    assert contact(db, busy).next_attempt_at == NOW + timedelta(minutes=30)
    assert contact(db, no_answer).next_attempt_at == sh(MON, 14)  # 12:00 is lunch
    assert contact(db, off).next_attempt_at == sh(MON + timedelta(days=1), 9)
    gone = contact(db, invalid)
    assert (gone.status, gone.next_attempt_at, gone.last_result) == (
        "failed", None, "invalid_number")
    assert dialer.claim(NOW + timedelta(minutes=29), capacity=5) == []
    [retry] = dialer.claim(NOW + timedelta(minutes=30), capacity=5)
    assert (retry.contact_id, retry.kind, retry.attempt_no) == (busy, "retry", 2)
    assert len(on_call(db)) == 1


def test_attempt_cap(db: Database) -> None:
    cid = add_campaign(db, dialing={"max_attempts": 2, "retry": {"no_answer": "30m"}})
    [contact_id] = add_contacts(db, cid, phones(1))
    dialer = Dialer(db, "gw")
    at = NOW
    for n in (1, 2):
        [job] = dialer.claim(at, capacity=1)
        assert job.attempt_no == n
        run_call(db, dialer, job, "no_answer", at=at)
        at += timedelta(minutes=30)
    final = contact(db, contact_id)
    assert (final.status, final.attempts, final.last_result) == ("failed", 2, "no_answer")
    assert dialer.claim(at + timedelta(days=1), capacity=1) == []


def test_answered_outcomes_decide_the_contact(db: Database) -> None:
    marketing = add_campaign(db)
    notice = add_campaign(db, "n", "notification")
    sold, silent, hung_up, left_open = add_contacts(db, marketing, phones(4))
    [notice_hung_up] = add_contacts(db, notice, phones(1, start=10))
    dialer = Dialer(db, "gw")
    jobs = {j.contact_id: j for j in dialer.claim(NOW, capacity=10)}
    run_call(db, dialer, jobs[sold], "answered", "consented", verified=True, pitched=True)
    run_call(db, dialer, jobs[silent], "answered", "no_response")
    run_call(db, dialer, jobs[hung_up], "answered", "hung_up_early")
    run_call(db, dialer, jobs[notice_hung_up], "answered", "hung_up_early")
    run_call(db, dialer, jobs[left_open], "answered")  # the call ended without an outcome
    assert contact(db, sold).status == "done"
    with db.session() as session:
        call = session.get(Call, jobs[sold].call_id)
        assert call is not None and call.grade == "A"
        open_call = session.get(Call, jobs[left_open].call_id)
        assert open_call is not None and open_call.outcome == "hung_up_early"
        assert open_call.grade == "D"
    assert contact(db, silent).status == "pending"
    assert contact(db, silent).next_attempt_at == sh(MON, 14)  # no_response: 2 h
    assert contact(db, hung_up).status == "done"  # a marketing hang-up is an answer
    assert contact(db, notice_hung_up).status == "pending"  # a notice must be heard
    assert on_call(db) == set()


def test_dnc_numbers_are_never_dialled(db: Database) -> None:
    cid = add_campaign(db)
    listed, asks, other = add_contacts(db, cid, phones(3))
    with db.session() as session:
        DncRepo(session).add(phones(1)[0], "blacklist", "complaint", "operator", "ops")
    dialer = Dialer(db, "gw")
    jobs = {j.contact_id: j for j in dialer.claim(NOW, capacity=10)}
    assert set(jobs) == {asks, other}
    assert contact(db, listed).status == "dnc"
    # "别再打了" during the call: the actions add the entry and a (stale) callback exists
    gateway_result(db, jobs[asks].call_id, "answered", "do_not_call")
    with db.session() as session:
        DncRepo(session).add(phones(2)[1], "do_not_call", "customer asked", "customer", "bot",
                             call_id=jobs[asks].call_id)
        CallbackRepo(session).schedule(cid, asks, NOW + timedelta(hours=1), "customer_request")
    dialer.complete(jobs[asks].call_id, NOW)
    assert contact(db, asks).status == "dnc"
    with db.session() as session:
        assert CallbackRepo(session).pending_for(asks) == []
    # a number put on the list while its retry waits is not dialled either
    run_call(db, dialer, jobs[other], "busy")
    with db.session() as session:
        DncRepo(session).add(phones(3)[2], "do_not_call", "list", "import", "ops")
    assert dialer.claim(NOW + timedelta(hours=1), capacity=5) == []
    assert contact(db, other).status == "dnc"


def test_marketing_cap_across_campaigns(db: Database) -> None:
    first = add_campaign(db, "first")
    second = add_campaign(db, "second")
    notice = add_campaign(db, "notice", "notification")
    phone = "13812345678"
    [a] = add_contacts(db, first, [phone])
    dialer = Dialer(db, "gw")
    [job] = dialer.claim(NOW, capacity=5)
    run_call(db, dialer, job, "answered", "declined", decline_reason="not_needed")
    [b] = add_contacts(db, second, [phone])
    [n] = add_contacts(db, notice, [phone])
    later = NOW + timedelta(days=1)
    jobs = dialer.claim(later, capacity=5)
    assert [j.contact_id for j in jobs] == [n]  # notifications are not capped
    run_call(db, dialer, jobs[0], "answered", "notified", at=later)
    assert contact(db, b).next_attempt_at == NOW + timedelta(days=5)  # answered + 5 days
    assert check_campaign(db, "second", later)["skipped"]["marketing_cap"] == 1
    assert dialer.claim(NOW + timedelta(days=5) - timedelta(minutes=1), capacity=5) == []
    [capped] = dialer.claim(NOW + timedelta(days=5), capacity=5)
    assert capped.contact_id == b and contact(db, a).status == "done"


def test_a_number_is_never_on_two_calls(db: Database) -> None:
    one = add_campaign(db, "one", "notification", dialing={"priority": 1})
    two = add_campaign(db, "two", "notification")
    [a] = add_contacts(db, one, ["13812345678"])
    [b] = add_contacts(db, two, ["13812345678"])
    dialer = Dialer(db, "gw")
    [job] = dialer.claim(NOW, capacity=5)
    assert job.contact_id == a
    assert Dialer(db, "gw-2").claim(NOW, capacity=5) == []
    assert check_campaign(db, "two", NOW)["skipped"]["in_progress"] == 1
    run_call(db, dialer, job, "busy")
    [next_job] = dialer.claim(NOW, capacity=5)
    assert next_job.contact_id == b


# --- leases --------------------------------------------------------------------------------


def test_expired_lease_is_reclaimed_and_retried(db: Database) -> None:
    cid = add_campaign(db)
    [contact_id] = add_contacts(db, cid, phones(1))
    [job] = Dialer(db, "dead-gw", lease_s=60).claim(NOW, capacity=1)
    survivor = Dialer(db, "gw-2", lease_s=60)
    assert survivor.reclaim_expired(NOW + timedelta(seconds=59)) == 0
    later = NOW + timedelta(seconds=61)
    assert survivor.claim(later, capacity=1) == []  # reclaimed, retry not due yet
    closed = attempt(db, job.call_id)
    assert (closed.dial_result, closed.lease_expires_at) == ("failed", None)
    assert closed.ended_at == later and closed.completed_at == later
    assert on_call(db) == set()
    waiting = contact(db, contact_id)
    assert (waiting.status, waiting.next_attempt_at) == ("pending", later + timedelta(minutes=30))
    [retry] = survivor.claim(later + timedelta(minutes=30), capacity=1)
    assert (retry.attempt_no, retry.kind) == (2, "retry")
    # the dead gateway comes back: its call is gone, completing it changes nothing
    assert Dialer(db, "dead-gw").renew([job.call_id], later) == []
    assert Dialer(db, "dead-gw").complete(job.call_id, later).already


def test_reclaim_keeps_what_an_answered_call_stored(db: Database) -> None:
    cid = add_campaign(db)
    talking, finished = add_contacts(db, cid, phones(2))
    jobs = {j.contact_id: j for j in Dialer(db, "dead", lease_s=30).claim(NOW, capacity=2)}
    gateway_result(db, jobs[talking].call_id, "answered")
    with db.session() as session:
        CallRepo(session).add_turn(jobs[talking].call_id, "customer", "喂", started_at=NOW)
    gateway_result(db, jobs[finished].call_id, "answered", "consented")
    assert Dialer(db, "gw").reclaim_expired(NOW + timedelta(minutes=1)) == 2
    with db.session() as session:
        call = session.get(Call, jobs[talking].call_id)
        assert call is not None and call.outcome == "failed"  # a system failure
        assert call.summary["interrupted"] == "lease_expired"
        assert [t.text for t in CallRepo(session).turns(call.id)] == ["喂"]
        done = session.get(Call, jobs[finished].call_id)
        assert done is not None and done.grade == "A"
    assert attempt(db, jobs[talking].call_id).dial_result == "answered"
    assert contact(db, talking).status == "pending"  # retried as failed
    assert contact(db, finished).status == "done"  # the call had concluded


def test_renew_extends_only_this_gateways_live_leases(db: Database) -> None:
    cid = add_campaign(db)
    add_contacts(db, cid, phones(2))
    mine = Dialer(db, "gw-1", lease_s=60)
    first, second = mine.claim(NOW, capacity=2)
    later = NOW + timedelta(seconds=50)
    assert mine.renew([first.call_id, second.call_id, "unknown"], later) == [
        first.call_id, second.call_id]
    assert attempt(db, first.call_id).lease_expires_at == later + timedelta(seconds=60)
    assert Dialer(db, "gw-2").renew([first.call_id], later) == []
    assert mine.reclaim_expired(NOW + timedelta(seconds=100)) == 0  # renewed: still live
    run_call(db, mine, first, "busy", at=later)
    assert mine.renew([first.call_id, second.call_id], later) == [second.call_id]


def test_the_lease_alone_says_whether_a_number_is_on_a_call(db: Database) -> None:
    """A renewed lease keeps the number busy after its first expiry, for every campaign; once
    the lease has expired the number is free again, with no lock left behind."""
    one = add_campaign(db, "one", "notification", dialing={"priority": 1})
    two = add_campaign(db, "two", "notification")
    [a] = add_contacts(db, one, ["13812345678"])
    [b] = add_contacts(db, two, ["13812345678"])
    first = Dialer(db, "gw-1", lease_s=60)
    [job] = first.claim(NOW, capacity=5)
    assert job.contact_id == a and on_call(db) == {"13812345678"}
    assert first.renew([job.call_id], NOW + timedelta(seconds=50)) == [job.call_id]
    renewed = NOW + timedelta(seconds=100)  # past the first expiry, before the renewed one
    second = Dialer(db, "gw-2", lease_s=60)
    assert second.claim(renewed, capacity=5) == []
    assert check_campaign(db, "two", renewed)["skipped"]["in_progress"] == 1
    assert check_campaign(db, "one", renewed)["live_calls"] == 1
    assert on_call(db) == {"13812345678"}
    expired = NOW + timedelta(seconds=111)
    [taken] = second.claim(expired, capacity=5)  # reclaims gw-1's call; the number is free
    assert taken.contact_id == b
    assert attempt(db, job.call_id).lease_expires_at is None
    assert on_call(db) == {"13812345678"}  # held by the new call alone
    with db.session() as session:
        lock = session.get(PhoneLock, "13812345678")
        assert lock is not None and lock.call_id == taken.call_id
    assert first.renew([job.call_id], expired) == []  # gw-1 learns it lost the call


def test_complete_is_idempotent(db: Database) -> None:
    cid = add_campaign(db)
    [contact_id] = add_contacts(db, cid, phones(1))
    dialer = Dialer(db, "gw")
    [job] = dialer.claim(NOW, capacity=1)
    gateway_result(db, job.call_id, "busy")
    first = dialer.complete(job.call_id, NOW)
    assert (first.contact_status, first.already) == ("pending", False)
    again = dialer.complete(job.call_id, NOW + timedelta(minutes=5))
    assert again.already and again.next_attempt_at == first.next_attempt_at
    assert contact(db, contact_id).attempts == 1
    with pytest.raises(LookupError):
        dialer.complete("no-such-call", NOW)


def test_restart_dials_nothing_twice(db: Database) -> None:
    cid = add_campaign(db)
    add_contacts(db, cid, phones(5))
    before = Dialer(db, "gw-1", lease_s=120)
    handed = before.claim(NOW, capacity=3)
    run_call(db, before, handed[0], "answered", "declined")
    # the process restarts: a new dialer on the same database, same gateway name
    after = Dialer(db, "gw-1", lease_s=120)
    resumed = after.claim(NOW + timedelta(seconds=10), capacity=10)
    assert {j.contact_id for j in resumed}.isdisjoint({j.contact_id for j in handed})
    assert len(resumed) == 2
    assert after.claim(NOW + timedelta(seconds=20), capacity=10) == []
    assert after.complete(handed[0].call_id, NOW).already  # a completed attempt stays so
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(CallAttempt)) == 5


# --- several processes at once ----------------------------------------------------------


def _claim_all(url: str, gateway: str, now_iso: str, barrier: Any, out: Any) -> None:
    """Child process: claim in small bites until nothing is left; report what it got."""
    db = Database(url)
    dialer = Dialer(db, gateway, lease_s=600)
    now = datetime.fromisoformat(now_iso)
    got: list[tuple[int, str, str]] = []
    try:
        barrier.wait(timeout=60)
        empty = 0
        while empty < 2:
            jobs = dialer.claim(now, capacity=2)
            empty = 0 if jobs else empty + 1
            got += [(j.contact_id, j.phone, j.call_id) for j in jobs]
            # a gateway dials between claims; without a pause SQLite's busy handler lets
            # the last writer win the lock again and again, and nothing interleaves
            time.sleep(0.005)
        out.put((gateway, got, None))
    except BaseException as exc:  # reported to the test, not lost in the child
        out.put((gateway, got, repr(exc)))
    finally:
        db.dispose()


def _in_processes(db: Database, workers: int = 4) -> list[list[tuple[int, str, str]]]:
    """Every worker claims from *db* at once; the (contact, phone, call id) each claimed."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(workers)
    out = ctx.Queue()
    url = db.url.render_as_string(hide_password=False)
    procs = [ctx.Process(target=_claim_all, args=(url, f"gw-{n}", NOW.isoformat(), barrier,
                                                  out)) for n in range(workers)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    assert [error for _, _, error in results if error] == []
    return [got for _, got, _ in results]


def _claim_from_processes(db: Database) -> None:
    one = add_campaign(db, "one", "notification", dialing={"concurrency": 1000})
    two = add_campaign(db, "two", "notification", dialing={"concurrency": 1000,
                                                           "priority": 3})
    add_contacts(db, one, phones(60))
    add_contacts(db, two, phones(60, start=30))  # 30 numbers are in both campaigns
    per_worker = _in_processes(db)
    assert sum(1 for got in per_worker if got) >= 2  # the work was really shared
    claims = [claim for got in per_worker for claim in got]
    contacts_claimed = Counter(contact_id for contact_id, _, _ in claims)
    phones_claimed = Counter(phone for _, phone, _ in claims)
    assert max(contacts_claimed.values()) == 1  # every contact at most once
    assert max(phones_claimed.values()) == 1  # no number on two calls
    assert len(phones_claimed) == 90  # every number was claimed
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(CallAttempt)) == 90
    assert len(on_call(db)) == 90


@pytest.mark.postgres
def test_processes_claim_concurrently_on_postgresql(pg_db: Database) -> None:
    _claim_from_processes(pg_db)


@pytest.mark.postgres
def test_processes_respect_the_campaign_concurrency_on_postgresql(pg_db: Database) -> None:
    capped = add_campaign(pg_db, "capped", "notification", dialing={"concurrency": 7})
    add_contacts(pg_db, capped, phones(40))
    assert sum(len(got) for got in _in_processes(pg_db)) == 7


def test_processes_claim_concurrently_on_sqlite(sqlite_db: Database) -> None:
    _claim_from_processes(sqlite_db)


# --- command line ----------------------------------------------------------------------


def _cli(url: str, *argv: str) -> int:
    return main(["--database", url, *argv])


def test_cli_campaign_control_and_check(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    db = Database(url)
    db.upgrade()
    cid = add_campaign(db, status="draft")
    add_contacts(db, cid, phones(3))
    assert _cli(url, "campaign", "check", "m", "--json", "--at", NOW.isoformat()) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["status"], report["would_dial"]) == ("draft", 3)
    assert _cli(url, "campaign", "check", "m", "--at", "2030-05-06T12:30+08:00") == 0
    assert "next window starts 2030-05-06T14:00:00+08:00" in capsys.readouterr().out
    assert _cli(url, "campaign", "check", "m", "--at", "2030-05-06T12:30") == 2
    assert "time zone" in capsys.readouterr().err
    assert _cli(url, "campaign", "start", "m", "--json") == 0
    assert json.loads(capsys.readouterr().out)["status"] == "running"
    assert _cli(url, "campaign", "pause", "m") == 0
    assert "is paused" in capsys.readouterr().out
    assert _cli(url, "campaign", "resume", "m", "--json") == 0
    assert json.loads(capsys.readouterr().out) == {"name": "m", "status": "running"}
    assert _cli(url, "campaign", "pause", "ghost") == 2
    assert "no campaign named 'ghost'" in capsys.readouterr().err
    assert _cli(url, "campaign", "check", "ghost") == 2


def test_cli_start_refuses_a_notification_past_its_deadline(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    db = Database(url)
    db.upgrade()
    save_campaign(db, defn("notification", name="old", script={"deadline": "2000-01-01"}))
    far = date.today() + timedelta(days=10)
    save_campaign(db, defn("notification", name="soon", script={"deadline": far.isoformat()},
                           dialing={"notify_lead_days": 30}))
    assert _cli(url, "campaign", "start", "old") == 2
    assert "has passed" in capsys.readouterr().err
    assert _cli(url, "campaign", "start", "old", "--force", "--json") == 0
    assert json.loads(capsys.readouterr().out)["warning"]["level"] == "error"
    assert _cli(url, "campaign", "start", "soon") == 0
    assert "WARNING" in capsys.readouterr().out


def test_cli_dnc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    assert _cli(url, "dnc", "add", "+86 138-1234-5678", "--reason", "投诉", "--by", "王经理",
                "--kind", "blacklist", "--json") == 0
    added = json.loads(capsys.readouterr().out)
    assert (added["phone"], added["kind"], added["added_by"]) == (
        "13812345678", "blacklist", "王经理")
    assert _cli(url, "dnc", "add", "12345", "--reason", "x", "--by", "me") == 2
    capsys.readouterr()
    listing = tmp_path / "dnc.csv"
    listing.write_text("姓名,手机号\n张三,13900000001\n李四,139-0000-0002\n王五,abc\n"
                       "赵六,13812345678\n,\n", encoding="utf-8")
    assert _cli(url, "dnc", "import", str(listing), "--by", "ops", "--kind", "blacklist",
                "--json") == 0
    imported = json.loads(capsys.readouterr().out)
    assert (imported["added"], imported["already_listed"]) == (2, 1)
    assert [r["line"] for r in imported["rejected"]] == [4]
    assert _cli(url, "dnc", "list", "--json") == 0
    entries = json.loads(capsys.readouterr().out)
    assert sorted(e["phone"] for e in entries) == ["13812345678", "13900000001", "13900000002"]
    assert {e["source"] for e in entries} == {"operator", "import"}
    assert _cli(url, "dnc", "remove", "13900000001", "--reason", "误加", "--by", "ops",
                "--json") == 0
    assert json.loads(capsys.readouterr().out)["removed"] == 1
    assert _cli(url, "dnc", "remove", "13900000001", "--reason", "again", "--by", "ops") == 1
    capsys.readouterr()
    with Database(url).session() as session:
        closed = session.scalars(select(DncEntry).where(DncEntry.phone == "13900000001")).one()
        assert (closed.removed_by, closed.remove_reason) == ("ops", "误加")
        assert closed.removed_at is not None
    assert _cli(url, "dnc", "list") == 0
    text = capsys.readouterr().out
    assert "13900000001" not in text and "13812345678" in text
    no_column = tmp_path / "bad.csv"
    no_column.write_text("name\nx\n", encoding="utf-8")
    assert _cli(url, "dnc", "import", str(no_column), "--by", "ops") == 2
