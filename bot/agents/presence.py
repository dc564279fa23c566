"""An agent's presence: a pure state machine (DESIGN.md, "The human side").

States: ``offline``, ``available``, ``offered`` (an escalated call rings on the desk),
``on_call``, ``wrap_up`` (after-call work, capped by the campaign's ``wrap_up_max_s``) and
``away`` (with a reason).  :func:`transition` takes the agent's :class:`Presence` and a
:class:`PresenceEvent` and returns the next presence, or raises :class:`PresenceRefused`
saying why the event cannot happen now.  Nothing here reads a clock or a database: the
desk passes the time, and the store keeps every change (``AgentStateRepo``).

Listening before taking over is a status of the escalation, not of the agent: the agent is
``offered`` until they take the call (``accept``) or decline it.  An offer left unanswered
(``offer_timed_out``) puts the agent ``away`` with the reason ``missed_offer``, as desks do,
so that the next call does not ring an empty desk; they come back with ``come_back``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.store.vocab import AGENT_STATES, AWAY_REASONS, PRESENCE_EVENTS, require

OFFLINE, AVAILABLE, OFFERED, ON_CALL, WRAP_UP, AWAY = AGENT_STATES
MISSED_OFFER = "missed_offer"
# Events about one call: they carry its id, and must name the agent's own call.
CALL_EVENTS = frozenset({"offer", "accept", "decline", "offer_timed_out", "offer_withdrawn",
                         "call_ended", "wrap_up_done", "wrap_up_expired"})


class PresenceRefused(ValueError):
    """An event that cannot happen in the agent's current state; the message says why."""


@dataclass(frozen=True)
class Presence:
    """Where an agent is: the state, since when, the away reason and the call in hand."""

    state: str
    since: datetime | None = None  # None: never seen (an agent who has not logged in yet)
    reason: str | None = None  # the away reason
    call_id: str | None = None  # offered, on_call, wrap_up: the call

    def __post_init__(self) -> None:
        require(self.state, AGENT_STATES, "agent state")
        if (self.state == AWAY) != (self.reason is not None):
            raise ValueError("an away reason goes with the away state, and only with it")
        if (self.state in (OFFERED, ON_CALL, WRAP_UP)) != (self.call_id is not None):
            raise ValueError(f"a call id goes with offered, on_call and wrap_up, not {self.state}")


NEVER_SEEN = Presence(OFFLINE)


@dataclass(frozen=True)
class PresenceEvent:
    kind: str
    call_id: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        require(self.kind, PRESENCE_EVENTS, "presence event")
        if (self.kind in CALL_EVENTS) != (self.call_id is not None):
            raise ValueError(f"{self.kind} " + ("needs the call's id" if self.kind in
                                                CALL_EVENTS else "takes no call id"))
        if self.kind == "go_away":
            if self.reason is None:
                raise ValueError(f"going away needs a reason: {', '.join(AWAY_REASONS)}")
            require(self.reason, AWAY_REASONS, "away reason")
        elif self.reason is not None:
            raise ValueError(f"{self.kind} takes no reason")


# event -> (the states it may happen in, the state it leads to)
_RULES: dict[str, tuple[tuple[str, ...], str]] = {
    "log_in": ((OFFLINE,), AVAILABLE),
    "log_out": ((AVAILABLE, AWAY, WRAP_UP), OFFLINE),
    "offer": ((AVAILABLE,), OFFERED),
    "accept": ((OFFERED,), ON_CALL),
    "decline": ((OFFERED,), AVAILABLE),
    "offer_timed_out": ((OFFERED,), AWAY),
    "offer_withdrawn": ((OFFERED,), AVAILABLE),
    "call_ended": ((ON_CALL,), WRAP_UP),
    "wrap_up_done": ((WRAP_UP,), AVAILABLE),
    "wrap_up_expired": ((WRAP_UP,), AVAILABLE),
    "go_away": ((AVAILABLE, WRAP_UP, AWAY), AWAY),
    "come_back": ((AWAY,), AVAILABLE),
}
# What to do first, when an event is refused in a state a person could be surprised by.
_HINTS = {
    (OFFERED, "log_out"): "answer or decline the call on offer first",
    (ON_CALL, "log_out"): "end the call first",
    (OFFERED, "go_away"): "answer or decline the call on offer first",
    (ON_CALL, "go_away"): "end the call first",
    (OFFLINE, "offer"): "only an available agent is offered a call",
    (AWAY, "offer"): "only an available agent is offered a call",
    (ON_CALL, "offer"): "only an available agent is offered a call",
    (WRAP_UP, "offer"): "only an available agent is offered a call",
    (OFFERED, "offer"): "only an available agent is offered a call",
    (AVAILABLE, "log_in"): "already logged in",
}


def transition(current: Presence, event: PresenceEvent, at: datetime) -> Presence:
    """The presence after *event* at *at*; :class:`PresenceRefused` if it cannot happen."""
    allowed, target = _RULES[event.kind]
    if current.state not in allowed:
        hint = _HINTS.get((current.state, event.kind))
        raise PresenceRefused(
            f"{event.kind} refused: the agent is {current.state}"
            + (f" ({hint})" if hint else f"; it happens only when {' or '.join(allowed)}"))
    if current.since is not None and at < current.since:
        raise PresenceRefused(f"{event.kind} at {at.isoformat()} is before the agent became "
                              f"{current.state} ({current.since.isoformat()})")
    if event.kind in CALL_EVENTS and event.kind != "offer" and event.call_id != current.call_id:
        raise PresenceRefused(f"{event.kind} refused: it is about call {event.call_id}, the "
                              f"agent's call is {current.call_id}")
    if event.kind == "go_away" and current.state == AWAY and event.reason == current.reason:
        raise PresenceRefused(f"go_away refused: the agent is already away ({current.reason})")
    reason = MISSED_OFFER if event.kind == "offer_timed_out" else event.reason
    call_id = event.call_id if target in (OFFERED, ON_CALL, WRAP_UP) else None
    return replace(current, state=target, since=at, reason=reason, call_id=call_id)


def wrap_up_ends_at(current: Presence, wrap_up_max_s: float) -> datetime | None:
    """When after-call work reaches the campaign's cap (``wrap_up_expired`` is due then);
    None unless the agent is in wrap-up."""
    if current.state != WRAP_UP or current.since is None:
        return None
    return current.since + timedelta(seconds=wrap_up_max_s)


def wrap_up_seconds(current: Presence, at: datetime, wrap_up_max_s: float) -> float:
    """Seconds of after-call work at *at*, capped by the campaign's maximum (for the
    disposition); 0 unless the agent is in wrap-up."""
    if current.state != WRAP_UP or current.since is None:
        return 0.0
    return max(0.0, min((at - current.since).total_seconds(), float(wrap_up_max_s)))
