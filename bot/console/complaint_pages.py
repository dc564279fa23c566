"""The complaints pages (issue 15 item 5): the list with filters (status, overdue), a
complaint's page (the customer's words in the transcript, the handling steps, the answer,
the root cause, the severity and the serious/not-serious decision), and a supervisor's new
complaint.  QA reviewers may read them; supervisors and administrators change them.  The
guard (auth.py) has checked the role and the CSRF token of the POSTs; every change is in
the audit log (bot/qa/complaints.py writes it in the change's unit of work).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from bot.console.access import PAGE_ROLES
from bot.console.context import console, user_of
from bot.console.security import allow
from bot.console.views import render
from bot.qa import complaints
from bot.store.models import (
    COMPLAINT_DECISIONS,
    COMPLAINT_ROOT_CAUSES,
    COMPLAINT_SEVERITIES,
    COMPLAINT_STATUSES,
)
from bot.store.repos.common import NotFound

log = logging.getLogger("waihu.console")
READERS = PAGE_ROLES["qa"]  # qa, supervisor, admin
HANDLERS = PAGE_ROLES["supervisor"]  # supervisor, admin
ID = r"{complaint_id:\d{1,9}}"
DONE = {
    "recorded": "投诉已登记 Complaint recorded",
    "contacted": "已标记为已联系 Marked contacted",
    "resolved": "投诉已结案 Complaint resolved",
    "severity": "严重程度已修改 Severity changed",
    "blacklisted": "已认定严重，号码已拉黑 Decided serious: the number is blacklisted",
    "already_listed": "已认定严重，号码原已在黑名单 Decided serious: already blacklisted",
    "lifted": "已认定不严重，黑名单已解除 Decided not serious: the blacklist is lifted",
    "kept": "已认定不严重；该号码的黑名单另有来源，未解除 Decided not serious; the number's "
            "blacklist entry has another source and stays",
    "none": "已记录决定 Decision recorded",
}


def _with_me(request: web.Request, **context: Any) -> dict[str, Any]:
    user = user_of(request)
    return {"page": "qa", "can_handle": user.role in HANDLERS, **context,
            "severities": COMPLAINT_SEVERITIES, "statuses": COMPLAINT_STATUSES,
            "root_causes": COMPLAINT_ROOT_CAUSES, "decisions": COMPLAINT_DECISIONS,
            "contact_days": complaints.CONTACT_WITHIN_WORKING_DAYS,
            "resolve_days": complaints.RESOLVE_WITHIN_WORKING_DAYS}


async def _list_page(request: web.Request, *, status: int = 200, error: str | None = None,
                     form: dict[str, str] | None = None) -> web.Response:
    c = console(request)
    wanted = request.query.get("status") or None
    if wanted not in (None, *COMPLAINT_STATUSES):
        raise web.HTTPBadRequest(reason="未知状态 unknown status")
    overdue = request.query.get("overdue") == "1"
    rows = await c.run(complaints.complaint_list, c.db, c.clock(), wanted, overdue)
    return await render(request, "qa_complaints.html", status=status, **_with_me(
        request, complaints=rows, status_filter=wanted, overdue_filter=overdue, error=error,
        form=form or {}))


@allow(*READERS)
async def complaint_list(request: web.Request) -> web.StreamResponse:
    return await _list_page(request)


@allow(*HANDLERS)
async def enter_complaint(request: web.Request) -> web.StreamResponse:
    c = console(request)
    form = {k: str(v).strip() for k, v in (await request.post()).items()
            if k in ("call_id", "phone", "words", "severity")}
    try:
        recorded = await c.run(
            complaints.enter_complaint, c.db, user_of(request).username, c.clock(),
            words=form.get("words", ""), severity=form.get("severity") or "medium",
            call_id=form.get("call_id") or None, phone=form.get("phone") or None)
    except complaints.ComplaintRefused as exc:
        return await _list_page(request, status=400, error=str(exc), form=form)
    log.info("console.complaint_entered id=%s by=%s created=%s", recorded.complaint.id,
             user_of(request).username, recorded.created)
    raise web.HTTPSeeOther(f"/qa/complaints/{recorded.complaint.id}?done=recorded")


async def _detail_page(request: web.Request, *, status: int = 200,
                       error: str | None = None) -> web.Response:
    c = console(request)
    try:
        detail = await c.run(complaints.complaint_detail, c.db,
                             int(request.match_info["complaint_id"]), c.clock())
    except NotFound as exc:
        raise web.HTTPNotFound(reason="没有这条投诉 No such complaint") from exc
    return await render(request, "qa_complaints_detail.html", status=status, **_with_me(
        request, complaint=detail, error=error,
        done=DONE.get(request.query.get("done", ""))))


@allow(*READERS)
async def complaint_page(request: web.Request) -> web.StreamResponse:
    return await _detail_page(request)


@allow(*HANDLERS)
async def change_complaint(request: web.Request) -> web.StreamResponse:
    """One form of the complaint's page: ``what`` is step (contacted/resolved, with the
    answer and root cause), severity or decision."""
    c = console(request)
    complaint_id = int(request.match_info["complaint_id"])
    form = await request.post()
    what = str(form.get("what", ""))
    value = str(form.get("value", "")).strip()
    choices: dict[str, dict[str, Any]] = {
        "step": {"step": value, "answer": str(form.get("answer", "")),
                 "root_cause": str(form.get("root_cause", "")) or None},
        "severity": {"severity": value},
        "decision": {"decision": value},
    }
    changes = choices.get(what, {})
    if not changes or not value:
        return await _detail_page(request, status=400, error="表单无效 the form is not valid")
    try:
        effect = await c.run(complaints.change, c.db, complaint_id, user_of(request).username,
                             c.clock(), **changes)
    except NotFound as exc:
        raise web.HTTPNotFound(reason="没有这条投诉 No such complaint") from exc
    except complaints.ComplaintRefused as exc:
        return await _detail_page(request, status=409, error=str(exc))
    done = effect or (value if what == "step" else what)
    log.info("console.complaint_changed id=%s by=%s %s=%s", complaint_id,
             user_of(request).username, what, value)
    raise web.HTTPSeeOther(f"/qa/complaints/{complaint_id}?done={done}")


ROUTES = [
    web.get("/qa/complaints", complaint_list),
    web.post("/qa/complaints", enter_complaint),
    web.get(f"/qa/complaints/{ID}", complaint_page),
    web.post(f"/qa/complaints/{ID}", change_complaint),
]
