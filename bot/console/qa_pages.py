"""The QA reviewer's pages (issue 15 item 4): the sampled calls, a call's review page (the
recording, the transcript with times, the automatic flags, the scorecard), claims and the
recording itself.  Roles: qa, supervisor (their weekly sample), admin.  The services are in
bot/qa/review.py; the guard (auth.py) has checked the role and the CSRF token of the POSTs.
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.console.access import PAGE_ROLES
from bot.console.context import console, user_of
from bot.console.security import allow
from bot.console.views import render
from bot.qa import review
from bot.qa.scorecard import RULES, TOTAL_POINTS, ScorecardError, checkpoint_field, parse_scorecard

log = logging.getLogger("waihu.console")
QA_ROLES = PAGE_ROLES["qa"]
CALL_ID = r"{call_id:[0-9A-Za-z_-]{1,36}}"
DONE = {"claimed": "已认领，30分钟内有效 Claimed for 30 minutes",
        "reviewed": "质检结果已提交 Review submitted"}


def _call_id(request: web.Request) -> str:
    return request.match_info["call_id"]


@allow(*QA_ROLES)
async def qa_list(request: web.Request) -> web.StreamResponse:
    c = console(request)
    calls = await c.run(review.sampled_calls, c.db, c.clock())
    return await render(request, "qa.html", page="qa", calls=calls,
                        me=user_of(request).username)


async def review_page(request: web.Request, *, status: int = 200, error: str | None = None
                      ) -> web.Response:
    c = console(request)
    try:
        detail = await c.run(review.call_review, c.db, _call_id(request), c.clock())
    except review.NotSampled as exc:
        raise web.HTTPNotFound(reason="不在质检抽样中 Not a sampled call") from exc
    return await render(request, "qa_call.html", page="qa", status=status, call=detail,
                        me=user_of(request).username, rules=RULES, total=TOTAL_POINTS,
                        field=checkpoint_field, error=error,
                        done=DONE.get(request.query.get("done", "")))


@allow(*QA_ROLES)
async def qa_call(request: web.Request) -> web.StreamResponse:
    return await review_page(request)


@allow(*QA_ROLES)
async def claim(request: web.Request) -> web.StreamResponse:
    c = console(request)
    call_id = _call_id(request)
    try:
        await c.run(review.claim_call, c.db, call_id, user_of(request).username, c.clock())
    except review.NotSampled as exc:
        raise web.HTTPNotFound(reason="不在质检抽样中 Not a sampled call") from exc
    except review.ClaimConflict as exc:
        return await review_page(request, status=409, error=(
            f"已被 {exc.holder} 认领 Claimed by {exc.holder} until "
            f"{exc.until:%H:%M} UTC" if exc.until else "已被认领 Claimed by someone else"))
    raise web.HTTPSeeOther(f"/qa/calls/{call_id}?done=claimed")


@allow(*QA_ROLES)
async def submit(request: web.Request) -> web.StreamResponse:
    c = console(request)
    call_id = _call_id(request)
    me = user_of(request).username
    try:
        card = parse_scorecard(await request.post())
        result = await c.run(review.submit_review, c.db, call_id, me, card, c.clock())
    except review.NotSampled as exc:
        raise web.HTTPNotFound(reason="不在质检抽样中 Not a sampled call") from exc
    except ScorecardError as exc:
        return await review_page(request, status=400, error=str(exc))
    except review.ClaimConflict:
        return await review_page(request, status=409, error=(
            "请先认领此通话（认领已过期或被他人持有） Claim the call first (your claim "
            "expired or another reviewer holds it)"))
    log.info("console.qa_reviewed call_id=%s by=%s compliant=%s callback=%s", call_id, me,
             card.compliant, result.callback_id)
    raise web.HTTPSeeOther(f"/qa/calls/{call_id}?done=reviewed")


@allow(*QA_ROLES)
async def recording(request: web.Request) -> web.StreamResponse:
    """The call's stereo recording, with Range requests (the player seeks); the file is the
    one the call's row names."""
    c = console(request)
    try:
        path = await c.run(review.recording_file, c.db, _call_id(request))
    except review.NotSampled as exc:
        raise web.HTTPNotFound(reason="不在质检抽样中 Not a sampled call") from exc
    if path is None:
        raise web.HTTPNotFound(reason="无录音 No recording")
    return web.FileResponse(path, headers={"Content-Type": "audio/wav"})


ROUTES = [
    web.get("/qa", qa_list),
    web.get(f"/qa/calls/{CALL_ID}", qa_call),
    web.get(f"/qa/calls/{CALL_ID}/recording", recording),
    web.post(f"/qa/calls/{CALL_ID}/claim", claim),
    web.post(f"/qa/calls/{CALL_ID}/review", submit),
]
