"""The unmasked customer number, shown only to a role that needs it and audited.

Pages show numbers masked (138****5678).  `POST /calls/{call_id}/phone` (with the CSRF
token, from the page's script) answers ``{"call_id", "phone"}`` to a supervisor or the
administrator for any call, and to an agent for the call in their own hand (offered, on
the call or in its after-call work); anyone else gets 403.  Every answer writes
``phone.viewed`` to the audit log (the number masked in the entry), before the number
leaves the server.
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.accounts import UserInfo
from bot.agents import desk
from bot.agents.presence import OFFERED, ON_CALL, WRAP_UP, Presence
from bot.console.context import client_address, console, user_of
from bot.console.security import allow
from bot.privacy import mask_phone
from bot.store import AuditRepo, Database
from bot.store.models import Call, Contact

log = logging.getLogger("waihu.console")
SEE_EVERY_CALL = ("supervisor", "admin")


def may_reveal(role: str, presence: Presence | None, call_id: str) -> bool:
    """Whether *role* (an agent in *presence*) may see the number of *call_id*."""
    if role in SEE_EVERY_CALL:
        return True
    return (role == "agent" and presence is not None and presence.call_id == call_id
            and presence.state in (OFFERED, ON_CALL, WRAP_UP))


class NotYours(PermissionError):
    pass


def reveal(db: Database, user: UserInfo, call_id: str, address: str) -> str | None:
    """The number of *call_id* (None: no such call), audited; ``NotYours`` when the user
    may not see it."""
    with db.session() as session:
        presence = desk.presence_of(session, user.id) if user.agent is not None else None
        if not may_reveal(user.role, presence, call_id):
            raise NotYours(call_id)
        call = session.get(Call, call_id)
        contact = session.get(Contact, call.contact_id) if call is not None else None
        if contact is None:
            return None
        AuditRepo(session).record(f"user:{user.username}", "phone.viewed", call_id,
                                  phone=mask_phone(contact.phone), address=address)
        return contact.phone


@allow("agent", *SEE_EVERY_CALL)
async def reveal_phone(request: web.Request) -> web.StreamResponse:
    c = console(request)
    user = user_of(request)
    call_id = request.match_info["call_id"]
    try:
        phone = await c.run(reveal, c.db, user, call_id, client_address(request))
    except NotYours:
        log.warning("console.phone_refused user=%s call_id=%s", user.username, call_id)
        raise web.HTTPForbidden(reason="not your call") from None
    if phone is None:
        raise web.HTTPNotFound()
    log.info("console.phone_viewed user=%s call_id=%s", user.username, call_id)
    return web.json_response({"call_id": call_id, "phone": phone})
