"""The agent desk's operations, each inside the caller's unit of work: change an agent's
presence, offer an escalation to the next agent, record the answer, end the call, record
the disposition, end after-call work at the campaign's cap.

Each joins a pure rule (bot/agents/presence.py, bot/agents/distribution.py) to its rows
(bot/store/repos/agent_desk.py) and flushes; the caller commits (one request, one timer
tick) and then publishes what happened on the call event stream.  Nothing here reads the
clock: every operation takes its time.

Each operation reads and then writes rows other desks write too: on SQLite run it in a
``db.session(write=True)`` (the write lock first, as the dialer does).  On PostgreSQL two
desks offering at once may both pick the same agent; the second one's presence change then
collides with the first's on the (agent, seq) key and fails with ``IntegrityError`` when the
first commits: roll back and call again, and the next choice sees the agent offered.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.agents.distribution import SUCCESS_DISPOSITIONS, AgentSnapshot, Decision, choose
from bot.agents.figures import day_span
from bot.agents.presence import (
    AVAILABLE,
    NEVER_SEEN,
    OFFLINE,
    ON_CALL,
    WRAP_UP,
    Presence,
    PresenceEvent,
    PresenceRefused,
    transition,
    wrap_up_ends_at,
    wrap_up_seconds,
)
from bot.campaigns.definition import Escalation as EscalationSettings
from bot.store.models import (
    Agent,
    AgentCampaign,
    AgentStateChange,
    Call,
    Campaign,
    Disposition,
    EscalationOffer,
    User,
)
from bot.store.repos.agent_desk import AgentStateRepo, DispositionRepo, OfferRepo
from bot.store.repos.escalations import EscalationRepo

DEFAULT_TIMEZONE = "Asia/Shanghai"
# What an answer to an offer means for the agent and for the escalation.
_ANSWER_EVENTS = {"accepted": "accept", "declined": "decline",
                  "timed_out": "offer_timed_out", "withdrawn": "offer_withdrawn"}
_ANSWER_STATUSES = {"accepted": "bridged", "declined": "declined", "timed_out": "timed_out"}


class DeskRefused(ValueError):
    """A desk operation that cannot happen now; the message says why."""


@dataclass(frozen=True)
class DeskSettings:
    """A campaign's escalation settings and the time zone its days are counted in."""

    escalation: EscalationSettings
    zone: ZoneInfo


def campaign_settings(campaign: Campaign) -> DeskSettings:
    """The ``escalation:`` section of a stored campaign (its defaults when the campaign was
    saved before the section existed) and the campaign's time zone."""
    definition = campaign.definition or {}
    return DeskSettings(EscalationSettings.model_validate(definition.get("escalation") or {}),
                        ZoneInfo(str(definition.get("timezone") or DEFAULT_TIMEZONE)))


# --- presence ---------------------------------------------------------------------------------


def presence_from(row: AgentStateChange | None) -> Presence:
    """The presence an agent's latest change left them in."""
    if row is None:
        return NEVER_SEEN
    holds_call = row.to_state in ("offered", ON_CALL, WRAP_UP)
    return Presence(row.to_state, row.at, reason=row.reason if row.to_state == "away" else None,
                    call_id=row.call_id if holds_call else None)


def presence_of(session: Session, agent_id: int) -> Presence:
    return presence_from(AgentStateRepo(session).latest(agent_id))


def change_presence(session: Session, agent_id: int, event: PresenceEvent,
                    at: datetime) -> Presence:
    """Apply *event* to the agent and store the change; ``PresenceRefused`` (a
    ``ValueError``) when it cannot happen in their state."""
    if session.get(Agent, agent_id) is None:
        raise DeskRefused(f"user {agent_id} has no agent profile")
    current = presence_of(session, agent_id)
    after = transition(current, event, at)
    AgentStateRepo(session).record(agent_id, current.state, after.state, event.kind, at,
                                   reason=after.reason, call_id=event.call_id)
    return after


# --- the team and the offer -----------------------------------------------------------------------


def team_snapshot(session: Session, campaign: str, at: datetime,
                  zone: ZoneInfo) -> list[AgentSnapshot]:
    """The agents who serve *campaign*, are enabled and logged in, as the distribution sees
    them at *at*; "today" is the local day of *at* in *zone*."""
    agents = list(session.scalars(
        select(Agent).join(AgentCampaign).join(User)
        .where(AgentCampaign.campaign == campaign, User.disabled.is_(False))
        .order_by(Agent.user_id)))
    ids = [a.user_id for a in agents]
    latest = AgentStateRepo(session).latest_of(ids)
    start, end = day_span(at.astimezone(zone).date(), zone)
    offers: Counter[int] = Counter()
    accepted: Counter[int] = Counter()
    accepted_escalations: set[tuple[int, int]] = set()
    for agent_id, escalation_id, outcome in session.execute(
            select(EscalationOffer.agent_id, EscalationOffer.escalation_id,
                   EscalationOffer.outcome)
            .where(EscalationOffer.agent_id.in_(ids), EscalationOffer.offered_at >= start,
                   EscalationOffer.offered_at < end)):
        offers[agent_id] += 1
        if outcome == "accepted":
            accepted[agent_id] += 1
            accepted_escalations.add((agent_id, escalation_id))
    successes: Counter[int] = Counter()
    for agent_id, escalation_id in session.execute(
            select(Disposition.agent_id, Disposition.escalation_id)
            .where(Disposition.agent_id.in_(ids),
                   Disposition.disposition.in_(SUCCESS_DISPOSITIONS))):
        if (agent_id, escalation_id) in accepted_escalations:  # calls taken today only
            successes[agent_id] += 1
    team = []
    for agent in agents:
        presence = presence_from(latest.get(agent.user_id))
        if presence.state == OFFLINE:
            continue
        team.append(AgentSnapshot(
            agent.user_id, presence.state, offers[agent.user_id], accepted[agent.user_id],
            successes[agent.user_id],
            presence.since if presence.state == AVAILABLE else None, agent.weight,
            tuple(agent.campaigns)))
    return team


@dataclass(frozen=True)
class OfferMade:
    """The decision, and the offer it made (None: nobody can take the call now; the
    escalation keeps waiting, and the desk tries again until the campaign's wait limit)."""

    decision: Decision
    offer: EscalationOffer | None


def offer_next(session: Session, escalation_id: int, at: datetime) -> OfferMade:
    """Choose the next agent for the escalation by its campaign's strategy and offer them
    the call: the agent becomes ``offered``, the offer is stored with the reason and the
    snapshot, and the escalation is ``offered``.  Agents who declined or missed this
    escalation are not offered it again."""
    escalations, offers = EscalationRepo(session), OfferRepo(session)
    escalation = escalations.get(escalation_id)
    ringing = offers.ringing(escalation_id)
    if ringing is not None:
        raise DeskRefused(f"escalation {escalation_id} is already offered to agent "
                          f"{ringing.agent_id}")
    if offers.accepted(escalation_id) is not None:
        raise DeskRefused(f"escalation {escalation_id} was already taken")
    campaign = session.get(Campaign, escalation.campaign_id)
    assert campaign is not None  # a foreign key
    settings = campaign_settings(campaign)
    refused = {o.agent_id for o in offers.of_escalation(escalation_id)
               if o.outcome in ("declined", "timed_out")}
    while True:
        team = team_snapshot(session, campaign.name, at, settings.zone)
        decision = choose(settings.escalation.strategy, campaign.name, team, at,
                          exclude=refused)
        if decision.agent_id is None:
            return OfferMade(decision, None)
        try:
            change_presence(session, decision.agent_id,
                            PresenceEvent("offer", escalation.call_id), at)
            break
        except PresenceRefused:
            # Another desk offered this agent a call after the team was read (PostgreSQL,
            # read committed: two hand-overs at once): choose again without them.
            refused.add(decision.agent_id)
    offer = offers.add(escalation_id, decision.agent_id, at, strategy=decision.strategy,
                       reason=decision.reason, snapshot=decision.snapshot)
    escalations.set_status(escalation, "offered")
    return OfferMade(decision, offer)


def listen(session: Session, offer_id: int, at: datetime) -> EscalationOffer:
    """The offered agent listens in before taking over (the escalation is ``listening``)."""
    offers = OfferRepo(session)
    offer = offers.listened(offers.get(offer_id), at)
    escalations = EscalationRepo(session)
    escalations.set_status(escalations.get(offer.escalation_id), "listening")
    return offer


def answer_offer(session: Session, offer_id: int, outcome: str,
                 at: datetime) -> EscalationOffer:
    """The answer to a ringing offer: ``accepted`` (the agent is on the call, the escalation
    ``bridged``), ``declined`` or ``timed_out`` (the escalation waits for the next offer;
    a missed offer sets the agent away), ``withdrawn`` (the escalation ended while it rang:
    the caller sets the escalation's own end, ``abandoned`` or ``callback``)."""
    offers, escalations = OfferRepo(session), EscalationRepo(session)
    offer = offers.answer(offers.get(offer_id), outcome, at)
    escalation = escalations.get(offer.escalation_id)
    change_presence(session, offer.agent_id,
                    PresenceEvent(_ANSWER_EVENTS[outcome], escalation.call_id), at)
    if outcome in _ANSWER_STATUSES:
        escalations.set_status(escalation, _ANSWER_STATUSES[outcome])
    return offer


def end_call(session: Session, agent_id: int, call_id: str, at: datetime) -> Presence:
    """The agent's part of the call ended (hang-up, or handed back to the bot): after-call
    work starts; :func:`expire_wrap_up` ends it at the campaign's cap."""
    return change_presence(session, agent_id, PresenceEvent("call_ended", call_id), at)


def _settings_of_call(session: Session, call_id: str) -> DeskSettings:
    call = session.get(Call, call_id)
    if call is None:
        raise DeskRefused(f"no call {call_id}")
    campaign = session.get(Campaign, call.campaign_id)
    assert campaign is not None  # a foreign key
    return campaign_settings(campaign)


def expire_wrap_up(session: Session, agent_id: int, at: datetime) -> bool:
    """End the agent's after-call work if it reached the campaign's cap by *at* (the agent
    is available again); False when they are not in after-call work or still within it."""
    presence = presence_of(session, agent_id)
    if presence.state != WRAP_UP or presence.call_id is None:
        return False
    cap = _settings_of_call(session, presence.call_id).escalation.wrap_up_max_s
    ends = wrap_up_ends_at(presence, cap)
    if ends is None or at < ends:
        return False
    change_presence(session, agent_id, PresenceEvent("wrap_up_expired", presence.call_id), at)
    return True


def record_disposition(session: Session, escalation_id: int, agent_id: int, disposition: str,
                       at: datetime, *, notes: str | None = None,
                       callback_at: datetime | None = None) -> Disposition:
    """The agent who took the escalation records how it ended.  In after-call work for that
    call, it ends it (the agent is available again) and its time, capped, is recorded; after
    the cap, the after-call work the state changes show is recorded."""
    escalation = EscalationRepo(session).get(escalation_id)
    taken = OfferRepo(session).accepted(escalation_id)
    if taken is None or taken.agent_id != agent_id:
        raise DeskRefused(f"agent {agent_id} did not take escalation {escalation_id}")
    cap = _settings_of_call(session, escalation.call_id).escalation.wrap_up_max_s
    presence = presence_of(session, agent_id)
    if presence.call_id == escalation.call_id and presence.state == ON_CALL:
        raise DeskRefused("the call is still going on: end it first, then record how it ended")
    if presence.call_id == escalation.call_id and presence.state == WRAP_UP:
        seconds = wrap_up_seconds(presence, at, cap)
        row = DispositionRepo(session).record(escalation, agent_id, disposition, at,
                                              wrap_up_s=seconds, notes=notes,
                                              callback_at=callback_at)
        change_presence(session, agent_id, PresenceEvent("wrap_up_done", escalation.call_id),
                        at)
        return row
    seconds = min(_past_wrap_up(session, agent_id, escalation.call_id), float(cap))
    return DispositionRepo(session).record(escalation, agent_id, disposition, at,
                                           wrap_up_s=seconds, notes=notes,
                                           callback_at=callback_at)


def _past_wrap_up(session: Session, agent_id: int, call_id: str) -> float:
    """Seconds the agent spent in after-call work for *call_id*, from the stored changes."""
    rows = list(session.scalars(
        select(AgentStateChange).where(AgentStateChange.agent_id == agent_id,
                                       AgentStateChange.seq >= select(AgentStateChange.seq)
                                       .where(AgentStateChange.agent_id == agent_id,
                                              AgentStateChange.call_id == call_id,
                                              AgentStateChange.to_state == WRAP_UP)
                                       .order_by(AgentStateChange.seq.desc()).limit(1)
                                       .scalar_subquery())
        .order_by(AgentStateChange.seq).limit(2)))
    if len(rows) < 2:
        return 0.0
    return max(0.0, (rows[1].at - rows[0].at).total_seconds())
