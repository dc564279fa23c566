"""The dry run (``waihu campaign check``) agrees with what a claim does, and changes nothing."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from bot.campaigns.dialer import Dialer
from bot.campaigns.dryrun import check_campaign
from bot.campaigns.registry import start_campaign
from bot.store import CallAttempt, CallbackRepo, Database, DncRepo

from .test_dialer import MON, NOW, add_campaign, add_contacts, contact, phones, set_contact, sh


def test_check_counts_a_seeded_list(db: Database) -> None:
    cid = add_campaign(db, status="draft", dialing={"max_attempts": 2})
    ids = add_contacts(db, cid, phones(8))
    fresh1, fresh2, listed, done, invalid, waiting, exhausted, called_back = ids
    set_contact(db, done, status="done")
    set_contact(db, invalid, status="failed", last_result="invalid_number")
    set_contact(db, waiting, next_attempt_at=NOW + timedelta(hours=1), attempts=1)
    set_contact(db, exhausted, attempts=2)
    set_contact(db, called_back, attempts=2)
    with db.session() as session:
        DncRepo(session).add(phones(3)[2], "do_not_call", "asked", "customer", "bot")
        CallbackRepo(session).schedule(cid, called_back, NOW, "customer_request")
    report = check_campaign(db, "m", NOW)
    assert (report["status"], report["contacts"], report["would_dial"]) == ("draft", 8, 3)
    assert report["skipped"] == {"dnc": 1, "done": 1, "invalid": 1, "attempts_exhausted": 1,
                                 "in_progress": 0, "retry_wait": 1, "marketing_cap": 0,
                                 "outside_window": 0}
    assert report["next_retry_at"] == "2030-05-06T11:00:00+08:00"
    lunch = check_campaign(db, "m", sh(MON, 12, 30))  # the retry is due by then, too
    assert lunch["would_dial"] == 0 and lunch["skipped"]["outside_window"] == 4
    assert lunch["next_window_start"] == "2030-05-06T14:00:00+08:00"
    # nothing changed: the listed contact is still pending, nothing was dialled
    assert contact(db, listed).status == "pending"
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(CallAttempt)) == 0
    start_campaign(db, "m", NOW)  # and a real claim agrees with the dry run
    jobs = Dialer(db, "gw").claim(NOW, capacity=10)
    assert {j.contact_id for j in jobs} == {fresh1, fresh2, called_back}
