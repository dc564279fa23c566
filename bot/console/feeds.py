"""What each page's WebSocket receives from the call event stream (bot/events.py).

A feed is a pure function from a `CallEvent` to the message a page gets, or None: a page
sees only the events it needs and only the fields it shows, with phone numbers masked.
The agent desk gets nothing from the bus (an offer reaches it as a presence change, read
from the database by watch.py, whichever process made it), the QA page neither (it
reviews ended calls).  Presence is not a call event: the desk's messages come from the
console's hub (hub.py), to the pages of `DESK_SCOPE` (``own``: the agent's own presence;
``all``: every agent's).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot import events
from bot.events import CallEvent
from bot.privacy import mask_phone

Feed = Callable[[CallEvent], dict[str, Any] | None]

CALL_LEVEL = frozenset({
    events.CALL_DIALLED, events.CALL_ANSWERED, events.CALL_ENDED, events.CALL_BRIDGED,
    events.ESCALATION_REQUESTED, events.ESCALATION_OFFERED, events.ESCALATION_LISTENING,
    events.ESCALATION_ACCEPTED, events.ESCALATION_ENDED,
})
# The fields of those events the supervisors' list of call events shows (no transcript
# text, no ids of contacts).  The wall's customer's last words (masked) come from the
# database through wall.py, which also sees the calls of other processes.
WALL_FIELDS = ("campaign", "kind", "attempt_no", "phone", "dial_result", "outcome",
               "decline_reason", "ended_by", "reason", "status")


def wall(event: CallEvent) -> dict[str, Any] | None:
    if event.name not in CALL_LEVEL:
        return None
    data = {key: event.data[key] for key in WALL_FIELDS if event.data.get(key) is not None}
    if "phone" in data:
        data["phone"] = mask_phone(str(data["phone"]))
    return {"type": "event", "name": event.name, "call_id": event.call_id,
            "at": event.at.isoformat(), "offset_ms": event.offset_ms, "data": data}


FEEDS: dict[str, Feed | None] = {"agent": None, "supervisor": wall, "qa": None, "admin": wall}
DESK_SCOPE: dict[str, str] = {"agent": "own", "supervisor": "all", "admin": "all"}
