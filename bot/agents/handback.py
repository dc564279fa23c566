"""The hand-back: the agent who took a call gives it back to the bot, which reads the sale
back and asks the customer's explicit confirmation (actions/flowhandback.py), so that a
sale closed by a person enters the consent ledger under the same rules as the bot's.

The console and the gateway need not share a process, so they meet in the database, as
they do for the offer's answers (bot/agents/handover.py): the desk's button sets the
escalation's status to ``returned_to_bot`` (`request`); the gateway, which reads it every
100 ms while the call is bridged (`requested`), unbridges the agent (whose after-call work
then starts as after any call) and gives the call back to the dialogue.  The actions name
the agent in the consent's ledger entry (`closed_by`).

Each function runs inside the caller's unit of work (the console's and the gateway's write
units for `request`) and flushes only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.agents import desk
from bot.agents.presence import ON_CALL
from bot.store.models import Campaign, Escalation, EscalationOffer, User
from bot.store.repos.escalations import EscalationRepo

RETURNED = "returned_to_bot"
# Campaigns whose calls end in a sale the bot can confirm (actions/flowhandback.py).
SALE_CAMPAIGNS = frozenset({"marketing", "second_confirmation"})


class HandBackRefused(ValueError):
    """The call cannot be handed back now; the message says why (to the agent)."""


def refusal(*, status: str, on_call: bool, campaign_type: str, reason: str) -> str | None:
    """Why an escalation in *status*, with its agent on the call or not, cannot be handed
    back to the bot for a consent read-back; None when it can.  Pure: the rule the console
    enforces.  A holder not yet verified is no refusal (the bot verifies them first); one
    whose verification failed is."""
    if status == RETURNED:
        return "已交回机器人 the call was already handed back to the bot"
    if status != "bridged" or not on_call:
        return "您不在这通电话上 you are not on this call"
    if campaign_type not in SALE_CAMPAIGNS:
        return "这类活动没有需要确认的办理 this campaign sells nothing to confirm"
    if reason == "complaint":
        return "投诉来电不能交回机器人办理 a complaint is not handed back for a sale"
    if reason == "verification_failed":
        return ("身份核验未通过，机器人不能确认办理 the holder's identity check failed: "
                "the bot cannot confirm a sale")
    return None


@dataclass(frozen=True)
class HandedBack:
    escalation_id: int
    call_id: str


def request(session: Session, offer_id: int, agent_id: int, at: datetime) -> HandedBack:
    """The agent of the accepted offer *offer_id* hands its call back (``returned_to_bot``);
    ``LookupError`` when the offer is not theirs, ``HandBackRefused`` saying why not now."""
    offer = session.get(EscalationOffer, offer_id)
    if offer is None or offer.agent_id != agent_id or offer.outcome != "accepted":
        raise LookupError(offer_id)
    escalations = EscalationRepo(session)
    escalation = escalations.get(offer.escalation_id)
    campaign = session.get(Campaign, escalation.campaign_id)
    assert campaign is not None  # a foreign key
    presence = desk.presence_of(session, agent_id)
    why = refusal(status=escalation.status,
                  on_call=presence.state == ON_CALL and presence.call_id == escalation.call_id,
                  campaign_type=campaign.type, reason=escalation.reason)
    if why is not None:
        raise HandBackRefused(why)
    escalations.set_status(escalation, RETURNED)
    return HandedBack(escalation.id, escalation.call_id)


def requested(session: Session, escalation_id: int) -> bool:
    """The gateway's question while the call is bridged: did the agent hand it back?"""
    return EscalationRepo(session).get(escalation_id).status == RETURNED


def closed_by(session: Session, call_id: str) -> str | None:
    """Who closed the sale the bot confirms on a handed-back call: ``agent:USERNAME`` of
    the agent whose accepted offer was handed back last; None when nobody handed it back."""
    row = session.execute(
        select(User.username).select_from(Escalation)
        .join(EscalationOffer, EscalationOffer.escalation_id == Escalation.id)
        .join(User, User.id == EscalationOffer.agent_id)
        .where(Escalation.call_id == call_id, Escalation.status == RETURNED,
               EscalationOffer.outcome == "accepted")
        .order_by(Escalation.id.desc()).limit(1)).first()
    return None if row is None else f"agent:{row[0]}"
