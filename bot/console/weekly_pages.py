"""The weekly client summary in the console (issue 15 item 7): `/supervisor/weekly` shows
the week's report (the same :class:`~bot.reports.document.Report` as the files) and
downloads it as PDF or XLSX.  The figures come from `waihu report --period weekly`'s own
code (bot/reports/command.py `make_figures`), so the page, the files and the command line
agree, time zone and days included.  Roles: supervisor, admin.
"""

from __future__ import annotations

import argparse
import io
import logging
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.console.access import PAGE_ROLES
from bot.console.context import console, user_of
from bot.console.security import allow
from bot.console.views import render
from bot.reports import command
from bot.store import CampaignRepo, Database

log = logging.getLogger("waihu.console")
FILE_TYPES = {"pdf": "application/pdf",
              "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def _args(monday: date, campaign: str | None) -> argparse.Namespace:
    """The arguments `waihu report --period weekly --week … [--campaign …]` parses to."""
    return argparse.Namespace(
        campaign=campaign, campaign_option=None, all_campaigns=False, agents=False,
        period="weekly", week=monday, from_day=None, to_day=None, date=None, tz=None,
        format="json", output=None)


def _build(db: Database, monday: date, campaign: str | None, fmt: str | None,
           now: datetime) -> tuple[Any, str, bytes | None]:
    """The week's Report, its file-name stem and, for *fmt*, the file's bytes."""
    from bot.reports.export import report_for, write_pdf, write_xlsx

    figures, stem = command.make_figures(db, _args(monday, campaign), now)
    report = report_for(figures)
    if fmt is None:
        return report, stem, None
    out = io.BytesIO()
    (write_pdf if fmt == "pdf" else write_xlsx)(report, out)
    return report, stem, out.getvalue()


def _campaigns(db: Database) -> list[str]:
    with db.session() as session:
        return sorted(c.name for c in CampaignRepo(session).list())


def _asked(request: web.Request) -> tuple[date, str | None, str | None]:
    """The week (default: the last whole week in the console's time zone), the campaign
    (None: every campaign) and what is wrong with the request, if anything."""
    c = console(request)
    today = c.clock().astimezone(ZoneInfo(c.settings.timezone)).date()
    last_week = today - timedelta(days=today.weekday() + 7)
    campaign = request.query.get("campaign") or None
    text = request.query.get("week")
    if not text:
        return last_week, campaign, None
    try:
        return command.iso_week(text), campaign, None
    except argparse.ArgumentTypeError:
        return last_week, campaign, f"周无效 Not an ISO week (YYYY-Www): {text[:20]!r}"


@allow(*PAGE_ROLES["supervisor"])
async def weekly_page(request: web.Request) -> web.StreamResponse:
    c = console(request)
    monday, campaign, error = _asked(request)
    names = await c.run(_campaigns, c.db)
    try:
        report, _stem, _ = await c.run(_build, c.db, monday, campaign, None, c.clock())
    except command.ReportError as exc:
        report, error, campaign = None, str(exc), None
    from bot.reports.document import format_value

    year, week, _ = monday.isocalendar()
    return await render(request, "supervisor_weekly.html", page="supervisor",
                        status=400 if error else 200, error=error, report=report,
                        week=f"{year}-W{week:02d}", campaign=campaign, campaigns=names,
                        fmt=format_value)


@allow(*PAGE_ROLES["supervisor"])
async def weekly_file(request: web.Request) -> web.StreamResponse:
    c = console(request)
    fmt = request.match_info["fmt"]
    monday, campaign, error = _asked(request)
    if error:
        raise web.HTTPNotFound(reason=error)
    from bot.reports.charts import NoCjkFont

    try:
        _, stem, body = await c.run(_build, c.db, monday, campaign, fmt, c.clock())
    except command.ReportError as exc:
        raise web.HTTPNotFound(reason=str(exc)) from exc
    except NoCjkFont as exc:
        raise web.HTTPServiceUnavailable(text=f"cannot draw the charts: {exc}") from exc
    log.info("console.weekly_report by=%s week=%s campaign=%s format=%s",
             user_of(request).username, monday.isoformat(), campaign, fmt)
    name = f"{stem}.{fmt}"
    # An ASCII name for old clients, the real one (a campaign may be named in Chinese)
    # percent-encoded (RFC 6266).
    plain = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "_"
                    for ch in name)
    return web.Response(body=body, content_type=FILE_TYPES[fmt], headers={
        "Content-Disposition": f"attachment; filename=\"{plain}\"; "
                               f"filename*=UTF-8''{quote(name, safe='')}"})


ROUTES = [
    web.get("/supervisor/weekly", weekly_page),
    web.get(r"/supervisor/weekly/report.{fmt:pdf|xlsx}", weekly_file),
]
