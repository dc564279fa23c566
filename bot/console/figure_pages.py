"""The agent figures of a day on a page: `/agent/figures` (the agent's own, with the calls
they took and their dispositions, which they may change) and `/supervisor/agents` (every
agent and the team).  The figures are bot/agents/report.py's `agent_figures`, the same as
`waihu report --agents --day D`, with the day counted in the console's time zone.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import select

from bot.agents.figures import day_span
from bot.agents.handback import RETURNED
from bot.agents.report import agent_figures
from bot.console.access import PAGE_ROLES
from bot.console.context import console, user_of
from bot.console.dispositions import UNPROVEN_SALE, UNPROVEN_SALE_NOTICE
from bot.console.security import allow
from bot.console.views import render
from bot.privacy import mask_phone
from bot.store import Database
from bot.store.ledger import ConsentLedger
from bot.store.models import Campaign, Contact, Disposition, Escalation, EscalationOffer

NOTICES = {"changed": "处理结果已修改 The disposition is changed.",
           "recorded": "处理结果已保存 The disposition is saved.",
           UNPROVEN_SALE: UNPROVEN_SALE_NOTICE}


def parse_day(text: str | None, today: date) -> date:
    if not text:
        return today
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"日期无效 not a date (YYYY-MM-DD): {text[:20]!r}") from None


def day_figures(db: Database, day: date, zone: ZoneInfo, now: datetime) -> dict[str, Any]:
    with db.session() as session:
        return agent_figures(session, day, zone, now)


def calls_of_day(db: Database, agent_id: int, day: date, zone: ZoneInfo
                 ) -> list[dict[str, Any]]:
    """The calls the agent took on *day*, with what they recorded, in order; whether they
    handed each back to the bot and whether the ledger holds the customer's consent (what
    a recorded sale needs)."""
    start, end = day_span(day, zone)
    with db.session() as session:
        rows = session.execute(
            select(EscalationOffer, Escalation, Contact.phone, Contact.name, Campaign.name,
                   Disposition)
            .join(Escalation, Escalation.id == EscalationOffer.escalation_id)
            .join(Contact, Contact.id == Escalation.contact_id)
            .join(Campaign, Campaign.id == Escalation.campaign_id)
            .outerjoin(Disposition, Disposition.escalation_id == Escalation.id)
            .where(EscalationOffer.agent_id == agent_id, EscalationOffer.outcome == "accepted",
                   EscalationOffer.offered_at >= start, EscalationOffer.offered_at < end)
            .order_by(EscalationOffer.offered_at, EscalationOffer.id)).all()
        consented = ConsentLedger(session).consented_calls(e.call_id for _, e, *_ in rows)
        return [{"escalation_id": escalation.id, "call_id": escalation.call_id,
                 "campaign": campaign, "reason": escalation.reason, "customer": name,
                 "phone": mask_phone(phone), "taken_at": offer.answered_at or offer.offered_at,
                 "disposition": disposition.disposition if disposition else None,
                 "notes": disposition.notes if disposition else None,
                 "callback_at": disposition.callback_at if disposition else None,
                 "wrap_up_s": disposition.wrap_up_s if disposition else None,
                 "handed_back": escalation.status == RETURNED,
                 "consent_in_ledger": escalation.call_id in consented}
                for offer, escalation, phone, name, campaign, disposition in rows]


def _today(request: web.Request) -> tuple[ZoneInfo, datetime, date]:
    c = console(request)
    zone = ZoneInfo(c.settings.timezone)
    now = c.clock()
    return zone, now, now.astimezone(zone).date()


async def own_figures_page(request: web.Request, *, status: int = 200,
                           error: str | None = None) -> web.Response:
    """The agent's figures of the day asked for (``?day=``, or the form's ``day`` when a
    change of a disposition is refused)."""
    c = console(request)
    user = user_of(request)
    zone, now, today = _today(request)
    text = request.query.get("day")
    if request.method == "POST":
        text = str((await request.post()).get("day", "")) or None
    try:
        day = parse_day(text, today)
    except ValueError as exc:
        day, status, error = today, 400, str(exc)
    figures = await c.run(day_figures, c.db, day, zone, now)
    mine = next((row for row in figures["agents"] if row["agent_id"] == user.id), None)
    calls = await c.run(calls_of_day, c.db, user.id, day, zone) if user.agent else []
    return await render(request, "agent_figures.html", page="agent", figures=figures,
                        row=mine, calls=calls, day=day, today=today, error=error,
                        notice=None if error else NOTICES.get(request.query.get("done", "")),
                        notice_warn=request.query.get("done") == UNPROVEN_SALE,
                        is_agent=user.agent is not None, status=status)


@allow(*PAGE_ROLES["agent"])
async def own_figures(request: web.Request) -> web.StreamResponse:
    return await own_figures_page(request)


@allow(*PAGE_ROLES["supervisor"])
async def team_figures(request: web.Request) -> web.StreamResponse:
    c = console(request)
    zone, now, today = _today(request)
    status, error = 200, None
    try:
        day = parse_day(request.query.get("day"), today)
    except ValueError as exc:
        day, status, error = today, 400, str(exc)
    figures = await c.run(day_figures, c.db, day, zone, now)
    return await render(request, "supervisor_agents.html", page="supervisor",
                        figures=figures, day=day, today=today, error=error, status=status)


# --- how the figures are printed (template filters) --------------------------------------


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def secs(value: float | None) -> str:
    if value is None:
        return "—"
    whole = int(round(value))
    return f"{whole // 60}:{whole % 60:02d}" if whole >= 60 else f"{whole} s"


def span(value: float | None) -> str:
    """A stretch of time: seconds, minutes or hours, whichever reads best."""
    if value is None:
        return "—"
    if value < 60:
        return f"{value:.0f} s"
    return f"{value / 60:.0f} min" if value < 3600 else f"{value / 3600:.1f} h"


def number(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


FILTERS = {"pct": pct, "secs": secs, "span": span, "number": number}
