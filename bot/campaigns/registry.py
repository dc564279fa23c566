"""Saving campaign definitions in the database, and starting, pausing and resuming them.

Only a ``running`` campaign gets calls from the dialer (bot/campaigns/dialer.py).  Pausing
stops new calls at once; calls already on the line finish normally.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from bot.campaigns.compliance import DeadlineWarning, deadline_warning, next_window_start
from bot.campaigns.definition import CampaignDefinition, CampaignFileError, parse_definition
from bot.store import CampaignRepo, Database
from bot.store.models import Campaign

log = logging.getLogger("waihu.campaigns")


class CampaignControlError(ValueError):
    """A campaign that cannot be started, paused or resumed, with the reason."""


def save_campaign(db: Database, defn: CampaignDefinition) -> int:
    """Create the campaign, or update its definition and script hash; returns its id."""
    with db.session() as session:
        campaign = CampaignRepo(session).upsert_definition(
            defn.name, defn.type, defn.model_dump(mode="json"), defn.wording_hash())
        return campaign.id


def campaign_definition(campaign: Campaign) -> CampaignDefinition:
    """The stored definition, validated (``CampaignFileError`` if it no longer is valid)."""
    return parse_definition(campaign.definition, f"campaign {campaign.name}")


def definition_or_none(campaign: Campaign) -> CampaignDefinition | None:
    """The stored definition, or None (logged) when it no longer is valid: the dialer skips
    such a campaign and closes its calls without rescheduling them."""
    try:
        return campaign_definition(campaign)
    except CampaignFileError as exc:
        log.error("dialer.bad_definition campaign=%s error=%s", campaign.name, exc)
        return None


@dataclass(frozen=True)
class StartResult:
    name: str
    status: str
    warning: DeadlineWarning | None = None
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {"name": self.name, "status": self.status,
                "warning": self.warning.as_json() if self.warning else None,
                "notes": list(self.notes)}


def _campaign(repo: CampaignRepo, name: str) -> Campaign:
    campaign = repo.by_name(name)
    if campaign is None:
        raise CampaignControlError(f"no campaign named {name!r}")
    return campaign


def start_campaign(db: Database, name: str, now: datetime, *, force: bool = False
                   ) -> StartResult:
    """Set the campaign running and say what may go wrong with it.

    A notification whose deadline has passed is refused unless *force*; one launched fewer
    than ``notify_lead_days`` days before its deadline starts with a warning.  Notes report a
    schedule with no window left and a missing second-confirmation campaign.
    """
    with db.session(write=True) as session:
        repo = CampaignRepo(session)
        campaign = _campaign(repo, name)
        defn = campaign_definition(campaign)
        warning = deadline_warning(defn, now.astimezone(defn.zone).date())
        if warning is not None and warning.level == "error" and not force:
            raise CampaignControlError(f"campaign {name}: {warning.message} "
                                       "(use --force to start it anyway)")
        notes = []
        if next_window_start(defn, now) is None:
            notes.append("the schedule has no calling window left (see schedule.end_date)")
        follow = defn.follow_ups.second_confirmation
        if follow and defn.has_trial:
            target = repo.by_name(follow)
            if target is None:
                notes.append(f"second-confirmation campaign {follow!r} does not exist yet: "
                             "trials sold now get no second call until it is created")
            elif target.status != "running":
                notes.append(f"second-confirmation campaign {follow!r} is {target.status}: "
                             "start it so that trials are re-confirmed in time")
        campaign.status = "running"
        session.flush()
        log.info("campaign.started campaign=%s forced=%s", name,
                 bool(force and warning is not None))
        return StartResult(name, campaign.status, warning, notes)


def pause_campaign(db: Database, name: str) -> str:
    """Stop handing out new calls (calls in progress finish); returns the new status."""
    with db.session(write=True) as session:
        campaign = _campaign(CampaignRepo(session), name)
        if campaign.status not in ("running", "paused"):
            raise CampaignControlError(f"campaign {name} is {campaign.status}, not running")
        campaign.status = "paused"
        log.info("campaign.paused campaign=%s", name)
        return campaign.status


def resume_campaign(db: Database, name: str) -> str:
    """Resume a paused campaign; returns the new status."""
    with db.session(write=True) as session:
        campaign = _campaign(CampaignRepo(session), name)
        if campaign.status not in ("running", "paused"):
            raise CampaignControlError(f"campaign {name} is {campaign.status}; "
                                       "use `waihu campaign start` to start it")
        campaign.status = "running"
        log.info("campaign.resumed campaign=%s", name)
        return campaign.status
