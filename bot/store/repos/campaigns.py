"""Campaigns: the stored campaign files."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store.models import Campaign
from bot.store.vocab import CAMPAIGN_TYPES, require


class CampaignRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, name: str, type: str, definition: dict[str, Any], wording_hash: str) -> Campaign:
        require(type, CAMPAIGN_TYPES, "campaign type")
        campaign = Campaign(name=name, type=type, definition=definition, wording_hash=wording_hash)
        self.session.add(campaign)
        self.session.flush()
        return campaign

    def by_name(self, name: str) -> Campaign | None:
        return self.session.scalar(select(Campaign).where(Campaign.name == name))

    def upsert_definition(
        self, name: str, type: str, definition: dict[str, Any], wording_hash: str
    ) -> Campaign:
        """Create, or replace the type, definition and script hash of an existing one."""
        campaign = self.by_name(name)
        if campaign is None:
            return self.add(name, type, definition, wording_hash)
        require(type, CAMPAIGN_TYPES, "campaign type")
        campaign.type = type
        campaign.definition = definition
        campaign.wording_hash = wording_hash
        self.session.flush()
        return campaign

    def list(self) -> Sequence[Campaign]:
        return self.session.scalars(select(Campaign).order_by(Campaign.id)).all()
