"""Scheduled QA draws (bot/qa/schedule.py): what is due when in each campaign's time zone,
the draws a tick makes (once, catching up a bounded number of days), the loop on an
injected clock, and `waihu run`'s switch."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from bot.qa import schedule
from bot.qa.sampling import SampleResult
from bot.qa.schedule import DueDraw, QaScheduler, due_draws, next_due_at
from bot.store import CampaignRepo, Database
from bot.store.models import QaSample

from .seeding import DAY, SHANGHAI, add_call, add_campaign

NEW_YORK = ZoneInfo("America/New_York")
WEEK = [date(2026, 11, 23) + timedelta(days=n) for n in range(7)]  # Mon 23 .. Sun 29 Nov


def at(day: date, hhmm: str, zone: tzinfo = SHANGHAI) -> datetime:
    return datetime.combine(day, time.fromisoformat(hhmm), zone).astimezone(UTC)


def samples(db: Database) -> list[tuple[str, date, str]]:
    with db.session() as session:
        return [(s.kind, s.period_start, s.drawn_by) for s in session.scalars(
            select(QaSample).order_by(QaSample.kind, QaSample.period_start))]


# --- what is due (pure) ----------------------------------------------------------------------


def test_a_day_is_due_at_one_in_the_morning_after_it_and_a_week_on_monday() -> None:
    monday = date(2026, 11, 30)
    before = due_draws("c", SHANGHAI, at(monday, "00:59"))
    assert [d.day for d in before if d.kind == "daily"] == [
        date(2026, 11, 22) + timedelta(days=n) for n in range(7)]  # up to Saturday
    assert [d for d in before if d.kind == "weekly"] == [
        DueDraw("c", "weekly", date(2026, 11, 16))]  # the week before, caught up
    after = due_draws("c", SHANGHAI, at(monday, "01:00"))
    assert DueDraw("c", "daily", date(2026, 11, 29)) in after
    assert DueDraw("c", "weekly", date(2026, 11, 23)) in after
    assert DueDraw("c", "daily", date(2026, 11, 22)) not in after  # 8 days back: not caught up
    assert len(due_draws("c", SHANGHAI, at(monday, "01:00"), catch_up_days=1)) == 2


def test_the_campaign_time_zone_decides() -> None:
    now = at(DAY, "17:00", UTC)  # 01:00 on the 25th in Shanghai, noon on the 24th in New York
    assert DueDraw("c", "daily", DAY) in due_draws("c", SHANGHAI, now)
    assert DueDraw("c", "daily", DAY) not in due_draws("c", NEW_YORK, now)
    assert next_due_at(SHANGHAI, now) == at(DAY + timedelta(days=2), "01:00")
    assert next_due_at(NEW_YORK, now) == at(DAY + timedelta(days=1), "01:00", NEW_YORK)
    assert next_due_at(SHANGHAI, at(DAY, "00:30")) == at(DAY, "01:00")


# --- ticks on a database ---------------------------------------------------------------------


def test_a_tick_draws_the_day_over_once_and_another_machine_finds_it(
        db: Database, caplog: pytest.LogCaptureFixture) -> None:
    cid = add_campaign(db, daily_rate=0.5)
    calls = [add_call(db, cid, n) for n in range(6)]
    now = at(DAY + timedelta(days=1), "01:00")
    scheduler = QaScheduler(db, drawn_by="qa-schedule:a")
    with caplog.at_level(logging.INFO, logger="waihu.qa"):
        results = scheduler.tick(now)
    [drawn] = [r for r in results if r.stored]
    assert (drawn.kind, drawn.period_start, drawn.population_size, len(drawn.picks),
            drawn.fresh) == ("daily", DAY, 6, 3, True)
    assert {p.call_id for p in drawn.picks} <= set(calls)
    assert samples(db) == [("daily", DAY, "qa-schedule:a")]
    logged = [r.getMessage() for r in caplog.records if "qa.sample_drawn" in r.getMessage()
              and "population=6" in r.getMessage()]
    assert logged == [f"qa.sample_drawn campaign=qa-camp kind=daily period={DAY}..{DAY} "
                      f"population=6 drawn=3 seed={drawn.seed} by=qa-schedule:a "
                      f"sample={drawn.sample_id}"]
    assert scheduler.tick(now + timedelta(minutes=5)) == []  # nothing left to do
    other = QaScheduler(db, drawn_by="qa-schedule:b").tick(now)
    [found] = [r for r in other if r.stored]
    assert (found.sample_id, found.seed, found.fresh) == (drawn.sample_id, drawn.seed, False)
    assert samples(db) == [("daily", DAY, "qa-schedule:a")]


def test_on_start_missed_days_are_caught_up_within_the_bound(db: Database) -> None:
    cid = add_campaign(db, daily_rate=1.0)
    add_call(db, cid, 1, day=DAY - timedelta(days=3))  # Saturday 21st
    add_call(db, cid, 2, day=DAY - timedelta(days=9))  # beyond 7 days: left to the command
    add_call(db, cid, 3, day=DAY)
    QaScheduler(db, drawn_by="s").tick(at(DAY + timedelta(days=2), "10:00"))
    # the week of the 16th ended on Sunday 22nd, inside the 7 days: drawn too
    assert [(kind, day) for kind, day, _ in samples(db)] == [
        ("daily", DAY - timedelta(days=3)), ("daily", DAY), ("weekly", date(2026, 11, 16))]


def test_on_monday_the_week_is_drawn_and_its_days(db: Database) -> None:
    cid = add_campaign(db, daily_rate=0.5, weekly_rate=0.25)
    for d, day in enumerate(WEEK):
        for n in range(4):
            add_call(db, cid, d * 10 + n, day=day)
    scheduler = QaScheduler(db, drawn_by="s")
    scheduler.tick(at(WEEK[-1], "23:00"))  # Sunday night: six days, no week yet
    assert [(k, d) for k, d, _ in samples(db)] == [("daily", d) for d in WEEK[:6]]
    results = scheduler.tick(at(WEEK[-1] + timedelta(days=1), "01:00"))
    assert [(r.kind, r.period_start) for r in results if r.fresh] == [
        ("daily", WEEK[-1]), ("weekly", WEEK[0])]
    [weekly] = [r for r in results if r.kind == "weekly"]
    assert (weekly.population_size, weekly.eligible_size, len(weekly.picks)) == (28, 14, 7)


def test_a_draw_that_failed_is_tried_again_at_the_next_tick(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    cid = add_campaign(db, daily_rate=1.0)
    add_call(db, cid, 1)
    real, failures = schedule.draw_sample, [1]

    def database_away_once(*args: Any, **kwargs: Any) -> SampleResult:
        if failures:
            failures.pop()
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))
        return real(*args, **kwargs)

    monkeypatch.setattr(schedule, "draw_sample", database_away_once)
    scheduler = QaScheduler(db, drawn_by="s", catch_up_days=1)
    now = at(DAY + timedelta(days=1), "01:00")
    assert scheduler.tick(now) == [] and samples(db) == []
    [result] = scheduler.tick(now + timedelta(hours=1))
    assert (result.period_start, result.fresh) == (DAY, True)
    assert samples(db) == [("daily", DAY, "s")]


def test_each_campaign_is_drawn_in_its_own_time_zone(db: Database) -> None:
    shanghai = add_campaign(db, "shanghai-camp", daily_rate=1.0)
    with db.session() as session:
        new_york = CampaignRepo(session).add(
            "new-york-camp", "marketing",
            {"name": "new-york-camp", "timezone": "America/New_York", "qa": {"daily_rate": 1.0}},
            "b" * 64).id
    add_call(db, shanghai, 1)
    add_call(db, new_york, 2, at=time(23, 0))  # 23:00 Shanghai = 10:00 the same day, New York
    scheduler = QaScheduler(db, drawn_by="s")
    scheduler.tick(at(DAY, "17:00", UTC))  # 01:00 on the 25th in Shanghai, noon in New York
    drawn = {r.campaign: r.period_start for r in scheduler.tick(at(DAY, "17:00", UTC))}
    assert drawn == {}  # everything due was done at the first tick
    with db.session() as session:
        stored = {(s.campaign_id, s.period_start) for s in session.scalars(select(QaSample))}
    assert stored == {(shanghai, DAY)}
    scheduler.tick(at(DAY + timedelta(days=1), "01:00", NEW_YORK))
    with db.session() as session:
        stored = {(s.campaign_id, s.period_start) for s in session.scalars(select(QaSample))}
    assert stored == {(shanghai, DAY), (new_york, DAY)}


# --- the loop, on an injected clock -----------------------------------------------------------


class FakeClock:
    """Time that moves only when the scheduler waits; stops the loop after *until*."""

    def __init__(self, start: datetime, until: datetime) -> None:
        self.now, self.until = start, until
        self.wakes: list[datetime] = []

    def __call__(self) -> datetime:
        return self.now

    async def wait(self, stop: asyncio.Event, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.wakes.append(self.now)
        if self.now >= self.until:
            stop.set()


async def test_the_loop_wakes_at_one_after_midnight_and_draws_the_week(db: Database) -> None:
    cid = add_campaign(db, daily_rate=0.5, weekly_rate=0.25)
    for d, day in enumerate(WEEK):
        add_call(db, cid, d, day=day)
    monday = WEEK[-1] + timedelta(days=1)
    clock = FakeClock(at(WEEK[-1], "21:30"), until=at(monday + timedelta(days=1), "02:00"))
    scheduler = QaScheduler(db, drawn_by="s", clock=clock, wait=clock.wait)
    await asyncio.wait_for(scheduler.run(asyncio.Event()), 30)
    # at most an hour apart, and exactly at 01:00 local when a day is over
    assert at(monday, "01:00") in clock.wakes and at(monday, "00:30") in clock.wakes
    assert at(monday + timedelta(days=1), "01:00") in clock.wakes
    assert all(b - a <= timedelta(hours=1) for a, b in pairwise(clock.wakes))
    with db.session() as session:
        drawn_at = {(s.kind, s.period_start): s.drawn_at
                    for s in session.scalars(select(QaSample))}
    assert drawn_at[("weekly", WEEK[0])] == at(monday, "01:00")
    assert drawn_at[("daily", WEEK[-1])] == at(monday, "01:00")
    assert drawn_at[("daily", WEEK[0])] == at(WEEK[-1], "21:30")  # caught up at start


# --- `waihu run` ------------------------------------------------------------------------------


async def test_waihu_run_draws_unless_told_not_to(sqlite_db: Database,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from voice.cli import build_parser
    from voice.commands import _qa_schedule

    cid = add_campaign(sqlite_db, daily_rate=1.0)
    two_days_ago = datetime.now(SHANGHAI).date() - timedelta(days=2)
    add_call(sqlite_db, cid, 1, day=two_days_ago)
    args = build_parser().parse_args(["run", "--no-qa-schedule"])
    async with _qa_schedule(args, sqlite_db):
        await asyncio.sleep(0.2)
    assert samples(sqlite_db) == [] and "QA samples" not in capsys.readouterr().err
    args = build_parser().parse_args(["run", "--qa-catch-up-days", "3"])
    async with _qa_schedule(args, sqlite_db):
        assert "catching up 3 days" in capsys.readouterr().err
        for _ in range(100):  # the first tick runs at once, in a thread
            if samples(sqlite_db):
                break
            await asyncio.sleep(0.05)
    [(kind, day, by)] = samples(sqlite_db)
    assert (kind, day) == ("daily", two_days_ago) and by.startswith("qa-schedule:")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--qa-catch-up-days", "0"])
