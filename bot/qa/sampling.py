"""QA samples (DESIGN.md, recording and QA; issue 15 item 3): each day a random share of
the previous day's valid calls of each campaign, and each week another share, not drawn
on a day, for the supervisors.  Settings: the campaign's ``qa:`` section.

A sample is drawn once, when its period is over (plus `SETTLE`, so that a call still going
at midnight has ended), and stored; drawing it again returns the stored one.  It records
what an auditor needs to draw it again (bot/qa/draw.py): :func:`verify_sample` does, from
the database as it is now, and lists every difference.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.campaigns.definition import ValidCall
from bot.qa.draw import Candidate, Pick, Rule, derive_seed, draw, population_digest
from bot.qa.population import local_bounds, qa_settings, valid_calls
from bot.store import Database
from bot.store.models import Campaign, QaSample, QaSampleCall

log = logging.getLogger("waihu.qa")

Kind = Literal["daily", "weekly"]
SETTLE = timedelta(hours=1)


class SamplingRefused(ValueError):
    """A sample that cannot be drawn (yet); the message says why."""


@dataclass(frozen=True)
class SampleResult:
    """A campaign's sample of one period.  ``stored`` is False for a period without valid
    calls (nothing is stored: there is nothing to review or to audit)."""

    campaign: str
    kind: str
    period_start: date
    period_end: date
    population_size: int
    eligible_size: int
    rule: dict[str, Any]
    seed: str
    picks: list[Pick]
    stored: bool
    sample_id: int | None = None
    fresh: bool = False  # drawn by this call (False: found, drawn before or elsewhere)

    def as_json(self) -> dict[str, Any]:
        return {"campaign": self.campaign, "kind": self.kind,
                "period": [self.period_start.isoformat(), self.period_end.isoformat()],
                "sample_id": self.sample_id, "population_size": self.population_size,
                "eligible_size": self.eligible_size, "rule": self.rule,
                "seed": self.seed if self.stored else None,
                "call_ids": [p.call_id for p in self.picks],
                "reasons": {p.call_id: p.reason for p in self.picks}}


@dataclass(frozen=True)
class SampleCheck:
    sample_id: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def period_of(kind: Kind, day: date) -> tuple[date, date]:
    """The day itself, or its week (Monday to Sunday)."""
    if kind == "daily":
        return day, day
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)


def _rule(campaign: Campaign, kind: Kind) -> Rule:
    sampling = qa_settings(campaign).sampling
    valid = sampling.valid_call.model_dump(mode="json")
    if kind == "weekly":  # the supervisors' share: random only
        return Rule(sampling.weekly_rate, valid_call=valid)
    return Rule(sampling.daily_rate, tuple(sampling.always_include), sampling.min_per_agent,
                valid)


def _result(campaign: Campaign, sample: QaSample) -> SampleResult:
    return SampleResult(campaign.name, sample.kind, sample.period_start, sample.period_end,
                        sample.population_size, sample.eligible_size, dict(sample.rule),
                        sample.seed, [Pick(c.call_id, c.reason) for c in sample.calls],
                        True, sample.id)


def _stored(session: Session, campaign_id: int, kind: str, start: date) -> QaSample | None:
    return session.scalar(select(QaSample).where(
        QaSample.campaign_id == campaign_id, QaSample.kind == kind,
        QaSample.period_start == start))


def _drawn_daily(session: Session, campaign_id: int, first: date, last: date) -> set[str]:
    return set(session.scalars(
        select(QaSampleCall.call_id).join(QaSample, QaSample.id == QaSampleCall.sample_id)
        .where(QaSample.campaign_id == campaign_id, QaSample.kind == "daily",
               QaSample.period_start >= first, QaSample.period_start <= last)))


def _population(session: Session, campaign: Campaign, kind: str, first: date, last: date,
                rule: Rule) -> tuple[list[Candidate], list[Candidate]]:
    """(every valid call of the period, those that may be drawn)."""
    zone = qa_settings(campaign).zone
    everyone = valid_calls(session, campaign.id, first, last, zone,
                           ValidCall.model_validate(rule.valid_call))
    if kind == "daily":
        return everyone, everyone
    drawn = _drawn_daily(session, campaign.id, first, last)
    return everyone, [c for c in everyone if c.call_id not in drawn]


def draw_sample(db: Database, campaign_name: str, kind: Kind, day: date, *, now: datetime,
                drawn_by: str, nonce: str | None = None) -> SampleResult:
    """The campaign's sample of the period of *day* (drawn and stored the first time).
    A weekly sample first draws the daily samples of its days, whose calls it leaves out.
    *nonce*: for tests; by default 16 random bytes."""
    first, last = period_of(kind, day)
    with db.session() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.name == campaign_name))
        if campaign is None:
            raise SamplingRefused(f"no campaign {campaign_name!r}")
        zone = qa_settings(campaign).zone
        stored = _stored(session, campaign.id, kind, first)
        if stored is not None:
            return _result(campaign, stored)
    if now < local_bounds(first, last, zone)[1] + SETTLE:
        raise SamplingRefused(f"the {kind} period {first}..{last} of {campaign_name} is not "
                              f"over yet (in {zone.key}, plus {SETTLE} for calls to end)")
    if kind == "weekly":
        for offset in range(7):
            draw_sample(db, campaign_name, "daily", first + timedelta(days=offset), now=now,
                        drawn_by=drawn_by)
    try:
        return _draw_and_store(db, campaign_name, kind, first, last, now=now,
                               drawn_by=drawn_by, nonce=nonce or secrets.token_hex(16))
    except IntegrityError:  # drawn at the same moment elsewhere: theirs is the sample
        log.info("qa.sample_raced campaign=%s kind=%s period=%s", campaign_name, kind, first)
        with db.session() as session:
            campaign = session.scalar(select(Campaign).where(Campaign.name == campaign_name))
            stored = None if campaign is None else _stored(session, campaign.id, kind, first)
            if campaign is None or stored is None:
                raise
            return _result(campaign, stored)


def _draw_and_store(db: Database, campaign_name: str, kind: Kind, first: date, last: date,
                    *, now: datetime, drawn_by: str, nonce: str) -> SampleResult:
    with db.session(write=True) as session:
        campaign = session.scalar(select(Campaign).where(Campaign.name == campaign_name))
        assert campaign is not None  # checked by the caller; campaigns are not deleted
        stored = _stored(session, campaign.id, kind, first)
        if stored is not None:
            return _result(campaign, stored)
        rule = _rule(campaign, kind)
        everyone, eligible = _population(session, campaign, kind, first, last, rule)
        seed = derive_seed(campaign.id, kind, first, rule, nonce)
        picks = draw(eligible, rule, seed, population_size=len(everyone))
        if not everyone:
            log.info("qa.sample_drawn campaign=%s kind=%s period=%s..%s population=0 drawn=0 "
                     "seed=- by=%s (no valid call: nothing stored)", campaign.name, kind,
                     first, last, drawn_by)
            return SampleResult(campaign.name, kind, first, last, 0, 0, rule.as_json(), seed,
                                [], False, fresh=True)
        sample = QaSample(
            campaign_id=campaign.id, kind=kind, period_start=first, period_end=last,
            timezone=qa_settings(campaign).zone.key, rule=rule.as_json(),
            population_size=len(everyone), eligible_size=len(eligible),
            population_sha256=population_digest(c.call_id for c in everyone),
            nonce=nonce, seed=seed, drawn_at=now, drawn_by=drawn_by,
            calls=[QaSampleCall(call_id=p.call_id, position=i, reason=p.reason)
                   for i, p in enumerate(picks)])
        session.add(sample)
        session.flush()
        log.info("qa.sample_drawn campaign=%s kind=%s period=%s..%s population=%d drawn=%d "
                 "seed=%s by=%s sample=%d", campaign.name, kind, first, last, len(everyone),
                 len(picks), seed, drawn_by, sample.id)
        return replace(_result(campaign, sample), fresh=True)


def draw_samples(db: Database, kind: Kind, day: date, *, now: datetime, drawn_by: str,
                 campaign: str | None = None) -> list[SampleResult]:
    """:func:`draw_sample` for one campaign, or for every campaign by name."""
    if campaign is not None:
        names = [campaign]
    else:
        with db.session() as session:
            names = list(session.scalars(select(Campaign.name).order_by(Campaign.name)))
    return [draw_sample(db, name, kind, day, now=now, drawn_by=drawn_by) for name in names]


def verify_sample(db: Database, sample_id: int) -> SampleCheck:
    """Draw the stored sample again from what it records and the database as it is now;
    every difference is a problem (a changed population, seed or drawn call)."""
    with db.session() as session:
        sample = session.get(QaSample, sample_id)
        if sample is None:
            raise SamplingRefused(f"no QA sample {sample_id}")
        campaign = session.get(Campaign, sample.campaign_id)
        assert campaign is not None  # foreign key
        problems: list[str] = []
        try:
            rule = Rule.from_json(dict(sample.rule))
        except (KeyError, ValueError) as exc:
            return SampleCheck(sample_id, [f"the recorded rule cannot be read: {exc}"])
        seed = derive_seed(campaign.id, sample.kind, sample.period_start, rule, sample.nonce)
        if seed != sample.seed:
            problems.append(f"seed {sample.seed[:12]}… is not the one its record derives "
                            f"({seed[:12]}…)")
        everyone, eligible = _population(session, campaign, sample.kind, sample.period_start,
                                         sample.period_end, rule)
        if len(everyone) != sample.population_size:
            problems.append(f"population: {len(everyone)} valid calls now, "
                            f"{sample.population_size} recorded")
        if population_digest(c.call_id for c in everyone) != sample.population_sha256:
            problems.append("population: the valid calls are not the ones drawn from")
        expected = draw(eligible, rule, seed, population_size=len(everyone))
        recorded = [Pick(c.call_id, c.reason) for c in sample.calls]
        if expected != recorded:
            missing = [p.call_id for p in expected if p not in recorded]
            extra = [p.call_id for p in recorded if p not in expected]
            problems.append(f"drawn calls differ: {len(missing)} expected not recorded "
                            f"({', '.join(missing[:5])}), {len(extra)} recorded not "
                            f"expected ({', '.join(extra[:5])})")
        return SampleCheck(sample_id, problems)
