"""`waihu report`: campaign, daily and weekly reports in every export format.

Kept out of bot/cli.py so the command line only wires the arguments; importing this module
does not import matplotlib (only the file formats need it).
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.store import CampaignRepo, Database
from bot.store.db import REPO_ROOT

FORMATS = ("json", "text", "csv", "xlsx", "html", "pdf")
PERIOD_CHOICES = ("campaign", "daily", "weekly")
REPORTS_DIR = REPO_ROOT / "var" / "reports"


class ReportError(ValueError):
    """A report that cannot be made as asked; the message says why."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("campaign", nargs="?", help="campaign name (or --all, or --agents)")
    parser.add_argument("--all", action="store_true", dest="all_campaigns",
                        help="every campaign together (with --period daily or weekly)")
    parser.add_argument("--agents", action="store_true",
                        help="the agent figures of one day, per agent and for the team "
                        "(every campaign; json or text)")
    parser.add_argument("--format", choices=FORMATS, default="text")
    parser.add_argument("--json", action="store_const", const="json", dest="format",
                        help="the same as --format json")
    parser.add_argument("--period", choices=PERIOD_CHOICES, default="campaign",
                        help="the whole campaign (default), one local day, or the ISO week")
    parser.add_argument("--date", "--day", type=_iso_date, metavar="YYYY-MM-DD",
                        help="the day, or a day of the week (default: today in the time zone)")
    parser.add_argument("--week", type=iso_week, metavar="YYYY-Www",
                        help="the ISO week of --period weekly (e.g. 2026-W47)")
    parser.add_argument("--from", type=_iso_date, dest="from_day", metavar="YYYY-MM-DD",
                        help="with --to: the first and last day of --period weekly")
    parser.add_argument("--to", type=_iso_date, dest="to_day", metavar="YYYY-MM-DD")
    parser.add_argument("--campaign", dest="campaign_option", metavar="NAME",
                        help="the campaign (as the positional name); --period weekly without "
                        "one covers every campaign")
    parser.add_argument("--tz", metavar="ZONE", help="time zone of the days (default: the "
                        "campaign's; with --all the campaigns' if they share one, else "
                        "Asia/Shanghai)")
    parser.add_argument("--output", type=Path, metavar="PATH",
                        help="write the report here (default for csv/xlsx/html/pdf: "
                        "var/reports/<campaign>-<period>.<ext>); prints the path")


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def iso_week(text: str) -> date:
    """The Monday of an ISO week ``2026-W47``."""
    found = re.fullmatch(r"(\d{4})-?W(\d{2})", text.strip(), flags=re.IGNORECASE)
    try:
        if found is None:
            raise ValueError(text)
        return date.fromisocalendar(int(found.group(1)), int(found.group(2)), 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO week (YYYY-Www): {text!r}") from None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ReportError(f"unknown time zone {name!r} (e.g. Asia/Shanghai)") from None


def _check(args: argparse.Namespace) -> None:
    named = getattr(args, "campaign_option", None)
    if named:
        if args.campaign and args.campaign != named:
            raise ReportError("name the campaign once (positional or --campaign)")
        args.campaign = named
    _check_weeks(args)
    if getattr(args, "agents", False):
        if args.campaign or args.all_campaigns:
            raise ReportError("--agents covers every campaign: name none, and no --all")
        if args.period != "campaign":
            raise ReportError("--agents is a report of one day: --day, not --period")
        if args.format not in ("json", "text"):
            raise ReportError("--agents prints json or text")
        return
    # The weekly client summary of every campaign needs no --all.
    every = args.period == "weekly" and not args.campaign
    if args.all_campaigns == bool(args.campaign) and not every:
        raise ReportError("name one campaign, or use --all")
    if args.all_campaigns and args.period == "campaign":
        raise ReportError("--all needs --period daily or --period weekly")
    if args.period == "campaign" and (args.date or args.tz):
        raise ReportError("--date and --tz apply to --period daily and weekly")


def _check_weeks(args: argparse.Namespace) -> None:
    week, first, last = (getattr(args, k, None) for k in ("week", "from_day", "to_day"))
    if week is None and first is None and last is None:
        return
    if args.period != "weekly":
        raise ReportError("--week, --from and --to apply to --period weekly")
    if week is not None and (first or last or args.date):
        raise ReportError("give --week, or --from and --to, or --date: one of them")
    if week is None and (first is None or last is None or args.date):
        raise ReportError("--from and --to go together (and without --date)")
    if first is not None and last is not None and last < first:
        raise ReportError(f"--to {last} is before --from {first}")


def weekly_bounds(args: argparse.Namespace, today: date) -> tuple[date, date]:
    """The days of --period weekly: --week, --from/--to, else the ISO week of --date (or
    of *today*)."""
    from bot.reports.period import period_bounds

    if getattr(args, "week", None) is not None:
        return period_bounds("weekly", args.week)
    if getattr(args, "from_day", None) is not None:
        return args.from_day, args.to_day
    return period_bounds("weekly", args.date or today)


def _shared_zone(repo: CampaignRepo) -> ZoneInfo:
    """The campaigns' time zone if they share one, else the default."""
    from bot.reports.figures import DEFAULT_TIMEZONE, campaign_zone

    zones = {campaign_zone(c).key for c in repo.list()}
    return ZoneInfo(zones.pop() if len(zones) == 1 else DEFAULT_TIMEZONE)


def make_agent_figures(db: Database, args: argparse.Namespace,
                       now: datetime | None = None) -> tuple[dict[str, Any], str]:
    """The agent figures of the day asked for (default: today), and the file-name stem."""
    from bot.agents.report import agent_figures

    _check(args)
    moment = now or datetime.now(UTC)
    with db.session() as session:
        zone = _zone(args.tz) if args.tz else _shared_zone(CampaignRepo(session))
        day = args.date or moment.astimezone(zone).date()
        figures = agent_figures(session, day, zone, moment)
    return figures, f"agents-{day.isoformat()}"


def make_figures(db: Database, args: argparse.Namespace, now: datetime | None = None
                 ) -> tuple[dict[str, Any], str]:
    """The figures asked for and the file-name stem of the report; *now* (default: the
    clock) decides today and how far a week still going on is counted."""
    from bot.reports.figures import campaign_figures, campaign_zone
    from bot.reports.period import period_bounds, period_figures, period_label

    _check(args)
    with db.session() as session:
        repo = CampaignRepo(session)
        campaign = None
        if args.campaign:
            campaign = repo.by_name(args.campaign)
            if campaign is None:
                raise ReportError(f"no campaign named {args.campaign!r}")
        if args.period == "campaign":
            assert campaign is not None  # _check: a campaign is named without --all
            return campaign_figures(session, campaign), f"{campaign.name}-campaign"
        if args.tz:
            zone = _zone(args.tz)
        elif campaign is not None:
            zone = campaign_zone(campaign)
        else:
            zone = _shared_zone(repo)
        moment = now or datetime.now(UTC)
        day = args.date or moment.astimezone(zone).date()
        if args.period == "weekly":  # the weekly client summary (bot/reports/weekly.py)
            from bot.reports.weekly import weekly_figures

            start, end = weekly_bounds(args, moment.astimezone(zone).date())
            figures = weekly_figures(session, campaign=campaign, start=start, end=end,
                                     tz=zone, now=moment)
        else:
            start, end = period_bounds(args.period, day)
            figures = period_figures(session, campaign=campaign, start=start, end=end,
                                     tz=zone)
    name = campaign.name if campaign is not None else "all"
    return figures, f"{name}-{args.period}-{period_label(start, end)}"


def run(db: Database, args: argparse.Namespace) -> int:
    """Print json/text (or write them with --output); write the file formats and print
    their path.  Exit 2 with a message when the report cannot be made."""
    from bot.reports import export

    try:
        if getattr(args, "agents", False):
            return _print_agent_figures(db, args)
        figures, stem = make_figures(db, args)
        if args.output is None and args.format in ("json", "text"):
            print(export.render_json(figures) if args.format == "json"
                  else export.render_text(figures))
            return 0
        path = args.output or REPORTS_DIR / f"{stem}.{args.format}"
        from bot.reports.charts import NoCjkFont
        from bot.safefiles import UnsafeOutputPath

        try:
            export.export(figures, args.format, path)
        except NoCjkFont as exc:
            raise ReportError(f"cannot draw the charts: {exc}") from None
        except UnsafeOutputPath as exc:
            raise ReportError(str(exc)) from None
    except ReportError as exc:
        print(f"waihu report: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


def _print_agent_figures(db: Database, args: argparse.Namespace) -> int:
    from bot.agents.figures import format_agent_figures
    from bot.reports.export import render_json
    from bot.safefiles import UnsafeOutputPath, replacing

    figures, _stem = make_agent_figures(db, args)
    text = (render_json(figures, indent=2 if args.output else None) if args.format == "json"
            else format_agent_figures(figures))
    if args.output is None:
        print(text)
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    try:
        with replacing(args.output) as out:
            out.write((text + "\n").encode("utf-8"))
    except UnsafeOutputPath as exc:
        raise ReportError(str(exc)) from None
    print(args.output)
    return 0
