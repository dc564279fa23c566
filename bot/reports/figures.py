"""The campaign figures the business reads (DESIGN.md, "Figures the business reads")."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store.models import Call, CallAttempt, Campaign
from bot.store.vocab import DECLINE_REASONS

DECLINE_LABELS = {"distrust": "不信任来电", "too_expensive": "价格太高",
                  "not_needed": "不需要", "other": "其他"}


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def campaign_figures(session: Session, campaign: Campaign) -> dict[str, Any]:
    """Dialled, connected, consents and their rates, outcomes and decline reasons."""
    attempts = session.scalars(
        select(CallAttempt).where(CallAttempt.campaign_id == campaign.id)).all()
    calls = session.scalars(select(Call).where(Call.campaign_id == campaign.id)).all()
    dial_results = Counter(a.dial_result or "pending" for a in attempts)
    outcomes = Counter(c.outcome or "in_progress" for c in calls)
    reasons = Counter(c.decline_reason for c in calls
                      if c.outcome == "declined" and c.decline_reason)
    dialled = len(attempts)
    connected = dial_results.get("answered", 0)
    consents = outcomes.get("consented", 0)
    declined = outcomes.get("declined", 0)
    return {
        "campaign": campaign.name,
        "type": campaign.type,
        "dialled": dialled,
        "numbers_dialled": len({a.contact_id for a in attempts}),
        "connected": connected,
        "connect_rate": _rate(connected, dialled),
        "consents": consents,
        "consent_rate_over_dialled": _rate(consents, dialled),
        "consent_rate_over_connected": _rate(consents, connected),
        "declined": declined,
        "declined_after_connect_rate": _rate(declined, connected),
        "hung_up_early": outcomes.get("hung_up_early", 0),
        "dial_results": dict(sorted(dial_results.items())),
        "outcomes": dict(sorted(outcomes.items())),
        "decline_reasons": {r: reasons.get(r, 0) for r in DECLINE_REASONS},
    }


def format_figures(fig: dict[str, Any]) -> str:
    """A plain-text report for the terminal."""
    pct = lambda v: f"{v * 100:.1f}%"  # noqa: E731 - a local formatter reads best inline
    lines = [
        f"活动 Campaign: {fig['campaign']} ({fig['type']})",
        f"  拨打 dialled:                 {fig['dialled']}",
        f"  接通 connected:               {fig['connected']}  (接通率 {pct(fig['connect_rate'])})",
        f"  同意 consents:                {fig['consents']}  "
        f"(占拨打 {pct(fig['consent_rate_over_dialled'])}, "
        f"占接通 {pct(fig['consent_rate_over_connected'])})",
        f"  拒绝 declined after connect:  {fig['declined']}  "
        f"({pct(fig['declined_after_connect_rate'])})",
        f"  未听完挂机 hung up early:      {fig['hung_up_early']}",
        "  拨打结果 dial results:        " + ", ".join(
            f"{k} {v}" for k, v in fig["dial_results"].items()),
        "  通话结果 outcomes:            " + ", ".join(
            f"{k} {v}" for k, v in fig["outcomes"].items()),
        "  拒绝原因 decline reasons:",
    ]
    lines += [f"    {DECLINE_LABELS[r]} {r}: {n}" for r, n in fig["decline_reasons"].items()]
    return "\n".join(lines)
