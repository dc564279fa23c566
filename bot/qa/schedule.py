"""Scheduled QA draws (issue 15 item 3): `waihu run` draws every campaign's samples itself.

Shortly after midnight in each campaign's time zone (at 01:00: midnight plus
:data:`bot.qa.sampling.SETTLE`, the hour a call still going at midnight has to end) the
scheduler draws the day just over's daily sample, and on Mondays the week just over's
weekly sample.  On start, and at each wake, it also draws any sample of the last
``catch_up_days`` local days that is missing (the service was down at midnight, the
database did not answer), so the draws catch up by themselves; older periods are left to
`waihu qa sample --day`.

Several machines may run `waihu run` at once: :func:`bot.qa.sampling.draw_sample` is
idempotent, and two draws of the same sample at the same moment cannot both be stored
(the unique constraint on campaign, kind and period; the loser returns the winner's).
Each draw is logged by bot/qa/sampling.py (``qa.sample_drawn``: campaign, kind, period,
population, drawn count, seed); the scheduler logs its wakes and failures.

The clock is injected (*clock* for the time, *wait* for sleeping) so that tests run days
in milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from bot.qa.population import local_bounds, qa_settings
from bot.qa.sampling import SETTLE, Kind, SampleResult, SamplingRefused, draw_sample
from bot.store import Database
from bot.store.base import utcnow
from bot.store.models import Campaign

log = logging.getLogger("waihu.qa")

CATCH_UP_DAYS = 7  # at least 7: the last whole week is then always caught up too
# Look again at least this often: a campaign added or its time zone changed, a draw that
# failed while the database was away.
MAX_WAIT = timedelta(hours=1)

Wait = Callable[[asyncio.Event, float], Awaitable[None]]


@dataclass(frozen=True)
class DueDraw:
    campaign: str
    kind: Kind
    day: date  # the period's first day (a weekly period's Monday)


def last_day_over(zone: ZoneInfo, now: datetime) -> date:
    """The latest local day of *zone* that is over, plus SETTLE, at *now*."""
    return (now - SETTLE).astimezone(zone).date() - timedelta(days=1)


def due_draws(campaign: str, zone: ZoneInfo, now: datetime,
              catch_up_days: int = CATCH_UP_DAYS) -> list[DueDraw]:
    """The samples of *campaign* that may be drawn at *now*, oldest first: the daily ones
    of the last *catch_up_days* local days over, then the weekly ones of the weeks ending
    (on a Sunday) among those days."""
    last = last_day_over(zone, now)
    days = [last - timedelta(days=n) for n in range(catch_up_days - 1, -1, -1)]
    return ([DueDraw(campaign, "daily", day) for day in days]
            + [DueDraw(campaign, "weekly", day - timedelta(days=6))
               for day in days if day.weekday() == 6])


def next_due_at(zone: ZoneInfo, now: datetime) -> datetime:
    """When the local day going on at *now* (or just over, within SETTLE) may be drawn."""
    day = last_day_over(zone, now) + timedelta(days=1)
    return local_bounds(day, day, zone)[1] + SETTLE


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max(seconds, 0.0))


def default_actor() -> str:
    return f"qa-schedule:{socket.gethostname()}"[:100]


class QaScheduler:
    """Draws the due samples of every campaign (:meth:`tick`) and sleeps until the next
    local day of some campaign is over (:meth:`run`)."""

    def __init__(self, db: Database, *, catch_up_days: int = CATCH_UP_DAYS,
                 drawn_by: str | None = None, clock: Callable[[], datetime] = utcnow,
                 wait: Wait = wait_or_stop) -> None:
        if catch_up_days < 1:
            raise ValueError("catch_up_days must be at least 1")
        self.db = db
        self.catch_up_days = catch_up_days
        self.drawn_by = drawn_by or default_actor()
        self.clock = clock
        self.wait = wait
        self.zones: dict[str, ZoneInfo] = {}  # the campaigns seen at the last tick
        self.done: set[DueDraw] = set()  # drawn or found stored: not asked for again

    def campaigns(self) -> dict[str, ZoneInfo]:
        """Each campaign's time zone; a campaign whose settings cannot be read is left out
        (and logged) rather than stopping the others' draws."""
        zones: dict[str, ZoneInfo] = {}
        with self.db.session() as session:
            for campaign in session.scalars(select(Campaign).order_by(Campaign.name)):
                try:
                    zones[campaign.name] = qa_settings(campaign).zone
                except (ValueError, KeyError) as exc:
                    log.error("qa.schedule_skipped campaign=%s error=%s", campaign.name, exc)
        return zones

    def tick(self, now: datetime) -> list[SampleResult]:
        """Draw every sample due at *now* not drawn by this scheduler yet; a draw that
        fails is tried again at the next tick."""
        try:
            self.zones = self.campaigns()
        except SQLAlchemyError as exc:
            log.error("qa.schedule_unavailable error=%s", exc)
            return []
        due = [d for name, zone in self.zones.items()
               for d in due_draws(name, zone, now, self.catch_up_days)]
        results = []
        for draw in due:
            if draw in self.done:
                continue
            try:
                results.append(draw_sample(self.db, draw.campaign, draw.kind, draw.day,
                                           now=now, drawn_by=self.drawn_by))
            except SamplingRefused as exc:
                log.warning("qa.schedule_refused campaign=%s kind=%s period=%s reason=%s",
                            draw.campaign, draw.kind, draw.day, exc)
                continue
            except SQLAlchemyError as exc:
                log.error("qa.schedule_failed campaign=%s kind=%s period=%s error=%s",
                          draw.campaign, draw.kind, draw.day, exc)
                continue
            self.done.add(draw)
        self.done &= set(due)  # forget what slid out of the window
        fresh = [r for r in results if r.fresh]
        if fresh:
            log.info("qa.schedule_tick drawn=%d already_drawn=%d",
                     len(fresh), len(results) - len(fresh))
        return results

    def next_wake(self, now: datetime) -> datetime:
        return min([next_due_at(zone, now) for zone in self.zones.values()]
                   + [now + MAX_WAIT])

    async def run(self, stop: asyncio.Event) -> None:
        """Tick, then wait for the next local midnight (plus SETTLE), until *stop*."""
        log.info("qa.schedule_started by=%s catch_up_days=%d", self.drawn_by,
                 self.catch_up_days)
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.tick, self.clock())
            except Exception:  # a bug in one draw must not end the schedule
                log.exception("qa.schedule_tick_failed")
            now = self.clock()
            wake = self.next_wake(now)
            log.debug("qa.schedule_sleep until=%s", wake.isoformat())
            await self.wait(stop, (wake - now).total_seconds())


@contextlib.asynccontextmanager
async def scheduled_draws(db: Database, *, catch_up_days: int = CATCH_UP_DAYS,
                          scheduler: QaScheduler | None = None) -> AsyncIterator[QaScheduler]:
    """The scheduler running in the background while the block runs (`waihu run`); at
    exit it stops after the draw in progress, if any."""
    scheduler = scheduler or QaScheduler(db, catch_up_days=catch_up_days)
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop), name="qa-schedule")
    try:
        yield scheduler
    finally:
        stop.set()
        await task
