"""The dry run behind ``waihu campaign check``: what a claim at a given time would do with a
campaign's contacts, as if it were running, without changing anything.

It reads the same facts (bot/campaigns/facts.py) and applies the same
:func:`bot.campaigns.compliance.block_reason` as the claim (bot/campaigns/dialer.py), so its
counts are exactly what the dialer would do.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from bot.campaigns.compliance import (
    REASONS,
    block_reason,
    deadline_warning,
    in_window,
    next_window_start,
)
from bot.campaigns.dialer import live_calls
from bot.campaigns.facts import ClaimFacts
from bot.campaigns.registry import campaign_definition
from bot.store import CampaignRepo, ContactRepo, Database, NotFound


def check_campaign(db: Database, name: str, now: datetime) -> dict[str, Any]:
    """What a claim at *now* would do with the campaign's contacts, as if it were running:
    how many would be dialled and how many are skipped, by reason.  Changes nothing.
    Times are given in the campaign's time zone."""
    with db.session() as session:
        campaign = CampaignRepo(session).by_name(name)
        if campaign is None:
            raise NotFound(f"no campaign named {name!r}")
        defn = campaign_definition(campaign)
        contacts = ContactRepo(session).list(campaign.id)
        facts = ClaimFacts.read(session, defn, campaign.id, None, now)
        counts: Counter[str] = Counter()
        waits: list[datetime] = []
        for contact in contacts:
            contact_facts = facts.of(contact)
            reason = block_reason(defn, "running", contact_facts, now)
            counts[reason or "would_dial"] += 1
            if reason == "retry_wait" and contact.next_attempt_at is not None:
                waits.append(contact.next_attempt_at)
        live = live_calls(session, campaign.id)
    warning = deadline_warning(defn, now.astimezone(defn.zone).date())
    window_open = in_window(defn, now)
    next_start = next_window_start(defn, now)

    def local(t: datetime | None) -> str | None:
        return t.astimezone(defn.zone).isoformat() if t is not None else None

    return {
        "campaign": campaign.name,
        "type": campaign.type,
        "status": campaign.status,
        "at": local(now),
        "contacts": len(contacts),
        "would_dial": counts["would_dial"],
        "skipped": {r: counts[r] for r in REASONS if r != "campaign_not_running"},
        "in_window": window_open,
        "next_window_start": local(next_start),
        "next_retry_at": local(min(waits) if waits else None),
        "concurrency": defn.dialing.concurrency,
        "live_calls": live,
        "deadline": warning.as_json() if warning else None,
    }
