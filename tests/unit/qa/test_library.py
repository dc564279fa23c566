"""The recording library's service (bot/qa/library.py) on a real database: marking a sampled
call, changing and removing its entry (each audited with what it was), filtering by kind and
tag, the form's rules; and the migration that recovers QA rule results from the audit log."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.qa import library
from bot.qa.review import NotSampled
from bot.qa.scorecard import RULES
from bot.store import Database
from bot.store.models import (
    QA_RULES,
    AuditEntry,
    LibraryTag,
    QaReview,
    QaRuleResult,
    QaSample,
    QaSampleCall,
)
from bot.store.repos.audit import AuditRepo

from .seeding import add_call, add_campaign

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def sampled(db: Database, campaign_id: int, *call_ids: str) -> None:
    with db.session() as session:
        sample = QaSample(campaign_id=campaign_id, kind="daily", period_start=date(2026, 11, 24),
                          period_end=date(2026, 11, 24), timezone="Asia/Shanghai", rule={},
                          population_size=len(call_ids), eligible_size=len(call_ids),
                          population_sha256="0" * 64, nonce="0" * 64, seed="0" * 64,
                          drawn_at=NOW, drawn_by="test")
        session.add(sample)
        session.flush()
        session.add_all(QaSampleCall(sample_id=sample.id, call_id=c, position=i,
                                     reason="random") for i, c in enumerate(call_ids))


def mark(kind: str, note: str, tags: str = "") -> library.Mark:
    return library.parse_mark({"kind": kind, "note": note, "tags": tags})


def audit(db: Database, action: str) -> list[AuditEntry]:
    with db.session() as session:
        return AuditRepo(session).entries(action)


def test_mark_change_and_remove(db: Database) -> None:
    campaign = add_campaign(db)
    first, second, unsampled = (add_call(db, campaign, n) for n in (1, 2, 3))
    sampled(db, campaign, first, second)
    stored = library.mark_call(db, first, "qa", mark("exemplary", "开场白清楚 13812345678",
                                                     "开场白, Disclosure 开场白"), NOW)
    assert stored["note"] == "开场白清楚 138****5678"  # a number in a note is masked
    assert stored["tags"] == ["disclosure", "开场白"]
    library.mark_call(db, second, "supervisor", mark("problem", "没有说明价格", "价格"), NOW)
    with pytest.raises(NotSampled):
        library.mark_call(db, unsampled, "qa", mark("problem", "x"), NOW)

    found = library.library(db)
    assert [e["call_id"] for e in found["entries"]] == [second, first]  # newest marked first
    assert found["kinds"] == {"exemplary": 1, "problem": 1}
    assert found["tags"] == {"disclosure": 1, "价格": 1, "开场白": 1}
    assert [e["call_id"] for e in library.library(db, kind="problem")["entries"]] == [second]
    assert [e["call_id"] for e in library.library(db, tag="开场白")["entries"]] == [first]
    assert library.library(db, kind="exemplary", tag="价格")["entries"] == []
    with pytest.raises(library.LibraryFormError):
        library.library(db, kind="nonsense")

    # Marked again: the same entry changes; the audit keeps what it was.
    later = NOW + timedelta(hours=1)
    library.mark_call(db, first, "supervisor", mark("problem", "其实语速太快", "语速 开场白"),
                      later)
    [changed] = library.library(db, tag="语速")["entries"]
    assert (changed["call_id"], changed["kind"], changed["marked_by"]) == (
        first, "problem", "supervisor")
    assert changed["tags"] == ["开场白", "语速"]
    marked = audit(db, "library.marked")
    assert [e.subject for e in marked] == [first, second, first]
    assert marked[0].detail["previous"] is None
    assert marked[2].detail["previous"]["kind"] == "exemplary"
    assert marked[2].detail["previous"]["tags"] == ["disclosure", "开场白"]
    assert marked[2].actor == "user:supervisor"

    assert library.unmark_call(db, first, "qa", later) is True
    assert library.unmark_call(db, first, "qa", later) is False  # not in it any more
    assert [e["call_id"] for e in library.library(db)["entries"]] == [second]
    [removed] = audit(db, "library.removed")
    assert removed.detail["previous"]["note"] == "其实语速太快"
    with db.session() as session:  # the entry's tags went with it
        assert sorted(session.scalars(select(LibraryTag.tag))) == ["价格"]


@pytest.mark.parametrize(("form", "message"), [
    ({"kind": "great", "note": "x"}, "Choose exemplary or problem"),
    ({"kind": "problem", "note": "  "}, "A note is needed"),
    ({"kind": "problem", "note": "x" * 2001}, "longer than 2000"),
    ({"kind": "problem", "note": "x", "tags": "t" * 41}, "longer than 40"),
    ({"kind": "problem", "note": "x", "tags": " ".join(f"t{i}" for i in range(11))},
     "At most 10 tags"),
])
def test_form_refusals(form: dict[str, str], message: str) -> None:
    with pytest.raises(library.LibraryFormError, match=message):
        library.parse_mark(form)


def test_tags_are_split_and_normalised() -> None:
    assert library.parse_tags("#Price，价格、 price;语速  ") == ("price", "价格", "语速")
    assert library.parse_tags("") == ()


def test_scorecard_rules_are_the_stored_rules() -> None:
    assert tuple(r.key for r in RULES) == QA_RULES


def test_migration_recovers_rule_results_from_the_audit_log(fresh_db: Database) -> None:
    """Reviews made before 0017 kept their scorecard in the audit log only: upgrading
    copies each rule's result from it (no points: the audit did not keep them)."""
    campaign = add_campaign(fresh_db)
    call_id = add_call(fresh_db, campaign, 1)
    fresh_db.downgrade("0016")
    with fresh_db.session() as session:
        review = QaReview(call_id=call_id, reviewer="qa", compliant=False, created_at=NOW)
        session.add(review)
        session.flush()
        AuditRepo(session).record("user:qa", "qa.reviewed", call_id, at=NOW,
                                  review_id=review.id, scorecard={
                                      "failed_rules": ["approved_script"], "compliant": False})
        AuditRepo(session).record("user:qa", "qa.reviewed", call_id, at=NOW,
                                  review_id=review.id + 99, scorecard={"failed_rules": []})
        review_id = review.id
    fresh_db.upgrade()
    with fresh_db.session() as session:
        rows = session.scalars(select(QaRuleResult).order_by(QaRuleResult.rule)).all()
        assert [(r.review_id, r.rule, r.passed, r.points) for r in rows] == [
            (review_id, "approved_script", False, None),
            (review_id, "explicit_consent", True, None),
            (review_id, "right_person", True, None),
            (review_id, "understood", True, None)]


def test_a_submitted_scorecard_stores_each_rule(db: Database) -> None:
    """The weekly summary counts QA results by rule from these rows."""
    from bot.qa import review
    from bot.qa.scorecard import checkpoint_field, parse_scorecard

    campaign = add_campaign(db)
    call_id = add_call(db, campaign, 1, outcome="declined")
    sampled(db, campaign, call_id)
    form = {checkpoint_field(r, c): "on" for r in RULES for c in r.checkpoints}
    del form["cp.explicit_consent.readback_confirmed"]  # required: the rule fails
    del form["cp.understood.repeats_within_limit"]  # not required: the rule passes
    review.claim_call(db, call_id, "qa", NOW)
    result = review.submit_review(db, call_id, "qa", parse_scorecard(form), NOW)
    with db.session() as session:
        rows = {r.rule: (r.passed, r.points, r.max_points) for r in session.scalars(
            select(QaRuleResult).where(QaRuleResult.review_id == result.review_id))}
    assert rows == {"right_person": (True, 25, 25), "understood": (True, 10, 20),
                    "approved_script": (True, 35, 35), "explicit_consent": (False, 10, 20)}
