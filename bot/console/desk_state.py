"""The agent desk as the console serves it: an agent's presence and the call in their hand,
read for a page and changed from its buttons, each in one unit of work through
bot/agents/desk.py (which holds the rules).  Everything here is blocking database work for
`Console.run`; the handlers (agent_pages.py) publish the returned messages on the hub.

A presence *message* is what an open page receives over its WebSocket::

    {"type": "presence", "agent_id", "username", "name", "seq", "state", "since",
     "reason", "call_id"[, "call": {...the pop...}]}

An offer's message carries the pop itself (``call``: `pop_message`, what the desk shows of
the offered call, the transcript so far included), so that the desk draws it from the
message without asking the console for the page again: the offer must be on the screen
within 300 ms.  The hub passes ``call`` to the agent's own pages only (hub.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.agents import desk
from bot.agents.handback import RETURNED
from bot.agents.presence import (
    OFFERED,
    OFFLINE,
    ON_CALL,
    WRAP_UP,
    Presence,
    PresenceEvent,
    wrap_up_ends_at,
)
from bot.console import call_pop
from bot.console.hub import Message
from bot.console.labels import AWAY_CHOICES, ESCALATION_REASONS
from bot.privacy import mask_phone
from bot.store import Database
from bot.store.db import in_write as in_write  # the desk's write unit; offers.py's too
from bot.store.models import (
    Agent,
    AgentStateChange,
    Call,
    Campaign,
    Contact,
    Escalation,
    EscalationOffer,
    User,
)
from bot.store.repos.agent_desk import AgentStateRepo

log = logging.getLogger("waihu.console")
# The buttons of the desk and the presence event each one asks for.
ACTIONS = {"available": "log_in", "away": "go_away", "back": "come_back", "offline": "log_out"}
HOLDS_CALL = (OFFERED, ON_CALL, WRAP_UP)
EVERY_POP: Mapping[int, int] = {}  # pops_after that reads every offer's pop


# --- presence messages -------------------------------------------------------------------


def message_of(change: AgentStateChange, user: User, pop: Message | None = None
               ) -> Message:
    presence = desk.presence_from(change)
    message: Message = {
        "type": "presence", "agent_id": change.agent_id, "username": user.username,
        "name": user.display_name or user.username, "seq": change.seq,
        "state": presence.state, "since": presence.since.isoformat() if presence.since else None,
        "reason": presence.reason, "call_id": presence.call_id}
    if pop is not None:
        message["call"] = pop
    return message


def presence_message(session: Session, agent_id: int) -> Message | None:
    """The message of the agent's latest change (None: never changed)."""
    change = AgentStateRepo(session).latest(agent_id)
    user = session.get(User, agent_id)
    if change is None or user is None:
        return None
    return _messages(session, {agent_id: change}, {agent_id: user})[0]


def every_presence(session: Session, pops_after: Mapping[int, int] | None = None
                   ) -> list[Message]:
    """The latest change of every agent who has one, enabled or not, by user name.  With
    *pops_after* (agent -> the change number the hub has passed on: it drops the older
    ones unread), an offer newer than that carries its pop; without, none does (a page's
    table of agents)."""
    users = {u.id: u for u in session.scalars(select(User).join(Agent))}
    latest = AgentStateRepo(session).latest_of(users)
    return _messages(session, latest, users, pops_after)


def changed_since(session: Session, after_id: int) -> tuple[list[Message], int]:
    """The latest presence of each agent with a change stored after change *after_id*
    (one indexed read when there is none), and the last change's id."""
    rows = session.execute(select(AgentStateChange.id, AgentStateChange.agent_id)
                           .where(AgentStateChange.id > after_id)).all()
    if not rows:
        return [], after_id
    agent_ids = {agent_id for _id, agent_id in rows}
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(agent_ids)))}
    latest = AgentStateRepo(session).latest_of(users)
    return _messages(session, latest, users), max(change_id for change_id, _a in rows)


def _messages(session: Session, latest: Mapping[int, AgentStateChange],
              users: Mapping[int, User], pops_after: Mapping[int, int] | None = EVERY_POP
              ) -> list[Message]:
    messages = []
    for agent_id, change in latest.items():
        pop = None
        if (pops_after is not None and change.to_state == OFFERED
                and change.call_id is not None and change.seq > pops_after.get(agent_id, 0)):
            card, _campaign = _call_card(session, agent_id, change.call_id)
            pop = None if card is None else pop_message(card)
        messages.append(message_of(change, users[agent_id], pop))
    return sorted(messages, key=lambda m: str(m["username"]))


def pop_message(card: CallCard) -> Message:
    """What the desk draws of an offered call (agent.html's pop, filled by console.js)."""
    return {"offer_id": card.offer_id, "call_id": card.call_id,
            "escalation_id": card.escalation_id, "campaign": card.campaign,
            "reason": card.reason,
            "reason_label": ESCALATION_REASONS.get(card.reason, card.reason),
            "customer": card.customer, "phone_masked": card.phone_masked,
            "verified": card.verified, "offered_at": card.offered_at.isoformat(),
            "listened": card.listened,
            "collected": [list(pair) for pair in card.collected],
            "transcript": [list(turn) for turn in card.transcript]}


# --- the desk of one agent ---------------------------------------------------------------


@dataclass(frozen=True)
class CallCard:
    """The escalated call in the agent's hand (offered, on the call, or in wrap-up)."""

    call_id: str
    escalation_id: int
    campaign: str
    reason: str
    customer: str | None  # the contact's name, or how the bot addressed them
    phone_masked: str
    verified: bool | None
    offered_at: datetime
    answered_at: datetime | None
    # The pop (call_pop.py): the offer the desk's buttons answer, whether the agent listens
    # in already, what the bot collected and the transcript so far.
    offer_id: int = 0
    listened: bool = False
    collected: tuple[tuple[str, str], ...] = ()
    transcript: tuple[tuple[int, str, str], ...] = ()  # (number, speaker, masked text)
    # Handed back to the bot (bot/agents/handback.py): the desk shows it, not the button,
    # until the gateway ends the agent's leg.
    handed_back: bool = False


@dataclass(frozen=True)
class DeskView:
    presence: Presence
    seq: int  # the agent's latest change number (0: never changed)
    call: CallCard | None
    wrap_up_max_s: int | None = None
    wrap_up_ends: datetime | None = None


def desk_view(db: Database, agent_id: int, at: datetime) -> DeskView:
    """The agent's desk at *at*.  After-call work past its cap ends here too (the watcher
    ends it within a second; a page opened in between must not show it)."""
    with db.session() as session:
        view = _view(session, agent_id)
    if view.wrap_up_ends is not None and at >= view.wrap_up_ends:
        if in_write(db, partial(_expire, agent_id=agent_id, at=at)):
            log.info("console.wrap_up_expired agent=%d call_id=%s", agent_id,
                     view.presence.call_id)
        with db.session() as session:
            view = _view(session, agent_id)
    return view


def _view(session: Session, agent_id: int) -> DeskView:
    change = AgentStateRepo(session).latest(agent_id)
    presence = desk.presence_from(change)
    seq = change.seq if change is not None else 0
    if presence.call_id is None:
        return DeskView(presence, seq, None)
    card, campaign = _call_card(session, agent_id, presence.call_id)
    if card is None or campaign is None:
        return DeskView(presence, seq, card)
    cap = desk.campaign_settings(campaign).escalation.wrap_up_max_s
    return DeskView(presence, seq, card, cap, wrap_up_ends_at(presence, cap))


def _call_card(session: Session, agent_id: int, call_id: str
               ) -> tuple[CallCard | None, Campaign | None]:
    offer = session.scalar(
        select(EscalationOffer).join(Escalation, Escalation.id == EscalationOffer.escalation_id)
        .where(Escalation.call_id == call_id, EscalationOffer.agent_id == agent_id)
        .order_by(EscalationOffer.id.desc()).limit(1))
    if offer is None:
        return None, None
    escalation = session.get(Escalation, offer.escalation_id)
    assert escalation is not None  # a foreign key
    contact = session.get(Contact, escalation.contact_id)
    campaign = session.get(Campaign, escalation.campaign_id)
    assert contact is not None and campaign is not None  # foreign keys
    context: dict[str, Any] = escalation.context or {}
    verified = context.get("verified")
    shown = call_pop.pop(session, escalation)
    card = CallCard(call_id, escalation.id, campaign.name, escalation.reason,
                    contact.name or context.get("customer_title"), mask_phone(contact.phone),
                    verified if isinstance(verified, bool) else None, offer.offered_at,
                    offer.answered_at, offer.id, offer.listened_at is not None,
                    tuple(shown.collected), tuple(shown.transcript),
                    handed_back=escalation.status == RETURNED)
    return card, campaign


# --- changing presence -------------------------------------------------------------------


def presence_event(action: str, reason: str | None) -> PresenceEvent:
    """The event a desk button asks for; ``ValueError`` saying why for anything else."""
    kind = ACTIONS.get(action)
    if kind is None:
        raise ValueError(f"unknown desk action {action!r}")
    if kind != "go_away":
        return PresenceEvent(kind)
    if reason not in AWAY_CHOICES:
        raise ValueError("请选择离开原因 choose why you are away: " + ", ".join(AWAY_CHOICES))
    return PresenceEvent(kind, reason=reason)


def change(db: Database, agent_id: int, event: PresenceEvent, at: datetime) -> Message:
    """Apply *event* to the agent (``PresenceRefused`` or ``DeskRefused`` saying why not);
    the message of the change."""
    def work(session: Session) -> Message:
        desk.change_presence(session, agent_id, event, at)
        message = presence_message(session, agent_id)
        assert message is not None  # just changed
        return message
    return in_write(db, work)


def leave_desk(db: Database, agent_id: int, at: datetime) -> Message | None:
    """Logging out of the console logs the agent out of the desk: the message of that
    change, or None when they were offline already.  ``PresenceRefused`` while a call is in
    their hand (offered or on the call): the call comes first."""
    def work(session: Session) -> Message | None:
        if session.get(Agent, agent_id) is None \
                or desk.presence_of(session, agent_id).state == OFFLINE:
            return None
        desk.change_presence(session, agent_id, PresenceEvent("log_out"), at)
        return presence_message(session, agent_id)
    return in_write(db, work)


def expire_due(db: Database, at: datetime) -> list[int]:
    """End every after-call work that reached its campaign's cap by *at*; the agents'
    ids.  Read first, and take the write lock only when one is due."""
    with db.session() as session:
        due = [agent_id for agent_id, ends in _wrap_up_ends(session).items() if at >= ends]
    ended = []
    for agent_id in due:
        try:
            if in_write(db, partial(_expire, agent_id=agent_id, at=at)):
                ended.append(agent_id)
        except (ValueError, IntegrityError) as exc:  # changed meanwhile: nothing to end
            log.info("console.wrap_up_expiry_skipped agent=%d reason=%s", agent_id, exc)
    for agent_id in ended:
        log.info("console.wrap_up_expired agent=%d", agent_id)
    return ended


def _expire(session: Session, *, agent_id: int, at: datetime) -> bool:
    return desk.expire_wrap_up(session, agent_id, at)


def _wrap_up_ends(session: Session) -> dict[int, datetime]:
    """When each agent now in after-call work reaches the cap of their call's campaign."""
    rows = AgentStateRepo(session).latest_of(session.scalars(select(Agent.user_id)))
    ends: dict[int, datetime] = {}
    caps: dict[int, int] = {}
    for agent_id, change in rows.items():
        if change.to_state != WRAP_UP or change.call_id is None:
            continue
        call = session.get(Call, change.call_id)
        if call is None:
            continue
        campaign_id = call.campaign_id
        if campaign_id not in caps:
            campaign = session.get(Campaign, campaign_id)
            assert campaign is not None  # a foreign key
            caps[campaign_id] = desk.campaign_settings(campaign).escalation.wrap_up_max_s
        end = wrap_up_ends_at(desk.presence_from(change), caps[campaign_id])
        if end is not None:
            ends[agent_id] = end
    return ends
