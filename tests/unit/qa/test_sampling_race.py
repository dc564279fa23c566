"""Two machines drawing the same QA sample at the same moment (`waihu run` on several
machines, bot/qa/schedule.py) on PostgreSQL: one sample is stored, and the machine that
loses the race returns the winner's instead of failing or storing a second."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError

from bot.qa.sampling import draw_sample
from bot.store import Database
from bot.store.models import QaSample

from .seeding import AFTER_WEEK, DAY, add_call, add_campaign

pytestmark = pytest.mark.postgres


def the_other_machines_sample(campaign_id: int) -> dict[str, object]:
    return {"campaign_id": campaign_id, "kind": "daily", "period_start": DAY,
            "period_end": DAY, "timezone": "Asia/Shanghai", "rule": {},
            "population_size": 6, "eligible_size": 6, "population_sha256": "0" * 64,
            "nonce": "b" * 32, "seed": "b" * 64, "drawn_at": AFTER_WEEK,
            "drawn_by": "qa-schedule:machine-a"}


def wait_for_a_blocked_insert(db: Database, timeout_s: float = 20) -> None:
    """Until a session of this database waits on a lock: our INSERT, behind the other
    machine's uncommitted row with the same key."""
    deadline = time.monotonic() + timeout_s
    with db.engine.connect() as watcher:
        while time.monotonic() < deadline:
            waiting = watcher.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'")).scalar_one()
            if waiting:
                return
            watcher.rollback()  # a fresh snapshot of pg_stat_activity
            time.sleep(0.02)
    raise AssertionError("the second draw never reached its INSERT")


def test_the_draw_that_loses_the_race_returns_the_stored_sample(
        pg_db: Database, caplog: pytest.LogCaptureFixture) -> None:
    cid = add_campaign(pg_db, daily_rate=0.5)
    for n in range(6):
        add_call(pg_db, cid, n)
    with pg_db.engine.connect() as machine_a, ThreadPoolExecutor(1) as pool, \
            caplog.at_level(logging.INFO, logger="waihu.qa"):
        transaction = machine_a.begin()
        theirs = machine_a.execute(insert(QaSample).values(
            the_other_machines_sample(cid)).returning(QaSample.id)).scalar_one()
        # machine B does not see A's row yet: it draws, and its INSERT waits on A's
        ours = pool.submit(draw_sample, pg_db, "qa-camp", "daily", DAY, now=AFTER_WEEK,
                           drawn_by="qa-schedule:machine-b")
        wait_for_a_blocked_insert(pg_db)
        transaction.commit()
        result = ours.result(timeout=30)
    assert (result.sample_id, result.seed, result.fresh) == (theirs, "b" * 64, False)
    assert any("qa.sample_raced" in r.getMessage() for r in caplog.records)
    with pg_db.session() as session:
        assert session.scalar(select(func.count()).select_from(QaSample)) == 1


def test_the_database_refuses_a_second_sample_of_a_period(pg_db: Database) -> None:
    cid = add_campaign(pg_db)
    with pg_db.session() as session:
        session.execute(insert(QaSample).values(the_other_machines_sample(cid)))
    with pytest.raises(IntegrityError, match="uq_qa_samples_campaign_id_kind_period_start"), \
            pg_db.session() as session:
        session.execute(insert(QaSample).values(
            {**the_other_machines_sample(cid), "drawn_by": "qa-schedule:machine-b"}))
