"""The QA reviewer's work on sampled calls (issue 15 item 4): the list of sampled calls with
their review status, claims that expire, one call's review (transcript with times, automatic
flags, the recording's file) and the scorecard's submission.

Database work only, called by the console (bot/console/qa_pages.py) in a thread.  Only calls
drawn into a QA sample (bot/qa/sampling.py) can be opened, claimed or reviewed here; the
recording's path is read from the call's row, never taken from a request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.campaigns.qa import QaResult, record_qa_review
from bot.console.call_pop import mask_text
from bot.privacy import mask_phone
from bot.qa.callview import call_view
from bot.qa.flags import LABELS, flags
from bot.qa.scorecard import Scorecard
from bot.store import Database
from bot.store.models import (
    Call,
    Campaign,
    Contact,
    Escalation,
    EscalationOffer,
    QaClaim,
    QaReview,
    QaRuleResult,
    QaSample,
    QaSampleCall,
    User,
)
from bot.store.repos.audit import AuditRepo
from bot.store.repos.library import LibraryRepo, describe

log = logging.getLogger("waihu.qa")
CLAIM_TTL = timedelta(minutes=30)
LISTED = 200  # the newest sampled calls shown on the list


class NotSampled(LookupError):
    """No such call in any QA sample."""


class ClaimConflict(Exception):
    """Another reviewer holds the call (or the reviewer does not hold it)."""

    def __init__(self, holder: str | None, until: datetime | None) -> None:
        super().__init__(f"claimed by {holder} until {until}" if holder else "not claimed")
        self.holder, self.until = holder, until


@dataclass(frozen=True)
class Claim:
    call_id: str
    reviewer: str
    expires_at: datetime


def sampled_call(session: Session, call_id: str) -> Call:
    call = session.get(Call, call_id)
    if call is None or session.scalar(select(QaSampleCall.id).where(
            QaSampleCall.call_id == call_id).limit(1)) is None:
        raise NotSampled(call_id)
    return call


def agents_of_calls(session: Session, call_ids: list[str]) -> dict[str, str]:
    rows = session.execute(
        select(Escalation.call_id, User.username).join(
            EscalationOffer, EscalationOffer.escalation_id == Escalation.id).join(
            User, User.id == EscalationOffer.agent_id).where(
            Escalation.call_id.in_(call_ids), EscalationOffer.outcome == "accepted"))
    return {call_id: name for call_id, name in rows}


def _latest_reviews(session: Session, call_ids: list[str]) -> dict[str, QaReview]:
    latest: dict[str, QaReview] = {}
    for review in session.scalars(select(QaReview).where(QaReview.call_id.in_(call_ids))
                                  .order_by(QaReview.id)):
        latest[review.call_id] = review
    return latest


def _live_claims(session: Session, call_ids: list[str], now: datetime) -> dict[str, QaClaim]:
    return {c.call_id: c for c in session.scalars(select(QaClaim).where(
        QaClaim.call_id.in_(call_ids), QaClaim.expires_at > now))}


def sampled_calls(db: Database, now: datetime) -> list[dict[str, Any]]:
    """The newest sampled calls, each with its campaign, answer time, outcome, agent, number
    of automatic flags and review status (reviewed, claimed by whom until when, or open)."""
    with db.session() as session:
        rows = session.execute(
            select(QaSampleCall.call_id, QaSample.kind, QaSampleCall.reason, Campaign.name,
                   Call.started_at, Call.outcome)
            .join(QaSample, QaSample.id == QaSampleCall.sample_id)
            .join(Call, Call.id == QaSampleCall.call_id)
            .join(Campaign, Campaign.id == Call.campaign_id)
            .order_by(Call.started_at.desc()).limit(LISTED)).all()
        ids = [r.call_id for r in rows]
        agents, reviews = agents_of_calls(session, ids), _latest_reviews(session, ids)
        claims = _live_claims(session, ids, now)
        listed, seen = [], set()
        for r in rows:
            if r.call_id in seen:  # drawn daily and weekly: once on the list
                continue
            seen.add(r.call_id)
            review, claim = reviews.get(r.call_id), claims.get(r.call_id)
            listed.append({
                "call_id": r.call_id, "campaign": r.name, "kind": r.kind, "reason": r.reason,
                "started_at": r.started_at, "outcome": r.outcome,
                "agent": agents.get(r.call_id), "flags": len(flags(call_view(session,
                                                                           r.call_id))),
                "reviewed": None if review is None else review.compliant,
                "reviewer": None if review is None else review.reviewer,
                "claimed_by": None if claim is None else claim.reviewer,
                "claimed_until": None if claim is None else claim.expires_at})
        return listed


def claim_call(db: Database, call_id: str, reviewer: str, now: datetime,
               ttl: timedelta = CLAIM_TTL) -> Claim:
    """Claim (or renew one's own claim on) a sampled call for *ttl*; ClaimConflict while
    another reviewer's claim has not expired.  Audited as ``qa.claimed``."""
    try:
        return _claim(db, call_id, reviewer, now, ttl)
    except IntegrityError as exc:  # PostgreSQL: another reviewer inserted the claim first
        with db.session() as session:
            held = session.get(QaClaim, call_id)
            raise ClaimConflict(held.reviewer if held else None,
                                held.expires_at if held else None) from exc


def _claim(db: Database, call_id: str, reviewer: str, now: datetime, ttl: timedelta) -> Claim:
    with db.session(write=True) as session:
        sampled_call(session, call_id)
        held = session.scalar(select(QaClaim).where(QaClaim.call_id == call_id)
                              .with_for_update())
        if held is not None and held.reviewer != reviewer and held.expires_at > now:
            raise ClaimConflict(held.reviewer, held.expires_at)
        if held is None:
            held = QaClaim(call_id=call_id, reviewer=reviewer, claimed_at=now,
                           expires_at=now + ttl)
            session.add(held)
        else:
            held.reviewer, held.claimed_at, held.expires_at = reviewer, now, now + ttl
        AuditRepo(session).record(f"user:{reviewer}", "qa.claimed", call_id, at=now,
                                  expires_at=held.expires_at.isoformat())
        session.flush()
        log.info("qa.claimed call_id=%s reviewer=%s", call_id, reviewer)
        return Claim(call_id, reviewer, held.expires_at)


def _ms(at: datetime | None, origin: datetime) -> int | None:
    return None if at is None else max(0, int((at - origin).total_seconds() * 1000))


def call_review(db: Database, call_id: str, now: datetime) -> dict[str, Any]:
    """What the review page shows of a sampled call (NotSampled otherwise): the number
    masked, the turns with their times (ms from the answer, where the recording starts),
    the automatic flags with their labels, the claim and the reviews so far."""
    with db.session() as session:
        call = sampled_call(session, call_id)
        view = call_view(session, call_id)
        contact = session.get(Contact, call.contact_id)
        campaign = session.get(Campaign, call.campaign_id)
        claim = _live_claims(session, [call_id], now).get(call_id)
        reviews = session.scalars(select(QaReview).where(QaReview.call_id == call_id)
                                  .order_by(QaReview.id)).all()
        kept = LibraryRepo(session).of_call(call_id)  # the recording library's entry
        return {
            "call_id": call.id, "campaign": campaign.name if campaign else "",
            "phone": mask_phone(contact.phone) if contact else "",
            "started_at": call.started_at, "ended_at": call.ended_at, "outcome": call.outcome,
            "agent": agents_of_calls(session, [call_id]).get(call_id),
            "has_recording": bool(call.recording_path),
            "turns": [{"seq": t.seq, "speaker": t.speaker, "text": mask_text(t.text),
                       "start_ms": t.start_ms, "end_ms": t.end_ms} for t in view.turns],
            "flags": [{"kind": f.kind, "at_ms": f.at_ms, "detail": mask_text(f.detail),
                       "zh": LABELS.get(f.kind, (f.kind, ""))[0],
                       "en": LABELS.get(f.kind, ("", f.kind))[1]} for f in flags(view)],
            "claimed_by": None if claim is None else claim.reviewer,
            "claimed_until": None if claim is None else claim.expires_at,
            "reviews": [{"reviewer": r.reviewer, "compliant": r.compliant, "notes": r.notes,
                         "at": r.created_at} for r in reviews],
            "library": None if kept is None else {**describe(kept),
                                                  "marked_at": kept.marked_at},
        }


def recording_file(db: Database, call_id: str) -> Path | None:
    """The recording of a sampled call as stored in its row (NotSampled otherwise); None
    when the call has none or the file is gone."""
    with db.session() as session:
        path = sampled_call(session, call_id).recording_path
    found = Path(path) if path else None
    return found if found is not None and found.is_file() else None


def submit_review(db: Database, call_id: str, reviewer: str, card: Scorecard,
                  now: datetime) -> QaResult:
    """Record a reviewer's scorecard: the reviewer must hold the call's claim.  The verdict
    goes through `record_qa_review` (a non-compliant sale: no longer valid, its customer
    gets the QA follow-up call); the scorecard is in the audit log as ``qa.reviewed``; the
    claim is released."""
    with db.session(write=True) as session:
        sampled_call(session, call_id)
        held = session.scalar(select(QaClaim).where(QaClaim.call_id == call_id))
        if held is None or held.reviewer != reviewer or held.expires_at <= now:
            live = held is not None and held.expires_at > now
            raise ClaimConflict(held.reviewer if live and held else None,
                                held.expires_at if live and held else None)
    result = record_qa_review(db, call_id, reviewer, card.compliant, card.notes(), now=now)
    with db.session(write=True) as session:
        AuditRepo(session).record(f"user:{reviewer}", "qa.reviewed", call_id, at=now,
                                  review_id=result.review_id, callback_id=result.callback_id,
                                  note=result.note, scorecard=card.as_json())
        # Each rule's result in rows of its own: the weekly summary counts them by rule.
        session.add_all(QaRuleResult(review_id=result.review_id, rule=rule, passed=passed,
                                     points=points, max_points=most)
                        for rule, passed, points, most in card.by_rule())
        claim = session.get(QaClaim, call_id)
        if claim is not None and claim.reviewer == reviewer:
            session.delete(claim)
    log.info("qa.reviewed call_id=%s reviewer=%s compliant=%s callback=%s", call_id,
             reviewer, card.compliant, result.callback_id)
    return result
