"""Saving campaign definitions in the database."""

from __future__ import annotations

from bot.campaigns.definition import CampaignDefinition
from bot.store import CampaignRepo, Database


def save_campaign(db: Database, defn: CampaignDefinition) -> int:
    """Create the campaign, or update its definition and script hash; returns its id."""
    with db.session() as session:
        campaign = CampaignRepo(session).upsert_definition(
            defn.name, defn.type, defn.model_dump(mode="json"), defn.script_hash())
        return campaign.id
