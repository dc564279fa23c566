"""The recording library's pages (issue 15 item 6): `/qa/library` lists the calls kept for
training, by kind (exemplary, problem) and tag, each opening on its review page where the
recording plays; the review page's form marks a call or takes it out.  Roles: qa,
supervisor, admin.  The services are in bot/qa/library.py; the guard (auth.py) has checked
the role and the CSRF token of the POSTs.
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.console import qa_pages
from bot.console.context import console, user_of
from bot.console.security import allow
from bot.console.views import render
from bot.qa import library, review

log = logging.getLogger("waihu.console")
NOT_SAMPLED = "不在质检抽样中 Not a sampled call"


@allow(*qa_pages.QA_ROLES)
async def library_page(request: web.Request) -> web.StreamResponse:
    c = console(request)
    kind = request.query.get("kind") or None
    tag = (request.query.get("tag") or "").strip().lower() or None
    status, error = 200, None
    try:
        found = await c.run(library.library, c.db, kind, tag)
    except library.LibraryFormError as exc:
        kind, status, error = None, 400, str(exc)
        found = await c.run(library.library, c.db, None, tag)
    return await render(request, "qa_library.html", page="qa", status=status, error=error,
                        found=found, kind=kind, tag=tag, labels=library.KIND_LABELS)


@allow(*qa_pages.QA_ROLES)
async def mark(request: web.Request) -> web.StreamResponse:
    c = console(request)
    call_id = request.match_info["call_id"]
    me = user_of(request).username
    try:
        given = library.parse_mark(await request.post())
        await c.run(library.mark_call, c.db, call_id, me, given, c.clock())
    except review.NotSampled as exc:
        raise web.HTTPNotFound(reason=NOT_SAMPLED) from exc
    except library.LibraryFormError as exc:
        return await qa_pages.review_page(request, status=400, error=str(exc))
    log.info("console.library_marked call_id=%s by=%s kind=%s", call_id, me, given.kind)
    raise web.HTTPSeeOther(f"/qa/calls/{call_id}#library")


@allow(*qa_pages.QA_ROLES)
async def remove(request: web.Request) -> web.StreamResponse:
    c = console(request)
    call_id = request.match_info["call_id"]
    try:
        await c.run(library.unmark_call, c.db, call_id, user_of(request).username, c.clock())
    except review.NotSampled as exc:
        raise web.HTTPNotFound(reason=NOT_SAMPLED) from exc
    raise web.HTTPSeeOther(f"/qa/calls/{call_id}#library")


ROUTES = [
    web.get("/qa/library", library_page),
    web.post(f"/qa/calls/{qa_pages.CALL_ID}/library", mark),
    web.post(f"/qa/calls/{qa_pages.CALL_ID}/library/remove", remove),
]
