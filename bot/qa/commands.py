"""`waihu qa sample`: draw (or show, once drawn) the QA samples of a day or its week."""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime

from bot.cliutil import Subcommands, database, print_json, with_json
from bot.qa.sampling import SamplingRefused, draw_samples, verify_sample
from bot.store.base import utcnow
from bot.store.repos.audit import os_actor


def cmd_qa_sample(args: argparse.Namespace) -> int:
    try:
        day = date.fromisoformat(args.day)
    except ValueError:
        print(f"waihu qa sample: --day {args.day!r} is not YYYY-MM-DD", file=sys.stderr)
        return 2
    db = database(args)
    try:
        results = draw_samples(db, "weekly" if args.week else "daily", day, now=utcnow(),
                               drawn_by=os_actor(), campaign=args.campaign)
    except SamplingRefused as exc:
        print(f"waihu qa sample: {exc}", file=sys.stderr)
        return 2
    checks = {r.sample_id: verify_sample(db, r.sample_id)
              for r in results if args.verify and r.sample_id is not None}
    if args.json:
        body = [r.as_json() for r in results]
        for row in body:
            if row["sample_id"] in checks:
                row["verified"] = checks[row["sample_id"]].problems or True
        print_json(body)
    else:
        print(f"{'campaign':<24} {'kind':<7} {'period':<23} {'valid':>6} {'drawn':>6}  seed")
        for r in results:
            period = (r.period_start.isoformat() if r.period_start == r.period_end
                      else f"{r.period_start}..{r.period_end}")
            print(f"{r.campaign:<24} {r.kind:<7} {period:<23} {r.population_size:>6} "
                  f"{len(r.picks):>6}  {r.seed[:16] if r.stored else '-'}")
            check = None if r.sample_id is None else checks.get(r.sample_id)
            for problem in check.problems if check else ():
                print(f"  NOT RE-DERIVED: {problem}")
    return 1 if any(not c.ok for c in checks.values()) else 0


def add_qa_sample_command(qsub: Subcommands) -> None:
    sample = with_json(qsub.add_parser(
        "sample", help="draw the QA sample of a day's valid calls (or its week's, --week); "
        "drawing again shows the stored sample"))
    sample.add_argument("--day", required=True, help="YYYY-MM-DD: the day the calls were "
                        "made, in each campaign's time zone (with --week: a day of the week)")
    sample.add_argument("--campaign", help="one campaign (default: every campaign)")
    sample.add_argument("--week", action="store_true",
                        help="the supervisors' weekly sample (Monday to Sunday)")
    sample.add_argument("--verify", action="store_true",
                        help="draw each sample again from its record and report differences")
    sample.set_defaults(func=cmd_qa_sample)


def cmd_qa_complaints(args: argparse.Namespace) -> int:
    from bot.qa.complaints import complaint_list

    rows = complaint_list(database(args), utcnow(), args.status, args.overdue)
    if args.json:
        print_json([{**row, **{k: v.isoformat() for k, v in row.items()
                               if isinstance(v, datetime)}} for row in rows])
        return 0
    print(f"{'id':>5}  {'campaign':<20} {'number':<12} {'status':<10} {'severity':<8} "
          f"{'due':<17} decision")
    for row in rows:
        due = row["contact_due_at"] if row["status"] == "new" else row["resolve_due_at"]
        late = f" OVERDUE ({row['overdue']})" if row["overdue"] else ""
        print(f"{row['id']:>5}  {row['campaign']:<20} {row['phone']:<12} {row['status']:<10} "
              f"{row['severity']:<8} {due:%Y-%m-%d %H:%M} {row['decision'] or '-'}{late}")
    return 0


def add_qa_complaints_command(qsub: Subcommands) -> None:
    listing = with_json(qsub.add_parser(
        "complaints", help="the complaints and their handling (newest first)"))
    listing.add_argument("--status", choices=["new", "contacted", "resolved"])
    listing.add_argument("--overdue", action="store_true",
                         help="only those past their contact or resolve deadline")
    listing.set_defaults(func=cmd_qa_complaints)
