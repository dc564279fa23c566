"""Benchmark the agent desk (issue 14 item 8): how fast an offer pops and the live
transcript follows, with many agent pages open.

The console runs as its own process (`waihu console` on a free 127.0.0.1 port) on a fresh
SQLite database, or on the PostgreSQL database given with --database (the run's agents,
campaign and calls have names of their own, so a used database does too).  50 agents serve
one campaign; each is logged in with its own browser context in one headless Chromium, on
/agent, available.  Then 20 calls are played as the voice gateway plays them, without SIP
(bench/consolebench/gateway.py): handed over and offered at random moments within the
first 10 s, their offers read back every 100 ms, turns stored every 1-2 s for 30 s,
then withdrawn.  Each page notes on this machine's wall clock when an offer's pop and each
turn enter its DOM (bench/consolebench/probe.js, a MutationObserver), and when the next
frame starts; the bench compares with the wall clock at each commit.  Prints one JSON
document:

- offer_latency_ms: the offer's commit -> the pop in the chosen agent's page;
- transcript_lag_ms: a turn's commit (after the offer) -> its text on that agent's desk;
  each {p50, p95, n, max, missing, to_next_frame, to_message}; targets p95 <= 300 ms
  (to_message: the commit -> the WebSocket message that brought the offered presence or the
  turn to the page, the console's share of the latency);
- shown_elsewhere: offers or turns that appeared on another agent's page (must be 0);
- the console process's peak RSS (whole run, logins included, and during the calls) and
  its CPU during the calls, the machine's load average before and after, the machine's
  CPU use during the calls and the browsers' share of it (machine_during_calls),
  and how far the pages' clock was from the bench's (page_minus_bench_ms_median).

Before the calls, the bench waits (up to --settle-s) until the machine's CPU use falls
below 20 %: the 50 logins hash passwords and load pages, which would otherwise still be
running when the first offers are made (`settle` says how long it waited).

    .venv/bin/python bench/console.py [--agents 50] [--calls 20] [--rounds 1]
                                      [--call-seconds 30] [--database URL] [--settle-s 60]

With --rounds N the calls are played N times (new calls; equal_share offers each round
to the agents offered least).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder comes first on sys.path and would shadow `bot`.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))

from playwright.async_api import async_playwright  # noqa: E402

from bench.consolebench import gateway, machine, pages, world  # noqa: E402
from bench.consolebench.measure import (  # noqa: E402
    clock_offset,
    offer_lags,
    shown_elsewhere,
    turn_lags,
)
from bot.console import live_turns, watch  # noqa: E402
from bot.console.settings import ConsoleSettings  # noqa: E402

TARGET_P95_MS = 300
STAGGER_S = 10.0
SETTLED_BELOW_PCT = 20.0


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def sample_rss(console: world.ConsoleProcess, peak: list[float]) -> None:
    """The console's largest RSS while the calls run (its VmHWM also counts the logins,
    whose password hashing takes 64 MB each)."""
    while True:
        peak[0] = max(peak[0], console.status("VmRSS"))
        await asyncio.sleep(0.25)


async def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    tag = secrets.token_hex(2)
    campaign = f"console-bench-{tag}"
    env = world.own_keys(work)
    os.environ.update(env)  # this process hashes ID digits with the same pepper
    db = world.fresh_database(args.database, work)
    database_url = db.url.render_as_string(hide_password=False)
    world.add_campaign(db, campaign)
    agents = world.add_agents(db, tag, args.agents, campaign)
    by_id = {a.user_id: a for a in agents}
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=2 * args.calls + 4, thread_name_prefix="gateway"))
    played = gateway.Played()
    out: dict[str, Any] = {}
    with world.console(database_url, env, work / "console.log") as console:
        async with async_playwright() as driver:
            browser = await pages.launch(driver)
            started = time.monotonic()
            desks = await pages.open_desks(browser, console.url, agents)
            out["login_s"] = round(time.monotonic() - started, 1)
            await asyncio.sleep(2)  # the watcher has published everyone's presence
            out["settle"] = await machine.settle(args.settle_s, SETTLED_BELOW_PCT)
            load_before, cpu_before = load(), console.cpu_s()
            box_before = machine.read()
            rss_in_calls = [0.0]
            sampler = asyncio.create_task(sample_rss(console, rss_in_calls))
            began = time.monotonic()
            for round_no in range(args.rounds):
                calls = world.add_waiting_calls(db, campaign, args.calls,
                                                13900000000 + round_no * 1000)
                await gateway.play_round(db, calls, stagger_s=STAGGER_S,
                                         talk_s=args.call_seconds, seed=round_no,
                                         played=played)
                await asyncio.sleep(1.5)  # the last withdrawals reach the desks
            seconds = time.monotonic() - began
            cpu = console.cpu_s() - cpu_before
            box = machine.read()
            out["machine_during_calls"] = {
                "cpu_busy_pct": box.busy_pct_since(box_before),
                "browsers_cpu_pct": box.browsers_pct_since(box_before, seconds)}
            sampler.cancel()
            out["load_average"] = {"before": load_before, "after": load()}
            notes = {d.agent.user_id: await pages.notes_of(d) for d in desks}
            clock = [await pages.clock_reading(d) for d in desks]
            out["all_available_after"] = await pages.all_available(desks)
            out["console"] = {"peak_rss_mb": round(console.status("VmHWM"), 1),
                              "peak_rss_mb_during_calls": round(rss_in_calls[0], 1),
                              "rss_mb_end": round(console.status("VmRSS"), 1),
                              "cpu_s": round(cpu, 1),
                              "cpu_pct_of_one_core": round(100 * cpu / seconds, 1)}
            await browser.close()
    db.dispose()
    offers, turns = offer_lags(played.offers, notes), turn_lags(played.turns, notes)
    assert set(by_id) >= {o.agent_id for o in played.offers}
    return {
        "offer_latency_ms": offers.summary(),
        "transcript_lag_ms": turns.summary(),
        "targets": {"p95_ms": TARGET_P95_MS,
                    "offer_ok": (offers.summary()["p95"] or 1e9) <= TARGET_P95_MS
                    and offers.missing == 0,
                    "transcript_ok": (turns.summary()["p95"] or 1e9) <= TARGET_P95_MS
                    and turns.missing == 0},
        "offers_made": len(played.offers), "turns_stored": len(played.turns),
        "not_offered": played.not_offered, "errors": played.errors[:5],
        "shown_elsewhere": shown_elsewhere(played.offers, notes),
        "measured_s": round(seconds, 1), **out,
        "clock": clock_offset(clock),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--calls", type=int, default=20, help="calls at once, per round")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--call-seconds", type=float, default=30.0,
                        help="how long each call talks after its offer")
    parser.add_argument("--database", help="SQLAlchemy URL (default: a fresh SQLite file)")
    parser.add_argument("--settle-s", type=float, default=60.0,
                        help="after the logins, wait up to this long for the machine's CPU "
                             f"use to fall below {SETTLED_BELOW_PCT}%% (0: do not wait)")
    args = parser.parse_args()
    if args.calls > args.agents:
        parser.error("--calls may not exceed --agents (each call rings one agent)")
    if not pages.CHROMIUM.exists():
        parser.error(f"{pages.CHROMIUM} is missing (make setup installs Debian's chromium)")
    with tempfile.TemporaryDirectory(prefix="console-bench-") as tmp:
        figures = asyncio.run(run(args, Path(tmp)))
    settings = ConsoleSettings()
    print(json.dumps({
        "benchmark": "console desk", "date": time.strftime("%Y-%m-%d"),
        "command": " ".join(["bench/console.py", *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "config": {"agents": args.agents, "calls": args.calls, "rounds": args.rounds,
                   "call_seconds": args.call_seconds, "stagger_s": STAGGER_S,
                   "settle_s": args.settle_s,
                   "turn_every_s": [1.0, 2.0],
                   "database": "postgresql" if args.database and args.database.startswith(
                       "postgresql") else "sqlite",
                   "console_polls_s": {"offers": watch.OFFER_POLL_S,
                                       "turns": live_turns.TURN_POLL_S,
                                       "desk_full_round": settings.desk_poll_s},
                   "gateway_offer_poll_s": gateway.GATEWAY_POLL_S},
        **figures,
    }, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
