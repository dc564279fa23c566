"""A campaign the conftest's agent serves, and an escalated call taken by that agent through
bot/agents/desk.py (standing in for the gateway, which wires the offer later)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.agents import desk
from bot.campaigns.definition import load_definition
from bot.campaigns.registry import save_campaign
from bot.store import Database
from bot.store.models import Escalation, TranscriptTurn
from bot.store.repos.agent_desk import AgentStateRepo
from tests.unit.agents.seeding import escalate

CAMPAIGN = "trial"  # the conftest's agent serves it
EXAMPLE = "examples/campaigns/marketing.yml"


def add_trial_campaign(db: Database, **escalation: Any) -> None:
    """The sample marketing campaign under the name the agent serves (its calling windows:
    09:00-12:00 and 14:00-20:00 Asia/Shanghai), with *escalation* settings."""
    from pathlib import Path

    defn = load_definition(Path(__file__).resolve().parents[3] / EXAMPLE)
    defn = defn.model_copy(update={
        "name": CAMPAIGN,
        "escalation": defn.escalation.model_copy(update=escalation)})
    save_campaign(db, defn)


@dataclass(frozen=True)
class Taken:
    escalation_id: int
    call_id: str
    offer_id: int


def offer(db: Database, agent_id: int, at: datetime, phone: str = "13812345678") -> Taken:
    escalation = escalate(db, phone, CAMPAIGN, at)
    with db.session(write=True) as session:
        made = desk.offer_next(session, escalation.id, at)
        assert made.offer is not None and made.offer.agent_id == agent_id, made.decision
        return Taken(escalation.id, escalation.call_id, made.offer.id)


def pitched(db: Database, taken: Taken, said: str = "我要转人工") -> None:
    """What the pop shows of the offered call: the bot pitched before the hand-over, the
    customer is verified, and two turns are stored (the customer's is *said*)."""
    with db.session() as session:
        escalation = session.get(Escalation, taken.escalation_id)
        assert escalation is not None
        escalation.context = {"stage_before": "pitch", "pitched": True, "verified": True}
        session.add_all([
            TranscriptTurn(call_id=taken.call_id, seq=1, speaker="bot",
                           text="您好，请问是王先生吗"),
            TranscriptTurn(call_id=taken.call_id, seq=2, speaker="customer", text=said)])


def take_call(db: Database, agent_id: int, at: datetime, *, talk_s: float = 60,
              phone: str = "13812345678") -> Taken:
    """Offered at *at*, accepted 5 s later, ended after *talk_s*: the agent is in wrap-up
    from *at* + 5 s + *talk_s*."""
    taken = offer(db, agent_id, at, phone)
    with db.session(write=True) as session:
        desk.answer_offer(session, taken.offer_id, "accepted", at + timedelta(seconds=5))
        desk.end_call(session, agent_id, taken.call_id, at + timedelta(seconds=5 + talk_s))
    return taken


def states(db: Database, agent_id: int) -> list[tuple[str, str, str | None]]:
    """The agent's stored changes: (event, state, reason)."""
    with db.session() as session:
        latest = AgentStateRepo(session).latest(agent_id)
        rows = AgentStateRepo(session).between(datetime.min.replace(tzinfo=latest.at.tzinfo),
                                               latest.at + timedelta(seconds=1),
                                               [agent_id]) if latest else []
        return [(r.event, r.to_state, r.reason) for r in rows]
