"""The offered agent's answer from the desk, and their hand-back of a taken call.

`answer` runs one button of the offer (listen first, take over, decline) for the agent the
call is offered to, and nobody else: another agent's offer, or one already answered, is
refused.  It goes through bot/agents/desk.py in the desk's write unit (desk_state.in_write)
and is audited (``offer.listened``, ``call.taken``, ``offer.declined``); the gateway, which
reads the offer back every 100 ms, dials the agent's phone or bridges the call.

`hand_back` gives a taken call back to the bot for the consent read-back, for the agent on
it and nobody else (bot/agents/handback.py says when it can), audited ``call.handed_back``;
the gateway reads it the same way and unbridges the agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from bot.accounts import UserInfo
from bot.agents import desk, handback
from bot.agents.desk import DeskRefused
from bot.console.desk_state import in_write, presence_message
from bot.console.hub import Message
from bot.store import AuditRepo, Database
from bot.store.models import Escalation, EscalationOffer

# button -> (the offer's outcome, None for listening; the audit action)
ACTIONS: dict[str, tuple[str | None, str]] = {
    "listen": (None, "offer.listened"),
    "accept": ("accepted", "call.taken"),
    "decline": ("declined", "offer.declined"),
}


class NotYourOffer(PermissionError):
    """The offer does not exist or is another agent's."""


@dataclass(frozen=True)
class Answered:
    presence: Message | None  # the agent's presence after the answer, for the hub
    call_id: str


def answer(db: Database, user: UserInfo, offer_id: int, action: str, at: datetime,
           address: str) -> Answered:
    """The agent's answer to their ringing offer; ``NotYourOffer``, or ``DeskRefused`` /
    ``PresenceRefused`` saying why it cannot happen now."""
    if action not in ACTIONS:
        raise ValueError(f"unknown answer {action!r}")
    outcome, audit_action = ACTIONS[action]

    def work(session: Session) -> Answered:
        offer = session.get(EscalationOffer, offer_id)
        if offer is None or offer.agent_id != user.id:
            raise NotYourOffer(offer_id)
        if offer.outcome is not None:
            raise DeskRefused(f"这通来电已结束 the offer was already {offer.outcome}")
        if outcome is None:
            if offer.listened_at is not None:
                raise DeskRefused("已在监听 already listening")
            desk.listen(session, offer_id, at)
        else:
            desk.answer_offer(session, offer_id, outcome, at)
        escalation = session.get(Escalation, offer.escalation_id)
        assert escalation is not None  # a foreign key
        AuditRepo(session).record(f"user:{user.username}", audit_action, escalation.call_id,
                                  at=at, offer_id=offer_id, escalation_id=escalation.id,
                                  address=address)
        return Answered(presence_message(session, user.id), escalation.call_id)
    return in_write(db, work)


def hand_back(db: Database, user: UserInfo, offer_id: int, at: datetime,
              address: str) -> Answered:
    """The agent on the call of their accepted offer hands it back to the bot;
    ``NotYourOffer``, or ``HandBackRefused`` saying why it cannot happen now.  Their
    presence changes when the gateway has let them go (after-call work)."""
    def work(session: Session) -> Answered:
        try:
            done = handback.request(session, offer_id, user.id, at)
        except LookupError:
            raise NotYourOffer(offer_id) from None
        AuditRepo(session).record(f"user:{user.username}", "call.handed_back", done.call_id,
                                  at=at, offer_id=offer_id, escalation_id=done.escalation_id,
                                  address=address)
        return Answered(None, done.call_id)
    return in_write(db, work)
