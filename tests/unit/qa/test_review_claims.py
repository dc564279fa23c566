"""QA claims and reviews (bot/qa/review.py) on both databases: one holder at a time, expiry,
renewal, only sampled calls, the review needing the claim and releasing it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.qa import review
from bot.qa.scorecard import RULES, checkpoint_field, parse_scorecard
from bot.store import Database
from bot.store.models import QaClaim

from ..console.qa_helpers import sampled_call

T0 = datetime(2030, 5, 6, 9, 0, tzinfo=UTC)


def test_claims_conflict_expire_and_renew(db: Database, tmp_path: Path) -> None:
    _, call_id = sampled_call(db, tmp_path, recording=False)
    first = review.claim_call(db, call_id, "qa1", T0)
    assert first.expires_at == T0 + review.CLAIM_TTL
    with pytest.raises(review.ClaimConflict) as conflict:
        review.claim_call(db, call_id, "qa2", T0 + timedelta(minutes=29))
    assert conflict.value.holder == "qa1"
    renewed = review.claim_call(db, call_id, "qa1", T0 + timedelta(minutes=10))
    assert renewed.expires_at == T0 + timedelta(minutes=40)
    taken = review.claim_call(db, call_id, "qa2", T0 + timedelta(minutes=41))
    assert taken.reviewer == "qa2"
    with pytest.raises(review.NotSampled):
        review.claim_call(db, "no-such-call", "qa1", T0)


def test_review_needs_the_claim_and_releases_it(db: Database, tmp_path: Path) -> None:
    _, call_id = sampled_call(db, tmp_path, recording=False)
    card = parse_scorecard({checkpoint_field(r, c): "on" for r in RULES for c in r.checkpoints})
    assert card.compliant and card.points == 100
    with pytest.raises(review.ClaimConflict):
        review.submit_review(db, call_id, "qa1", card, T0)
    review.claim_call(db, call_id, "qa1", T0)
    with pytest.raises(review.ClaimConflict):  # expired
        review.submit_review(db, call_id, "qa1", card, T0 + timedelta(minutes=31))
    review.claim_call(db, call_id, "qa1", T0 + timedelta(minutes=31))
    result = review.submit_review(db, call_id, "qa1", card, T0 + timedelta(minutes=32))
    assert result.callback_id is None  # compliant
    with db.session() as session:
        assert session.scalars(select(QaClaim)).all() == []
    [listed] = review.sampled_calls(db, T0)
    assert (listed["reviewed"], listed["reviewer"], listed["claimed_by"]) == (True, "qa1", None)
