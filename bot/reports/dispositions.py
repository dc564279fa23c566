"""What the agents recorded for the calls the bot handed over: the campaign report's
``agent_dispositions``.

A call the bot escalated ends with the outcome ``escalated``: the bot's part is over, and
how it really ended is the disposition the agent who took it recorded (bot/agents).  Each
escalated call counts once, by its latest disposition (a call escalated twice may have
two); ``not_recorded`` counts the escalated calls no agent recorded (nobody took the call,
or the agent has not recorded it yet).  A call the agent handed back to the bot to confirm
the sale ends with the bot's outcome (``consented``, ``declined``…) but was the agent's
call too: it counts here as well (its escalation ``returned_to_bot``).

``sales_without_consent``: the calls whose disposition is ``sale`` but for which the ledger
holds no consent -- the agent did not hand the call back for the read-back, or the customer
did not confirm it (hung up, said no).  Such a sale has no proof; the QA flag of the same
name points a reviewer at each.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bot.agents.handback import RETURNED
from bot.store.ledger import ConsentLedger
from bot.store.models import Call, Disposition, Escalation
from bot.store.vocab import DISPOSITIONS


def agent_dispositions(session: Session, campaign_id: int) -> dict[str, Any]:
    latest: dict[str, str | None] = {}
    for call_id, disposition in session.execute(
            select(Call.id, Disposition.disposition)
            .outerjoin(Disposition, Disposition.call_id == Call.id)
            .where(Call.campaign_id == campaign_id,
                   or_(Call.outcome == "escalated", Call.id.in_(
                       select(Escalation.call_id).where(Escalation.status == RETURNED))))
            .order_by(Call.id, Disposition.id)):
        if disposition is not None or call_id not in latest:
            latest[call_id] = disposition
    counts = {d: sum(1 for v in latest.values() if v == d) for d in DISPOSITIONS}
    recorded = sum(counts.values())
    sold = [call_id for call_id, disposition in latest.items() if disposition == "sale"]
    proven = ConsentLedger(session).consented_calls(sold)
    return {"escalated_calls": len(latest), "recorded": recorded,
            "not_recorded": len(latest) - recorded, "by_disposition": counts,
            "sales_without_consent": len(set(sold) - proven)}


def describe_dispositions(desk: dict[str, Any]) -> str:
    """The line of the text report."""
    return "  坐席处理结果 agent dispositions: " + ", ".join(
        [f"{d} {n}" for d, n in desk["by_disposition"].items() if n]
        + [f"not recorded {desk['not_recorded']}"]
        + ([f"sale without a consent in the ledger {desk['sales_without_consent']}"]
           if desk.get("sales_without_consent") else []))
