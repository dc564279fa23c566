"""Benchmark the supervisors' live wall (issue 15): how often it reads the database, with N
calls in progress, when it reads on every second (before) and when it follows the event
bus with a slow safety poll (after; bot/console/wall.py).

One open wall (a page's queue) on a fresh SQLite file; N calls holding a dialler lease.
For `--seconds`, each call says something every `--turn-every` seconds (staggered), as the
gateway in this process does: the customer's turn stored by a writer of its own (its
statements are not counted), then `turn.customer`, `turn.classified` and `turn.bot`
published on the console's bus.  Counted: the wall's reads and the SQL statements its
engine ran, per second.  Prints one JSON document (a row per mode and number of calls).

    .venv/bin/python bench/wall.py [--calls 0,5,20,50] [--seconds 20] [--turn-every 4]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bot import callrecord, events, transcript
from bot.accounts import Passwords
from bot.console.context import Console
from bot.console.settings import ConsoleSettings
from bot.console.throttle import AddressThrottle
from bot.console.wall import Wall
from bot.events import InProcessBus, call_event
from bot.store import CallRepo, CampaignRepo, ContactRepo, Database

MODES = {"before": (1.0, 0.0), "after": (None, None)}  # (safety poll, min gap); None: as built


def seed(db: Database, calls: int, now: datetime) -> list[str]:
    with db.session() as session:
        campaign = CampaignRepo(session).add("bench-wall", "marketing",
                                             {"name": "bench-wall"}, "a" * 64)
        ids = []
        for n in range(calls):
            contact = ContactRepo(session).add(campaign.id, f"139{n:08d}", name="客户")
            attempt = CallRepo(session).start_attempt(
                campaign.id, contact.id, gateway="gw-1", at=now,
                lease_expires_at=now + timedelta(hours=1))
            callrecord.record_dial_result(session, attempt.call_id, "answered", now)
            ids.append(attempt.call_id)
        return ids


async def measure(url: str, calls: list[str], mode: str, seconds: float,
                  turn_every: float) -> dict[str, Any]:
    db = Database(url)
    writer = Database(url)
    statements = 0

    def count(*_args: Any) -> None:
        nonlocal statements
        statements += 1
    event.listen(db.engine, "before_cursor_execute", count)
    bus = InProcessBus()
    console = Console(ConsoleSettings(), db, bus, Passwords(), AddressThrottle(
        5, timedelta(minutes=1)), lambda: datetime.now(UTC))
    wall = Wall(console)
    safety, gap = MODES[mode]
    if safety is not None and gap is not None:
        wall.safety_poll_s, wall.min_gap_s = safety, gap
    published = 0

    async def talk(call_id: str, delay: float) -> None:
        nonlocal published
        await asyncio.sleep(delay)
        while True:
            now = datetime.now(UTC)
            with writer.session() as session:
                transcript.store_turn(session, call_id, "customer", "嗯可以", started_at=now)
            for name in (events.TURN_CUSTOMER, events.TURN_CLASSIFIED, events.TURN_BOT):
                bus.publish(call_event(name, call_id, now))
                published += 1
            await asyncio.sleep(turn_every)

    with wall.following() as queue:
        await wall.refresh()
        reads0, statements0 = wall.reads, statements
        tasks = [asyncio.create_task(wall.run())]
        tasks += [asyncio.create_task(talk(c, turn_every * i / max(1, len(calls))))
                  for i, c in enumerate(calls)]
        started = time.monotonic()
        await asyncio.sleep(seconds)
        elapsed = time.monotonic() - started
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        walls = queue.qsize()
    db.dispose()
    writer.dispose()
    return {"mode": mode, "calls": len(calls), "seconds": round(elapsed, 1),
            "events_per_s": round(published / elapsed, 1),
            "reads_per_s": round((wall.reads - reads0) / elapsed, 2),
            "queries_per_s": round((statements - statements0) / elapsed, 1),
            "walls_sent": walls}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", default="0,5,20,50")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--turn-every", type=float, default=4.0)
    args = parser.parse_args()
    rows = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(x) for x in args.calls.split(",")):
            for mode in MODES:
                path = Path(tmp) / f"wall-{n}-{mode}.db"
                url = f"sqlite:///{path}"
                setup = Database(url)
                setup.upgrade()
                calls = seed(setup, n, datetime.now(UTC))
                setup.dispose()
                rows.append(await measure(url, calls, mode, args.seconds, args.turn_every))
    print(json.dumps({"rows": rows, "load_before": load_before,
                      "load_after": os.getloadavg()}, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
