"""Migration 0002 and the store pieces the dialer stands on: attempt kinds and leases, phone
locks, QA reviews, pending callbacks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from bot.store import (
    Call,
    CallbackRepo,
    CallRepo,
    CampaignRepo,
    ContactRepo,
    Database,
    NotFound,
    PhoneLockRepo,
    QaReview,
    QaReviewRepo,
)

NOW = datetime(2030, 5, 6, 2, 0, tzinfo=UTC)


def test_downgrade_to_0001_keeps_the_data_and_upgrade_restores(fresh_db: Database,
                                                               seeder: Callable[..., Call]
                                                               ) -> None:
    call = seeder(fresh_db)
    with fresh_db.session() as session:
        QaReviewRepo(session).add(call.id, "qa", False, "no price", at=NOW)
    fresh_db.downgrade("0001")
    columns = {c["name"] for c in inspect(fresh_db.engine).get_columns("call_attempts")}
    assert {"kind", "callback_id", "completed_at"}.isdisjoint(columns)
    assert not {"phone_locks", "qa_reviews"} & set(inspect(fresh_db.engine).get_table_names())
    with fresh_db.engine.connect() as connection:  # 0001's rows are all still there
        assert connection.exec_driver_sql("SELECT count(*) FROM calls").scalar() == 1
        assert connection.exec_driver_sql("SELECT count(*) FROM call_attempts").scalar() == 1
    fresh_db.upgrade()
    with fresh_db.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT kind FROM call_attempts").scalar() == "first"


def test_attempt_kind_counted_and_lease(db: Database) -> None:
    with db.session() as session:
        campaign = CampaignRepo(session).add("c", "marketing", {}, "0" * 64)
        contact = ContactRepo(session).add(campaign.id, "13812345678")
        calls = CallRepo(session)
        first = calls.start_attempt(campaign.id, contact.id, at=NOW,
                                    lease_expires_at=NOW + timedelta(minutes=1))
        second = calls.start_attempt(campaign.id, contact.id, at=NOW)
        callback = calls.start_attempt(campaign.id, contact.id, at=NOW, kind="callback",
                                       callback_id=7, counted=False)
        assert (first.kind, second.kind, callback.kind) == ("first", "retry", "callback")
        assert first.lease_expires_at == NOW + timedelta(minutes=1)
        assert callback.callback_id == 7 and contact.attempts == 2
        with pytest.raises(ValueError, match="attempt kind"):
            calls.start_attempt(campaign.id, contact.id, kind="robocall")
    with pytest.raises(IntegrityError), db.session() as session:
        session.execute(text("UPDATE call_attempts SET kind = 'robocall'"))


def test_phone_locks(db: Database, seeder: Callable[..., Call]) -> None:
    one, two = seeder(db, "13800000001"), seeder(db, "13800000002")
    with db.session() as session:
        locks = PhoneLockRepo(session)
        assert locks.available("13812345678")
        locks.lock("13812345678", one.id, "gw")
        assert not locks.available("13812345678")
        holder = locks.holder("13812345678")
        assert holder is not None and (holder.call_id, holder.gateway) == (one.id, "gw")
    with pytest.raises(IntegrityError), db.session() as session:
        PhoneLockRepo(session).lock("13812345678", two.id, "gw-2")  # one call per number
    with db.session() as session:
        locks = PhoneLockRepo(session)
        locks.release(one.id)
        assert locks.available("13812345678") and locks.holder("13812345678") is None


def test_phone_locks_have_no_clock_of_their_own(fresh_db: Database,
                                                seeder: Callable[..., Call]) -> None:
    """0004 drops ``phone_locks.expires_at``: the attempt's lease is the one record of a live
    call.  A downgrade restores the column from the lease, and the upgrade drops it again."""
    call = seeder(fresh_db)
    lease = NOW + timedelta(minutes=1)
    with fresh_db.session() as session:
        attempt = CallRepo(session).get_attempt(call.id)
        assert attempt is not None
        attempt.lease_expires_at = lease
        PhoneLockRepo(session).lock("13812345678", call.id, "gw")

    def lock_columns() -> set[str]:
        return {c["name"] for c in inspect(fresh_db.engine).get_columns("phone_locks")}

    assert lock_columns() == {"phone", "call_id", "gateway", "created_at"}
    fresh_db.downgrade("0003")
    assert "expires_at" in lock_columns()
    with fresh_db.engine.connect() as connection:
        restored = connection.exec_driver_sql("SELECT expires_at FROM phone_locks").scalar()
    if isinstance(restored, str):  # SQLite hands back the stored text
        restored = datetime.fromisoformat(restored).replace(tzinfo=UTC)
    assert restored == lease
    fresh_db.upgrade()
    assert "expires_at" not in lock_columns()
    with fresh_db.session() as session:
        holder = PhoneLockRepo(session).holder("13812345678")
        assert holder is not None and holder.call_id == call.id


def test_qa_reviews(db: Database, call: Call) -> None:
    with db.session() as session:
        repo = QaReviewRepo(session)
        repo.add(call.id, "甲", True, at=NOW)
        repo.add(call.id, "乙", False, "没有说明价格", at=NOW)
        reviews = session.scalars(select(QaReview).where(QaReview.call_id == call.id)
                                  .order_by(QaReview.id))
        assert [(r.reviewer, r.compliant) for r in reviews] == [
            ("甲", True), ("乙", False)]
        with pytest.raises(NotFound):
            repo.add("nope", "甲", True)
        with pytest.raises(ValueError, match="reviewer"):
            repo.add(call.id, " ", True)


def test_pending_callbacks_and_cancel(db: Database, call: Call) -> None:
    with db.session() as session:
        repo = CallbackRepo(session)
        late = repo.schedule(call.campaign_id, call.contact_id, NOW + timedelta(hours=2),
                             "customer_request")
        soon = repo.schedule(call.campaign_id, call.contact_id, NOW, "qa_followup")
        assert repo.pending_for(call.contact_id) == [soon, late]
        assert repo.pending_for(call.contact_id, due_by=NOW) == [soon]
        assert repo.pending_for(call.contact_id, kinds=["customer_request"]) == [late]
        assert repo.cancel_pending(call.contact_id, kinds=["qa_followup"]) == 1
        assert repo.pending_for(call.contact_id) == [late]
        assert repo.cancel_pending(call.contact_id) == 1 and late.status == "cancelled"
