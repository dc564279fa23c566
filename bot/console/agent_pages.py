"""The agent desk, `/agent`: the agent's presence and its buttons, the call in their hand
(the offer's buttons: listen first, take over, decline), and the disposition form of
after-call work.

Plain forms (with the CSRF token) that redirect back to the desk; a change the desk
refuses (bot/agents/presence.py says why) comes back as the desk with the reason, 409.
Each change is published on the hub at once, for the agent's other pages and the
supervisors'.  When the agent's presence changes, the desk's script draws an offer from
its message (the pop travels in it: desk_state.pop_message, drawn into the page's
``<template>`` copies of the same macros) and reloads its live part for any other change
(a call ended by the gateway, a wrap-up that ran out).
"""

from __future__ import annotations

import logging
from datetime import date
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.agents.desk import DeskRefused
from bot.agents.handback import HandBackRefused
from bot.agents.presence import PresenceRefused
from bot.console import desk_state, dispositions, offers
from bot.console.access import PAGE_ROLES
from bot.console.context import client_address, console, user_of
from bot.console.figure_pages import own_figures_page
from bot.console.security import allow
from bot.console.views import render

log = logging.getLogger("waihu.console")
NOTICES = {
    "recorded": "处理结果已保存 The disposition is saved.",
    "changed": "处理结果已修改 The disposition is changed.",
    "listen": "正在监听：话机振铃后可听到通话，客户听不到您。"
              "Listening: your phone rings; the customer cannot hear you.",
    "accept": "已接听：话机接通后与客户通话。Taken: you talk to the customer on your phone.",
    "decline": "已拒接 Declined.",
    dispositions.UNPROVEN_SALE: dispositions.UNPROVEN_SALE_NOTICE,
    "handback": "已交回机器人：机器人向客户复述并请客户确认办理，您的话机将挂断。"
                "Handed back: the bot reads the sale back and asks the customer to confirm; "
                "your phone hangs up.",
}


async def desk_page(request: web.Request, *, status: int = 200, error: str | None = None,
                    form: dict[str, str] | None = None) -> web.Response:
    c = console(request)
    user = user_of(request)
    view = (await c.run(desk_state.desk_view, c.db, user.id, c.clock())
            if user.agent is not None else None)
    done = request.query.get("done", "")
    return await render(request, "agent.html", page="agent", agent=user.agent, view=view,
                        error=error, notice=None if error else NOTICES.get(done),
                        notice_warn=done == dispositions.UNPROVEN_SALE, form=form or {},
                        timezone=c.settings.timezone, status=status)


@allow(*PAGE_ROLES["agent"])
async def agent_page(request: web.Request) -> web.StreamResponse:
    return await desk_page(request)


def refusal(exc: Exception) -> str:
    if isinstance(exc, PresenceRefused):
        return f"现在不能这样操作 Not now: {exc}"
    return str(exc)


@allow(*PAGE_ROLES["agent"])
async def change_presence(request: web.Request) -> web.StreamResponse:
    c = console(request)
    user = user_of(request)
    form = await request.post()
    try:
        event = desk_state.presence_event(str(form.get("action", "")),
                                          str(form.get("reason", "")) or None)
        message = await c.run(desk_state.change, c.db, user.id, event, c.clock())
    except (PresenceRefused, DeskRefused) as exc:
        return await desk_page(request, status=409, error=refusal(exc))
    except ValueError as exc:
        return await desk_page(request, status=400, error=str(exc))
    c.hub.publish(message)
    log.info("console.presence user=%s state=%s reason=%s", user.username, message["state"],
             message["reason"])
    raise web.HTTPSeeOther("/agent")


@allow("agent")
async def answer_offer(request: web.Request) -> web.StreamResponse:
    """An offer's button: only the agent it is offered to (another's: 403)."""
    c = console(request)
    user = user_of(request)
    offer_id, action = int(request.match_info["offer_id"]), request.match_info["action"]
    try:
        answered = await c.run(offers.answer, c.db, user, offer_id, action, c.clock(),
                                client_address(request))
    except offers.NotYourOffer:
        log.warning("console.offer_refused user=%s offer=%d", user.username, offer_id)
        raise web.HTTPForbidden(reason="not your offer") from None
    except (PresenceRefused, DeskRefused, ValueError) as exc:
        return await desk_page(request, status=409, error=refusal(exc))
    if answered.presence is not None:
        c.hub.publish(answered.presence)
    log.info("console.offer_answered user=%s offer=%d action=%s call_id=%s", user.username,
             offer_id, action, answered.call_id)
    raise web.HTTPSeeOther(f"/agent?done={action}")


@allow("agent")
async def hand_back(request: web.Request) -> web.StreamResponse:
    """"交回机器人确认办理": only the agent on the call of their accepted offer (another's:
    403); the bot then reads the sale back to the customer and asks them to confirm."""
    c = console(request)
    user = user_of(request)
    offer_id = int(request.match_info["offer_id"])
    try:
        done = await c.run(offers.hand_back, c.db, user, offer_id, c.clock(),
                           client_address(request))
    except offers.NotYourOffer:
        log.warning("console.handback_refused user=%s offer=%d", user.username, offer_id)
        raise web.HTTPForbidden(reason="not your call") from None
    except HandBackRefused as exc:
        return await desk_page(request, status=409, error=refusal(exc))
    log.info("console.handed_back user=%s offer=%d call_id=%s", user.username, offer_id,
             done.call_id)
    raise web.HTTPSeeOther("/agent?done=handback")


@allow(*PAGE_ROLES["agent"])
async def record_disposition(request: web.Request) -> web.StreamResponse:
    """The disposition form of the desk (after-call work) and of the figures page (a
    change): back to the page it came from."""
    c = console(request)
    user = user_of(request)
    form = await request.post()
    fields = {key: str(form.get(key, "")) for key in
              ("escalation_id", "disposition", "notes", "callback_at", "day", "from")}
    from_figures = fields["from"] == "figures"
    try:
        parsed = dispositions.parse_form(form, ZoneInfo(c.settings.timezone))
        saved = await c.run(dispositions.save, c.db, user.id, user.username, parsed,
                            c.clock())
    except (PresenceRefused, DeskRefused, ValueError) as exc:
        status = 409 if isinstance(exc, DeskRefused | PresenceRefused) else 400
        if from_figures:
            return await own_figures_page(request, status=status, error=refusal(exc))
        return await desk_page(request, status=status, error=refusal(exc), form=fields)
    if saved.presence is not None:
        c.hub.publish(saved.presence)
    log.info("console.disposition user=%s escalation=%s disposition=%s changed=%s "
             "unproven_sale=%s", user.username, parsed.escalation_id, saved.disposition,
             saved.changed, saved.unproven_sale)
    done = dispositions.UNPROVEN_SALE if saved.unproven_sale else "changed" if saved.changed \
        else "recorded"
    if from_figures:
        raise web.HTTPSeeOther(f"/agent/figures?{_day_query(fields['day'])}done={done}")
    raise web.HTTPSeeOther(f"/agent?done={done}")


def _day_query(day: str) -> str:
    try:
        return f"day={date.fromisoformat(day).isoformat()}&"
    except ValueError:
        return ""
