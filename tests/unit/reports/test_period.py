"""Daily and weekly figures on the seeded database (tests/unit/reports/seeding.py)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.reports import figures
from bot.reports.period import format_period, period_bounds, period_figures, period_label
from bot.store import CampaignRepo, ConsentLedger, Database
from bot.store.models import Call, Complaint, Consent, Contact, QaReview

from .seeding import Seeded, local, seed

ZERO_COMPLAINTS = {"calls": 0, "escalated": 0, "blacklisted": 0, "recorded": 0,
                   "unresolved": 0}
ONE_COMPLAINT_CALL = {**ZERO_COMPLAINTS, "calls": 1, "escalated": 1, "blacklisted": 1}


def period(db: Database, start: date, end: date, campaign: str | None = None,
           tz: str = "Asia/Shanghai") -> dict[str, Any]:
    with db.session() as session:
        found = CampaignRepo(session).by_name(campaign) if campaign else None
        return period_figures(session, campaign=found, start=start, end=end, tz=tz)


@pytest.fixture
def seeded(db: Database) -> Seeded:
    return seed(db)


def test_daily_figures_of_one_campaign(db: Database, seeded: Seeded) -> None:
    fig = period(db, seeded.day, seeded.day, seeded.marketing)
    assert (fig["period"], fig["label"], fig["campaign"]) == ("daily", "2026-11-18",
                                                             "seed-marketing")
    # The 18th: 21 attempts dialled, 13 answered; the ledger has m1's and m6's consents (m13's
    # consented outcome is not in the ledger, so it is no valid sale).
    assert fig["totals"] == {
        "calls": 21, "in_progress": 0, "connected": 13, "connect_rate": 0.619,
        "valid_sales": 2, "valid_sale_rate": 0.1538, "valid_sale_rate_over_dialled": 0.0952,
        "escalations": 2, "complaints": ONE_COMPLAINT_CALL}
    assert fig["campaigns"] == [{"campaign": "seed-marketing", **fig["totals"]}]
    assert fig["days"] == [{"date": "2026-11-18", **fig["totals"]}]


def test_the_local_day_decides(db: Database, seeded: Seeded) -> None:
    """m19's attempt at 00:30 on the 19th (16:30 UTC on the 18th) belongs to the 19th."""
    fig = period(db, date(2026, 11, 19), date(2026, 11, 19), seeded.marketing)
    assert fig["totals"] == {
        "calls": 3, "in_progress": 1, "connected": 2, "connect_rate": 0.6667,
        "valid_sales": 0, "valid_sale_rate": 0.0, "valid_sale_rate_over_dialled": 0.0,
        "escalations": 0, "complaints": ZERO_COMPLAINTS}
    utc = period(db, date(2026, 11, 18), date(2026, 11, 18), seeded.marketing, tz="UTC")
    assert utc["totals"]["calls"] == 22  # 21 + m19's, in UTC all on the 18th


def test_weekly_figures_of_one_campaign(db: Database, seeded: Seeded) -> None:
    start, end = period_bounds("weekly", seeded.day)
    fig = period(db, start, end, seeded.marketing)
    assert (fig["period"], fig["label"], fig["start"], fig["end"]) == (
        "weekly", "2026-W47", "2026-11-16", "2026-11-22")
    # m20's busy attempt of the 13th is in the week before.
    assert fig["totals"] == {
        "calls": 24, "in_progress": 1, "connected": 15, "connect_rate": 0.625,
        "valid_sales": 2, "valid_sale_rate": 0.1333, "valid_sale_rate_over_dialled": 0.0833,
        "escalations": 2, "complaints": ONE_COMPLAINT_CALL}
    assert [(d["date"], d["calls"], d["connected"], d["valid_sales"]) for d in fig["days"]] == [
        ("2026-11-16", 0, 0, 0), ("2026-11-17", 0, 0, 0), ("2026-11-18", 21, 13, 2),
        ("2026-11-19", 3, 2, 0), ("2026-11-20", 0, 0, 0), ("2026-11-21", 0, 0, 0),
        ("2026-11-22", 0, 0, 0)]


def test_weekly_figures_of_all_campaigns(db: Database, seeded: Seeded) -> None:
    start, end = period_bounds("weekly", date(2026, 11, 22))  # any day of the week
    fig = period(db, start, end)
    assert fig["campaign"] is None
    assert fig["totals"] == {
        "calls": 32, "in_progress": 1, "connected": 22, "connect_rate": 0.6875,
        "valid_sales": 3, "valid_sale_rate": 0.1364, "valid_sale_rate_over_dialled": 0.0938,
        "escalations": 2, "complaints": ONE_COMPLAINT_CALL}
    assert [(r["campaign"], r["calls"], r["connected"], r["valid_sales"],
             r["complaints"]["calls"]) for r in fig["campaigns"]] == [
        ("seed-confirm", 3, 3, 1, 0), ("seed-marketing", 24, 15, 2, 1),
        ("seed-survey", 5, 4, 0, 0)]
    assert [(d["date"], d["calls"], d["connected"], d["valid_sales"], d["connect_rate"])
            for d in fig["days"] if d["calls"]] == [
        ("2026-11-18", 26, 17, 2, 0.6538), ("2026-11-19", 3, 2, 0, 0.6667),
        ("2026-11-20", 3, 3, 1, 1.0)]


def test_a_quiet_day(db: Database, seeded: Seeded) -> None:
    fig = period(db, date(2026, 11, 21), date(2026, 11, 21))
    assert fig["campaigns"] == []
    assert fig["totals"]["calls"] == 0 and fig["totals"]["connect_rate"] == 0.0
    quiet = period(db, date(2026, 11, 21), date(2026, 11, 21), seeded.survey)
    assert [r["campaign"] for r in quiet["campaigns"]] == ["seed-survey"]  # named: listed


def test_text_report(db: Database, seeded: Seeded) -> None:
    text = format_period(period(db, *period_bounds("weekly", seeded.day)))
    assert text.splitlines()[0] == ("周报 2026-W47 (2026-11-16 – 2026-11-22, Asia/Shanghai): "
                                    "全部活动 all campaigns")
    assert ("合计 total: 拨打 32, 接通 22 (68.8%), 有效成交 3 (占接通 13.6%), "
            "投诉通话 1 (转人工 1, 拉黑 1), 投诉记录 0 (未解决 0)") in text
    assert "2026-11-20: 拨打 3, 接通 3 (100.0%), 有效成交 1" in text


def test_complaints_recorded_count_by_the_day_they_were_recorded(db: Database,
                                                                 seeded: Seeded) -> None:
    """The complaints table: m8's call complaint on the 18th (resolved), a supervisor's
    entry with no call on the 19th (new), an agent's on the 19th about m3's declined call
    (contacted), and one of the week before; each campaign and day counts its own."""
    with db.session() as session:
        marketing = CampaignRepo(session).by_name(seeded.marketing)
        survey = CampaignRepo(session).by_name(seeded.survey)
        assert marketing is not None and survey is not None

        def contact(who: str) -> int:
            found = session.scalar(select(Contact.id).where(Contact.phone == Seeded.phone(who)))
            assert found is not None
            return int(found)

        def complaint(campaign_id: int, who: str, day: int, status: str, source: str,
                      call: bool) -> None:
            at = local(day, "15:00")
            call_id = session.scalar(select(Call.id).where(
                Call.contact_id == contact(who))) if call else None
            session.add(Complaint(
                campaign_id=campaign_id, contact_id=contact(who), call_id=call_id,
                source=source, words="我要投诉", severity="low", status=status,
                created_at=at, created_by="x", contact_due_at=at + timedelta(days=1),
                resolve_due_at=at + timedelta(days=5), blacklist_policy="on_decision"))

        complaint(marketing.id, "m8", 18, "resolved", "call", True)
        complaint(marketing.id, "m9", 19, "new", "supervisor", False)
        complaint(marketing.id, "m3", 19, "contacted", "agent", True)
        complaint(marketing.id, "m2", 12, "new", "supervisor", False)  # the week before
        complaint(survey.id, "s1", 20, "new", "supervisor", False)
    fig = period(db, *period_bounds("weekly", seeded.day), seeded.marketing)
    assert fig["totals"]["complaints"] == {**ONE_COMPLAINT_CALL, "recorded": 3,
                                           "unresolved": 2}
    assert [(d["date"], d["complaints"]["recorded"], d["complaints"]["unresolved"])
            for d in fig["days"] if d["complaints"]["recorded"]] == [
        ("2026-11-18", 1, 0), ("2026-11-19", 2, 2)]
    every = period(db, *period_bounds("weekly", seeded.day))
    assert [(r["campaign"], r["complaints"]["recorded"]) for r in every["campaigns"]] == [
        ("seed-confirm", 0), ("seed-marketing", 3), ("seed-survey", 1)]
    assert "投诉记录 4 (未解决 3)" in format_period(every)


@pytest.mark.parametrize(("kind", "day", "bounds", "label"), [
    ("daily", date(2026, 11, 18), (date(2026, 11, 18), date(2026, 11, 18)), "2026-11-18"),
    ("weekly", date(2026, 11, 16), (date(2026, 11, 16), date(2026, 11, 22)), "2026-W47"),
    ("weekly", date(2026, 11, 22), (date(2026, 11, 16), date(2026, 11, 22)), "2026-W47"),
    ("weekly", date(2027, 1, 1), (date(2026, 12, 28), date(2027, 1, 3)), "2026-W53"),
])
def test_period_bounds_and_labels(kind: str, day: date, bounds: tuple[date, date],
                                  label: str) -> None:
    assert period_bounds(kind, day) == bounds
    assert period_label(*bounds) == label


def test_bad_periods() -> None:
    with pytest.raises(ValueError, match="unknown period"):
        period_bounds("monthly", date(2026, 11, 18))
    assert period_label(date(2026, 11, 18), date(2026, 11, 20)) == "2026-11-18_2026-11-20"


def test_end_before_start(db: Database) -> None:
    with db.session() as session, pytest.raises(ValueError, match="before it starts"):
        period_figures(session, start=date(2026, 11, 18), end=date(2026, 11, 17),
                       tz="Asia/Shanghai")


def test_a_sale_qa_found_non_compliant_is_no_valid_sale(db: Database, seeded: Seeded) -> None:
    with db.session() as session:
        m1 = session.scalar(select(Consent.call_id).join(Contact, Contact.id == Consent.contact_id)
                            .where(Contact.phone == seeded.phone("m1")))
        m6 = session.scalar(select(Consent.call_id).join(Contact, Contact.id == Consent.contact_id)
                            .where(Contact.phone == seeded.phone("m6")))
        session.add_all([QaReview(call_id=m1, reviewer="李质检", compliant=False,
                                  notes="未告知资费"),
                         QaReview(call_id=m6, reviewer="李质检", compliant=False),
                         QaReview(call_id=m6, reviewer="王主管", compliant=True,
                                  notes="复核：合规")])
    fig = period(db, seeded.day, seeded.day, seeded.marketing)
    assert fig["totals"]["valid_sales"] == 1  # m6's later review overruled the first


def test_recording_seals_are_not_sales(db: Database, seeded: Seeded) -> None:
    """The ledger also holds each consenting call's recording seal: a sale is a consent."""
    before = period(db, seeded.day, seeded.day, seeded.marketing)["totals"]
    with db.session() as session:
        campaign = CampaignRepo(session).by_name(seeded.marketing)
        assert campaign is not None
        ledger_before = figures.campaign_figures(session, campaign)["ledger_consents"]
        ledger = ConsentLedger(session)
        for consent in session.scalars(select(Consent)).all():
            call = session.get(Call, consent.call_id)
            assert call is not None
            call.recording_sha256 = "ab" * 32
            assert ledger.seal_recording(call, consent.created_at) is not None
    assert period(db, seeded.day, seeded.day, seeded.marketing)["totals"] == before
    with db.session() as session:
        campaign = CampaignRepo(session).by_name(seeded.marketing)
        assert campaign is not None
        assert figures.campaign_figures(session, campaign)["ledger_consents"] == ledger_before
