"""The call as a stream of events (DESIGN.md, "Call events").

Every call publishes what happens to it — dialled, answered, each turn, a disclosure cut
short, an escalation, the end with its outcome — on an `EventBus`.  The transcript writer
is one subscriber (`bot.callrecord.TranscriptSink`); the agent console and the supervisors'
wall will be others.  The database stays the record of truth: the bus is for whoever wants
to follow a call while it happens.

The interface is small on purpose: `publish` never blocks and never raises because of a
subscriber; `subscribe` takes a plain callable (it must not block either: a subscriber
with slow work queues it) and returns the function that unsubscribes.  `InProcessBus` is
the implementation for one machine; a Redis implementation of the same interface carries
the events across machines.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

log = logging.getLogger("waihu.events")

# The names other parts rely on (DESIGN.md).
CALL_DIALLED = "call.dialled"
CALL_ANSWERED = "call.answered"
CALL_ENDED = "call.ended"
TURN_CUSTOMER = "turn.customer"
TURN_BOT = "turn.bot"
TURN_AGENT = "turn.agent"
TURN_SYSTEM = "turn.system"  # what the system noted (silence, a transfer, a failure)
# What the classifier made of the customer's last turn (intent, NLU confidence): it is
# decided in the action server and comes back with Rasa's answer, after `turn.customer`.
TURN_CLASSIFIED = "turn.classified"
DISCLOSURE_INTERRUPTED = "disclosure.interrupted"
ESCALATION_REQUESTED = "escalation.requested"
ESCALATION_OFFERED = "escalation.offered"
# The offered agent listens in before taking over (their phone hears the call, the
# customer does not hear them).
ESCALATION_LISTENING = "escalation.listening"
ESCALATION_ACCEPTED = "escalation.accepted"
ESCALATION_ENDED = "escalation.ended"
CALL_BRIDGED = "call.bridged"
MONITOR_STARTED = "monitor.started"
MONITOR_MODE = "monitor.mode"  # a supervisor monitoring the call changed mode
MONITOR_ENDED = "monitor.ended"

TURN_EVENTS = frozenset({TURN_CUSTOMER, TURN_BOT, TURN_AGENT, TURN_SYSTEM})


@dataclass(frozen=True)
class CallEvent:
    """One thing that happened to a call.

    *offset_ms*: where it happened on the call's timeline (from the answer, or from the
    dial for `call.dialled`); *at*: the call's clock (virtual in a simulation)."""

    name: str
    call_id: str
    offset_ms: int
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "call_id": self.call_id, "offset_ms": self.offset_ms,
                "at": self.at.isoformat(), "data": self.data}

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> CallEvent:
        return cls(str(body["name"]), str(body["call_id"]), int(body["offset_ms"]),
                   datetime.fromisoformat(str(body["at"])), dict(body.get("data") or {}))


def call_event(name: str, call_id: str, at: datetime, offset_ms: int = 0,
               **data: Any) -> CallEvent:
    return CallEvent(name, call_id, offset_ms, at, data)


class CallTimeline:
    """One call's clock and its voice on the bus: offsets in ms since the answer (from an
    injected monotonic clock), times on the call's own date (*call_start*, virtual in a
    simulation).  The voice session's stages and text-mode calls both publish through it."""

    def __init__(self, call_id: str, bus: EventBus, *, call_start: datetime | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.call_id = call_id
        self.bus = bus
        self.call_start = call_start or datetime.now(UTC)
        self.clock = clock
        self._t0 = clock()

    def now_ms(self) -> float:
        return (self.clock() - self._t0) * 1000.0

    def at(self, ms: float) -> datetime:
        return self.call_start + timedelta(milliseconds=ms)

    def publish(self, name: str, offset_ms: float | None = None, **data: Any) -> None:
        """Publish *name* at *offset_ms* on the timeline (default: now)."""
        at_ms = int(self.now_ms() if offset_ms is None else offset_ms)
        self.bus.publish(CallEvent(name, self.call_id, at_ms, self.at(at_ms), data))


Handler = Callable[[CallEvent], None]


class EventBus(Protocol):
    def publish(self, event: CallEvent) -> None: ...

    def subscribe(self, handler: Handler, *, call_id: str | None = None,
                  names: Iterable[str] | None = None) -> Callable[[], None]:
        """Call *handler* with every event (of one call, of some names); returns the
        function that unsubscribes."""
        ...


@dataclass
class _Subscription:
    handler: Handler
    call_id: str | None
    names: frozenset[str] | None

    def wants(self, event: CallEvent) -> bool:
        return ((self.call_id is None or event.call_id == self.call_id)
                and (self.names is None or event.name in self.names))


class InProcessBus:
    """Events delivered synchronously, in the order published, to the subscribers of this
    process.  A subscriber that raises is logged and the others still get the event."""

    def __init__(self) -> None:
        self._subscriptions: list[_Subscription] = []

    def publish(self, event: CallEvent) -> None:
        for subscription in list(self._subscriptions):
            if not subscription.wants(event):
                continue
            try:
                subscription.handler(event)
            except Exception:
                log.exception("events.subscriber_failed call_id=%s event=%s",
                              event.call_id, event.name)

    def subscribe(self, handler: Handler, *, call_id: str | None = None,
                  names: Iterable[str] | None = None) -> Callable[[], None]:
        subscription = _Subscription(handler, call_id,
                                     None if names is None else frozenset(names))
        self._subscriptions.append(subscription)

        def unsubscribe() -> None:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)
        return unsubscribe

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)


@asynccontextmanager
async def following(bus: EventBus, *, call_id: str | None = None,
                    names: Iterable[str] | None = None, maxsize: int = 1000
                    ) -> AsyncIterator[asyncio.Queue[CallEvent]]:
    """A queue that receives the events while the context is open (for a WebSocket or a
    test).  A reader that falls *maxsize* events behind loses the newest ones, logged:
    a slow page must not hold up a call."""
    queue: asyncio.Queue[CallEvent] = asyncio.Queue(maxsize)

    def put(event: CallEvent) -> None:
        try:
            queue.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("events.dropped call_id=%s event=%s", event.call_id, event.name)
    unsubscribe = bus.subscribe(put, call_id=call_id, names=names)
    try:
        yield queue
    finally:
        unsubscribe()
