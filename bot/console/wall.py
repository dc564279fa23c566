"""The supervisors' live wall (/supervisor): every call in progress, the escalations waiting
for an agent, the agents' time in state against their limits, each campaign's figures of
the day, and the buttons that start, pause and resume a campaign.

Where the wall's state comes from: the database, not a snapshot built from the event
stream.  The console runs beside the gateway (`waihu run all`, one event bus in one
process) or alone (`waihu console`, another process or machine): there is no bus across
processes yet, so only the database sees every gateway's calls wherever they run, and a
page opened mid-call gets the same picture as one open since the morning.  What says
*when* to read again, while a wall is open: an event of a call on this console's bus, and
a new agent presence on the desk's hub (watch.py reads those from the database every
50 ms, whoever made them), each read at once -- events closer than `WALL_MIN_GAP_S` are
read together; and, as the safety net for the gateways of other processes whose events
this bus does not carry, a read every `WALL_SAFETY_POLL_S` when nothing woke it (it used
to read every second whatever happened: docs/benchmarks.md, "Live wall").
Each read is a few indexed queries: the live attempts (those holding a dialler lease),
the latest customer turn and intent of those calls, their waiting escalations, the
agents' presence, the campaigns' statuses (a pause shows at once, whoever made it).  The
day's figures (bot/reports/period.py, the daily report's own definitions) cost more and
are read again only when a call was dialled, answered or ended, an escalation was made
(as seen on the wall), or an event said so, at most every `FIGURES_MIN_S`, and at least
every `FIGURES_MAX_S`.

A wall message, sent when the page's socket opens and whenever something shown changed::

    {"type": "wall", "now", "calls": [...], "escalations": [...], "agents": {...},
     "campaigns": [...], "limits": {...}}

The customer's last words are the only transcript text on the wall: the latest customer
turn of each call, every digit masked (bot.privacy.mask_id_digits), for the supervisor and
administrator (the only roles that open this page).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from bot import events
from bot.agents import desk
from bot.agents.presence import OFFERED, ON_CALL, WRAP_UP
from bot.campaigns import registry
from bot.campaigns.definition import CampaignFileError
from bot.console import desk_state
from bot.console.access import PAGE_ROLES
from bot.console.context import CONSOLE, Console, console, user_of
from bot.console.hub import QUEUE_LIMIT, Message
from bot.console.labels import STAGE_LABELS
from bot.console.security import allow
from bot.privacy import mask_id_digits, mask_phone
from bot.reports.period import period_figures
from bot.store import Database
from bot.store.models import Call, CallAttempt, Campaign, Contact, Escalation, TranscriptTurn
from bot.store.repos.audit import AuditRepo

log = logging.getLogger("waihu.console")

# While a wall is open: read when nothing woke the wall for this long (a gateway of
# another process) ...
WALL_SAFETY_POLL_S = 5.0
WALL_MIN_GAP_S = 0.5  # ... and read events closer than this together
FIGURES_MIN_S = 3.0  # the day's figures: at most this often ...
FIGURES_MAX_S = 30.0  # ... and at least this often
# An agent's row turns red past these (after-call work: past its campaign's cap).
OFFERED_LIMIT_S = 20  # an offer rings this long before the supervisor should look
AWAY_LIMIT_S = 15 * 60
WAITING = ("pending", "waiting", "offered", "listening")  # the customer waits for a person
# The events after which the wall is read at once; those that change the day's figures.
WAKE_EVENTS = frozenset({
    events.CALL_DIALLED, events.CALL_ANSWERED, events.CALL_ENDED, events.CALL_BRIDGED,
    events.TURN_CUSTOMER, events.TURN_CLASSIFIED, events.ESCALATION_REQUESTED,
    events.ESCALATION_OFFERED, events.ESCALATION_LISTENING, events.ESCALATION_ACCEPTED,
    events.ESCALATION_ENDED})
FIGURE_EVENTS = frozenset({events.CALL_DIALLED, events.CALL_ANSWERED, events.CALL_ENDED,
                           events.ESCALATION_REQUESTED})
ACTIONS = ("start", "pause", "resume")


# --- reading the wall (blocking: run through Console.run) -------------------------------


def live_calls(session: Session, presences: list[Message], now: datetime
               ) -> list[dict[str, Any]]:
    """Every attempt that holds a lease and has not ended, oldest first.  The lease is the
    one record of a live call (CallAttempt's docstring); a dialled attempt not yet
    answered is shown too, timed from the dial.  A lease past its expiry (``stale``) is a
    gateway that stopped renewing it: the call stays until the dialer takes it back."""
    rows = session.execute(
        select(CallAttempt.call_id, CallAttempt.kind, CallAttempt.started_at,
               CallAttempt.created_at, CallAttempt.answered_at, CallAttempt.lease_expires_at,
               Campaign.name, Call.stage, Contact.phone)
        .join(Campaign, Campaign.id == CallAttempt.campaign_id)
        .join(Contact, Contact.id == CallAttempt.contact_id)
        .outerjoin(Call, Call.id == CallAttempt.call_id)
        .where(CallAttempt.lease_expires_at.is_not(None), CallAttempt.completed_at.is_(None),
               CallAttempt.ended_at.is_(None), Call.ended_at.is_(None))
        .order_by(CallAttempt.started_at, CallAttempt.id)).all()
    ids = [row.call_id for row in rows]
    words = _last_customer_turns(session, ids, with_intent=False)
    intents = _last_customer_turns(session, ids, with_intent=True)
    agents = {str(m["call_id"]): m for m in presences
              if m.get("call_id") and m.get("state") in (OFFERED, ON_CALL)}
    calls = []
    for row in rows:
        agent = agents.get(row.call_id)
        said = words.get(row.call_id)
        intent = intents.get(row.call_id)
        calls.append({
            "call_id": row.call_id, "campaign": row.name, "kind": row.kind,
            "phone": mask_phone(row.phone),
            "answered": row.answered_at is not None,
            "since": (row.answered_at or row.started_at or row.created_at).isoformat(),
            "stage": row.stage,
            "stage_label": STAGE_LABELS.get(row.stage, row.stage) if row.stage else None,
            "handler": "agent" if agent and agent["state"] == ON_CALL else "bot",
            "agent": agent["name"] if agent else None,
            "last_intent": intent.intent if intent else None,
            "last_words": mask_id_digits(said.text) if said else None,
            "stale": row.lease_expires_at < now,
        })
    return calls


def _last_customer_turns(session: Session, call_ids: list[str], *, with_intent: bool
                         ) -> dict[str, TranscriptTurn]:
    """The latest customer turn of each call (with an intent noted on it, if asked)."""
    if not call_ids:
        return {}
    where = [TranscriptTurn.call_id.in_(call_ids), TranscriptTurn.speaker == "customer"]
    if with_intent:
        where.append(TranscriptTurn.intent.is_not(None))
    last = (select(TranscriptTurn.call_id, func.max(TranscriptTurn.seq).label("seq"))
            .where(*where).group_by(TranscriptTurn.call_id).subquery())
    turns = session.scalars(select(TranscriptTurn).join(
        last, and_(TranscriptTurn.call_id == last.c.call_id, TranscriptTurn.seq == last.c.seq)))
    return {turn.call_id: turn for turn in turns}


def waiting_escalations(session: Session, call_ids: list[str]) -> list[dict[str, Any]]:
    """The escalations of live calls still waiting for an agent, longest waiting first."""
    if not call_ids:
        return []
    rows = session.execute(
        select(Escalation.id, Escalation.call_id, Escalation.reason, Escalation.status,
               Escalation.created_at, Campaign.name)
        .join(Campaign, Campaign.id == Escalation.campaign_id)
        .where(Escalation.status.in_(WAITING), Escalation.call_id.in_(call_ids))
        .order_by(Escalation.created_at, Escalation.id)).all()
    return [{"escalation_id": row.id, "call_id": row.call_id, "campaign": row.name,
             "reason": row.reason, "status": row.status, "since": row.created_at.isoformat()}
            for row in rows]


def wrap_up_limits(session: Session, presences: list[Message]) -> dict[str, int]:
    """The after-call work cap (seconds) of each agent now in wrap-up: their call's
    campaign's ``escalation.wrap_up_max_s``."""
    limits: dict[str, int] = {}
    caps: dict[int, int] = {}
    for m in presences:
        if m.get("state") != WRAP_UP or not m.get("call_id"):
            continue
        call = session.get(Call, str(m["call_id"]))
        if call is None:
            continue
        if call.campaign_id not in caps:
            campaign = session.get(Campaign, call.campaign_id)
            assert campaign is not None  # a foreign key
            caps[call.campaign_id] = desk.campaign_settings(campaign).escalation.wrap_up_max_s
        limits[str(m["agent_id"])] = caps[call.campaign_id]
    return limits


def campaign_figures(session: Session, now: datetime, zone: ZoneInfo
                     ) -> dict[str, dict[str, int]]:
    """Each campaign's figures today (by name), as the daily report counts them: its
    complaints are the complaints recorded today (the complaints table: heard on a call, or
    entered at the desk), not the calls that ended in one."""
    today = now.astimezone(zone).date()
    report = period_figures(session, start=today, end=today, tz=zone)
    return {row["campaign"]: {
        "dialled": row["calls"] + row["in_progress"], "connected": row["connected"],
        "consents": row["valid_sales"], "escalations": row["escalations"],
        "complaints": row["complaints"]["recorded"]} for row in report["campaigns"]}


NO_FIGURES = dict.fromkeys(("dialled", "connected", "consents", "escalations", "complaints"), 0)


def campaign_rows(statuses: list[tuple[str, str, str]], figures: dict[str, dict[str, int]]
                  ) -> list[dict[str, Any]]:
    """Every campaign not finished (and any finished one with calls today): its status
    (read each time: a pause shows at once) and its figures (read less often)."""
    return [{"campaign": name, "type": kind, "status": status,
             **figures.get(name, NO_FIGURES)}
            for name, kind, status in statuses if status != "finished" or name in figures]


def read_live(db: Database, now: datetime) -> dict[str, Any]:
    """The calls, escalations and agents' limits of the wall (the cheap part).  The agents'
    presence is read here too rather than taken from the hub, so that the wall is one
    reading of the database (the hub is empty for a moment after the console starts)."""
    with db.session() as session:
        presences = desk_state.every_presence(session)
        calls = live_calls(session, presences, now)
        statuses = session.execute(select(Campaign.name, Campaign.type, Campaign.status)
                                   .order_by(Campaign.name)).all()
        return {"calls": calls,
                "escalations": waiting_escalations(session, [c["call_id"] for c in calls]),
                "agents": wrap_up_limits(session, presences),
                "statuses": [tuple(row) for row in statuses]}


def read_figures(db: Database, now: datetime, zone: ZoneInfo) -> dict[str, dict[str, int]]:
    with db.session() as session:
        return campaign_figures(session, now, zone)


LIMITS = {"offered_s": OFFERED_LIMIT_S, "away_s": AWAY_LIMIT_S}


# --- the wall of this console process ----------------------------------------------------


class Wall:
    """The latest wall, read again on events and on a timer, passed on to the open pages
    when it changed."""

    def __init__(self, c: Console) -> None:
        self.c = c
        self.latest: Message | None = None
        self._figures: dict[str, dict[str, int]] = {}
        self._figures_at = float("-inf")
        self._figures_due = True
        self._subscribers: list[asyncio.Queue[Message]] = []
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._unsubscribe: Callable[[], None] = lambda: None
        self.safety_poll_s = WALL_SAFETY_POLL_S
        self.min_gap_s = WALL_MIN_GAP_S
        self.reads = 0  # walls read (the live part), for the benchmark

    def on_event(self, event: events.CallEvent) -> None:
        """A bus subscriber (it may be called from another thread): read again now."""
        figures = event.name in FIGURE_EVENTS
        self._loop.call_soon_threadsafe(self.wake, figures)

    def wake(self, figures: bool = False) -> None:
        self._figures_due = self._figures_due or figures
        self._wake.set()

    async def refresh(self) -> bool:
        """Read the wall; pass it on if anything shown changed; whether it did."""
        self.reads += 1
        live = await self.c.run(read_live, self.c.db, self.c.clock())
        if _counted(live) != _counted(self.latest or {}):
            self._figures_due = True
        clock = self._loop.time()
        if (self._figures_due and clock - self._figures_at >= FIGURES_MIN_S) \
                or clock - self._figures_at >= FIGURES_MAX_S:
            self._figures_due = False
            self._figures_at = clock
            self._figures = await self.c.run(read_figures, self.c.db, self.c.clock(),
                                             ZoneInfo(self.c.settings.timezone))
        statuses = live.pop("statuses")
        shown = {**live, "campaigns": campaign_rows(statuses, self._figures)}
        if self.latest is not None and all(self.latest[k] == v for k, v in shown.items()):
            return False
        self.latest = {"type": "wall", "now": self.c.clock().isoformat(), "limits": LIMITS,
                       **shown}
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(self.latest)
        return True

    @contextlib.contextmanager
    def following(self) -> Iterator[asyncio.Queue[Message]]:
        """The walls to come, while open.  The wall follows the event bus and the hub's
        presences only while a page is open: nobody looking, nothing to read."""
        queue: asyncio.Queue[Message] = asyncio.Queue(QUEUE_LIMIT)
        if not self._subscribers:
            from_bus = self.c.events.subscribe(self.on_event, names=WAKE_EVENTS)
            from_hub = self.c.hub.on_presence(lambda _presence: self.wake())

            def unsubscribe() -> None:
                from_bus()
                from_hub()
            self._unsubscribe = unsubscribe
        self._subscribers.append(queue)
        try:
            yield queue
        finally:
            self._subscribers.remove(queue)
            if not self._subscribers:
                self._unsubscribe()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.safety_poll_s)
            self._wake.clear()
            if not self._subscribers:
                continue  # nobody is looking: read when a wall opens
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:  # a database hiccup must not stop the wall for good
                log.exception("console.wall_refresh_failed")
            # 20 calls publish several turns a second: what they wake in the gap is read
            # once, after it
            await asyncio.sleep(self.min_gap_s)


def _counted(wall: dict[str, Any]) -> tuple[Any, ...]:
    """What the day's figures count that the wall sees change: a call dialled, answered or
    ended (its outcome), an escalation made."""
    return (tuple((c["call_id"], c["answered"]) for c in wall.get("calls", ())),
            tuple(e["escalation_id"] for e in wall.get("escalations", ())))


WALL = web.AppKey("console.wall", Wall)


async def running(app: web.Application) -> AsyncIterator[None]:
    """A `cleanup_ctx`: the wall reads on its timer and on events while the application
    runs (not with ``desk_poll_s`` 0: tests then call `Wall.refresh`)."""
    c = app[CONSOLE]
    wall = app[WALL] = Wall(c)
    task = asyncio.create_task(wall.run()) if c.settings.desk_poll_s > 0 else None
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def current(request: web.Request) -> Message:
    """The wall as it is now, read for a page being drawn."""
    wall = request.app[WALL]
    await wall.refresh()
    assert wall.latest is not None  # just read
    return wall.latest


@contextlib.asynccontextmanager
async def streaming(request: web.Request, ws: web.WebSocketResponse, page: str
                    ) -> AsyncIterator[None]:
    """The wall's messages on a supervisors' page socket (ws.py), the current wall first."""
    if page != "supervisor":
        yield
        return
    wall = request.app[WALL]
    with wall.following() as queue:
        if not await wall.refresh():  # changed: the new wall is in the queue already
            await ws.send_json(wall.latest)
        task = asyncio.create_task(_pass_on(ws, queue))
        try:
            yield
        finally:
            task.cancel()


async def _pass_on(ws: web.WebSocketResponse, queue: asyncio.Queue[Message]) -> None:
    while not ws.closed:
        message = await queue.get()
        if not ws.closed:
            await ws.send_json(message)


# --- starting, pausing and resuming a campaign ------------------------------------------


def _control(db: Database, name: str, action: str, now: datetime, actor: str
             ) -> dict[str, Any]:
    """The change through the campaigns' registry (the one owner of a campaign's status),
    then its audit entry."""
    if action == "start":
        result = registry.start_campaign(db, name, now)
    else:
        change = registry.pause_campaign if action == "pause" else registry.resume_campaign
        result = registry.StartResult(name, change(db, name))
    with db.session(write=True) as session:
        AuditRepo(session).record(actor, f"campaign.{action}", name, at=now,
                                  status=result.status, warning=result.warning.message
                                  if result.warning else None)
    return result.as_json()


@allow(*PAGE_ROLES["supervisor"])
async def control_campaign(request: web.Request) -> web.StreamResponse:
    """POST /supervisor/campaigns/{name}/{action}: JSON with the campaign's new status (and
    the start's warning and notes); 409 with the reason when the registry refuses."""
    c = console(request)
    name, action = request.match_info["name"], request.match_info["action"]
    user = user_of(request)
    try:
        result = await c.run(_control, c.db, name, action, c.clock(),
                             f"user:{user.username}")
    except (registry.CampaignControlError, CampaignFileError) as exc:
        log.info("console.campaign_refused campaign=%s action=%s by=%s", name, action,
                 user.username)
        return web.json_response({"error": str(exc)}, status=409)
    log.info("console.campaign_%s campaign=%s by=%s", action, name, user.username)
    request.app[WALL].wake(figures=True)  # the new status on the walls at once
    return web.json_response(result)


ROUTES = [web.post(r"/supervisor/campaigns/{name}/{action:start|pause|resume}",
                   control_campaign)]
