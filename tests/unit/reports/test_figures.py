"""Campaign figures on the seeded database (tests/unit/reports/seeding.py), SQLite and
PostgreSQL: every number below is worked out by hand from the tables there."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.reports.figures import age_band, campaign_figures, format_figures, talk_time
from bot.store import CampaignRepo, ContactRepo, Database
from bot.store.models import Complaint, Contact

from .seeding import Seeded, local, seed


def figures(db: Database, name: str) -> dict[str, Any]:
    with db.session() as session:
        campaign = CampaignRepo(session).by_name(name)
        assert campaign is not None
        return campaign_figures(session, campaign)


@pytest.fixture
def seeded(db: Database) -> Seeded:
    return seed(db)


def test_headline_figures_leave_attempts_in_progress_out(db: Database, seeded: Seeded) -> None:
    fig = figures(db, seeded.marketing)
    # 26 attempts: m15's second one has no dial result yet, so 25 were dialled.
    assert fig["dialled"] == 25
    assert fig["in_progress"] == {"attempts": 1, "calls": 1}  # m15 dialling, m17 talking
    assert fig["numbers_dialled"] == 20
    assert fig["connected"] == 15
    assert fig["connect_rate"] == 0.6
    assert fig["consents"] == 3  # m1, m6, m13 by outcome ...
    assert fig["ledger_consents"] == 2  # ... but only m1 and m6 in the ledger
    assert fig["consent_rate_over_dialled"] == 0.12
    assert fig["consent_rate_over_connected"] == 0.2
    assert fig["declined"] == 6
    assert fig["declined_after_connect_rate"] == 0.4
    assert fig["hung_up_early"] == 1
    assert fig["dial_results"] == {"answered": 15, "busy": 4, "invalid_number": 1,
                                   "no_answer": 2, "powered_off": 1, "rejected": 1,
                                   "suspended": 1}
    assert "pending" not in fig["dial_results"]
    assert fig["outcomes"] == {"callback_requested": 1, "complaint": 1, "consented": 3,
                               "declined": 6, "escalated": 1, "hung_up_early": 1,
                               "wrong_person": 1}
    assert fig["decline_reasons"] == {"distrust": 1, "too_expensive": 3, "not_needed": 1,
                                      "other": 1}


def test_funnel_rates_are_over_dialled(db: Database, seeded: Seeded) -> None:
    funnel = figures(db, seeded.marketing)["funnel"]
    assert [(s["stage"], s["label"], s["count"], s["rate"]) for s in funnel] == [
        ("dialled", "拨打", 25, 1.0),
        ("connected", "接通", 15, 0.6),
        ("verified", "核实身份", 13, 0.52),  # m17's call in progress is verified already
        ("pitched", "介绍产品", 9, 0.36),
        ("consented", "同意", 3, 0.12),
    ]


def test_connect_rate_by_local_hour(db: Database, seeded: Seeded) -> None:
    hours = figures(db, seeded.marketing)["connect_by_hour"]
    assert [(h["hour"], h["attempts"], h["connected"], h["rate"]) for h in hours] == [
        (0, 1, 0, 0.0),  # m19 at 00:30 local, 16:30 UTC the day before
        (9, 4, 2, 0.5),
        (10, 5, 2, 0.4),
        (11, 2, 2, 1.0),  # m15's attempt in progress at 11:40 is not counted
        (14, 4, 2, 0.5),
        (15, 2, 2, 1.0),
        (16, 3, 3, 1.0),
        (19, 4, 2, 0.5),
    ]


def test_hours_follow_the_campaign_time_zone(db: Database, seeded: Seeded) -> None:
    with db.session() as session:
        campaign = CampaignRepo(session).by_name(seeded.marketing)
        assert campaign is not None
        campaign.definition = {"timezone": "Asia/Urumqi"}  # UTC+6: two hours earlier
    fig = figures(db, seeded.marketing)
    assert fig["timezone"] == "Asia/Urumqi"
    assert [h["hour"] for h in fig["connect_by_hour"]] == [7, 8, 9, 12, 13, 14, 17, 22]


def test_grades_count_ungraded_calls(db: Database, seeded: Seeded) -> None:
    # 14 finished calls; m10's wrong-person call has no grade; m17's call is not finished.
    assert figures(db, seeded.marketing)["grades"] == {"A": 3, "B": 1, "C": 1, "D": 8,
                                                       "ungraded": 1}


def test_breakdown_by_age_band(db: Database, seeded: Seeded) -> None:
    rows = figures(db, seeded.marketing)["by_age"]
    assert [(r["group"], r["contacts"], r["dialled"], r["connected"], r["consents"],
             r["consent_rate_over_dialled"], r["consent_rate_over_connected"])
            for r in rows] == [
        ("<25", 3, 4, 2, 1, 0.25, 0.5),
        ("25-34", 3, 3, 2, 0, 0.0, 0.0),
        ("35-44", 3, 4, 3, 1, 0.25, 0.3333),
        ("45-54", 3, 3, 2, 0, 0.0, 0.0),
        ("55-64", 4, 5, 2, 0, 0.0, 0.0),
        ("65+", 2, 2, 2, 0, 0.0, 0.0),
        ("unknown", 2, 4, 2, 1, 0.25, 0.5),
    ]


def test_breakdown_by_region(db: Database, seeded: Seeded) -> None:
    rows = figures(db, seeded.marketing)["by_region"]
    assert [(r["group"], r["contacts"], r["dialled"], r["connected"], r["consents"],
             r["consent_rate_over_dialled"], r["consent_rate_over_connected"])
            for r in rows] == [
        ("广州", 8, 10, 6, 3, 0.3, 0.5),
        ("深圳", 6, 6, 4, 0, 0.0, 0.0),
        ("佛山", 3, 4, 3, 0, 0.0, 0.0),
        ("unknown", 3, 5, 2, 0, 0.0, 0.0),
    ]


def test_no_breakdown_when_the_list_has_no_ages_or_regions(db: Database,
                                                           seeded: Seeded) -> None:
    fig = figures(db, seeded.survey)
    assert fig["by_age"] == [] and fig["by_region"] == []


def test_escalations_complaints_and_talk_time(db: Database, seeded: Seeded) -> None:
    fig = figures(db, seeded.marketing)
    assert fig["escalations"] == {"total": 2,
                                  "by_reason": {"complaint": 1, "request_human": 1},
                                  "by_status": {"connected": 1, "pending": 1}}
    # m8's complaint call: escalated and blacklisted.  Complaint blacklist entries: m8's
    # (from its call) and the operator's for m4's number (removed since); not the one for a
    # number on no list, nor m10's do-not-call request.
    assert fig["complaints"] == {"calls": 1, "escalated": 1, "blacklisted": 1,
                                 "blacklist_entries": 2, "blacklist_entries_active": 1,
                                 "recorded": 0,
                                 "by_status": {"new": 0, "contacted": 0, "resolved": 0}}
    # 14 finished calls: 995 s in all; the middle two of the sorted durations are 60 and 70.
    assert fig["talk_time"] == {"calls": 14, "mean_s": 71.1, "median_s": 65.0}
    assert fig["confirmation_results"] == {"keep": 0, "cancel": 0, "undecided": 0}


def test_complaint_records_count_whoever_entered_them(db: Database, seeded: Seeded) -> None:
    """The complaints table: the bot's record of m8's call, an agent's about m3's declined
    call, a supervisor's about m9's number with no call; one of another campaign."""
    with db.session() as session:
        marketing = CampaignRepo(session).by_name(seeded.marketing)
        survey = CampaignRepo(session).by_name(seeded.survey)
        assert marketing is not None and survey is not None
        for campaign_id, who, source, status in [
                (marketing.id, "m8", "call", "resolved"), (marketing.id, "m3", "agent", "new"),
                (marketing.id, "m9", "supervisor", "contacted"),
                (survey.id, "s1", "supervisor", "new")]:
            contact = session.scalar(select(Contact).where(Contact.phone == Seeded.phone(who)))
            assert contact is not None
            at = local(19, "10:00")
            session.add(Complaint(
                campaign_id=campaign_id, contact_id=contact.id, source=source,
                words="我要投诉", severity="low", status=status, created_at=at,
                created_by="x", contact_due_at=at + timedelta(days=1),
                resolve_due_at=at + timedelta(days=5), blacklist_policy="immediately"))
    fig = figures(db, seeded.marketing)
    assert (fig["complaints"]["recorded"], fig["complaints"]["by_status"]) == (
        3, {"new": 1, "contacted": 1, "resolved": 1})
    assert fig["complaints"]["calls"] == 1  # the complaint calls stay the call outcomes
    assert "投诉记录 3 条 (new 1, contacted 1, resolved 1)" in format_figures(fig)


def test_complaint_entries_of_a_call_stay_with_its_campaign(db: Database,
                                                            seeded: Seeded) -> None:
    """m8's number is also on another list: its blacklist entry, written in a
    seed-marketing call, is not that campaign's complaint."""
    with db.session() as session:
        confirm = CampaignRepo(session).by_name(seeded.confirm)
        assert confirm is not None
        ContactRepo(session).add(confirm.id, seeded.phone("m8"))
    assert figures(db, seeded.confirm)["complaints"]["blacklist_entries"] == 0


def test_survey_score_distributions(db: Database, seeded: Seeded) -> None:
    fig = figures(db, seeded.survey)
    assert (fig["dialled"], fig["connected"], fig["outcomes"]) == (
        5, 4, {"survey_completed": 3, "survey_partial": 1})
    assert fig["survey"] == [
        {"question": "install", "text": "您对本次宽带安装服务满意吗？", "scale": "satisfaction",
         "n": 4, "mean": 3.5, "counts": {"1": 0, "2": 1, "3": 1, "4": 1, "5": 1},
         "levels": {"satisfied": 2, "neutral": 1, "dissatisfied": 1}},
        {"question": "speed", "text": "请给网速打分，1到5分", "scale": "score",
         "n": 3, "mean": 2.67, "counts": {"1": 1, "2": 0, "3": 1, "4": 1, "5": 0}},
    ]  # reasons and the open answer have no score: not counted


def test_second_confirmation_results(db: Database, seeded: Seeded) -> None:
    fig = figures(db, seeded.confirm)
    assert fig["confirmation_results"] == {"keep": 1, "cancel": 1, "undecided": 1}
    assert (fig["consents"], fig["ledger_consents"]) == (1, 1)
    assert "二次确认 confirmations:       保留 1, 取消 1, 未决定 1" in format_figures(fig)


def test_text_report(db: Database, seeded: Seeded) -> None:
    text = format_figures(figures(db, seeded.marketing))
    assert "接通 connected:               15  (接通率 60.0%)" in text
    assert "价格太高 too_expensive: 3" in text
    assert "进行中 in progress:           1 次拨打, 1 通通话" in text
    assert "拨打 25 (100.0%) → 接通 15 (60.0%) → 核实身份 13 (52.0%)" in text
    assert "广州: 拨打 10, 接通 6, 同意 3 (30.0%)" in text


def test_empty_campaign(db: Database) -> None:
    with db.session() as session:
        campaign = CampaignRepo(session).add("empty", "marketing", {}, "e" * 64)
        fig = campaign_figures(session, campaign)
    assert (fig["dialled"], fig["connect_rate"], fig["timezone"]) == (0, 0.0, "Asia/Shanghai")
    assert fig["connect_by_hour"] == [] and fig["survey"] == []
    assert fig["talk_time"] == {"calls": 0, "mean_s": None, "median_s": None}
    assert fig["grades"] == {"A": 0, "B": 0, "C": 0, "D": 0, "ungraded": 0}
    format_figures(fig)


@pytest.mark.parametrize(("age", "band"), [
    (None, "unknown"), (0, "<25"), (24, "<25"), (25, "25-34"), (34, "25-34"), (35, "35-44"),
    (54, "45-54"), (55, "55-64"), (64, "55-64"), (65, "65+"), (99, "65+")])
def test_age_bands(age: int | None, band: str) -> None:
    assert age_band(age) == band


def test_talk_time_ignores_calls_without_an_end() -> None:
    start = local(18, "10:00")
    spans = [(start, start + timedelta(seconds=s)) for s in (10, 20, 40)] + [(start, None)]
    assert talk_time(spans) == {"calls": 3, "mean_s": 23.3, "median_s": 20.0}
