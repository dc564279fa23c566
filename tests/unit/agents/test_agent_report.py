"""The agent figures read from the store after a day of real desk operations, and
`waihu report --agents`."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.agents import desk
from bot.agents.presence import PresenceEvent
from bot.agents.report import agent_figures
from bot.cli import main
from bot.store import Database
from tests.unit.agents.seeding import T0, add_agent, add_campaign, escalate

ZONE = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 23)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def a_day(db: Database) -> tuple[int, int]:
    """10:00 alice and bob log in.  Customer A's call goes to alice (taken in 5 s, 300 s
    of talk, resolved after 30 s of wrap-up); customer B's to bob (taken in 20 s, 100 s of
    talk, wrap-up cut at the campaign's 60 s, then a sale).  B is escalated again two days
    later.  11:00 both log out."""
    add_campaign(db, wrap_up_max_s=60, service_level_s=10)
    with db.session() as session:
        alice, bob = add_agent(session, "alice"), add_agent(session, "bob")
        for agent in (alice, bob):
            desk.change_presence(session, agent, PresenceEvent("log_in"), at(0))
    first = escalate(db, "13800000001", at=at(5))
    with db.session() as session:
        offer = desk.offer_next(session, first.id, at(10)).offer
        assert offer is not None and offer.agent_id == alice
        desk.answer_offer(session, offer.id, "accepted", at(15))
        desk.end_call(session, alice, first.call_id, at(315))
        desk.record_disposition(session, first.id, alice, "resolved", at(345))
    second = escalate(db, "13800000002", at=at(395))
    with db.session() as session:
        offer = desk.offer_next(session, second.id, at(400)).offer
        assert offer is not None and offer.agent_id == bob
        desk.answer_offer(session, offer.id, "accepted", at(420))
        desk.end_call(session, bob, second.call_id, at(520))
        assert desk.expire_wrap_up(session, bob, at(580))
        desk.record_disposition(session, second.id, bob, "sale", at(600))
        for agent in (alice, bob):
            desk.change_presence(session, agent, PresenceEvent("log_out"), at(3600))
    escalate(db, "13800000002", at=at(2 * 86400))
    return alice, bob


def test_the_figures_of_a_day_of_desk_work(db: Database) -> None:
    a_day(db)
    with db.session() as session:
        fig = agent_figures(session, DAY, ZONE, at(10 * 86400))
    rows = {r["agent"]: r for r in fig["agents"]}
    alice, bob = rows["alice"], rows["bob"]
    assert (alice["offers"], alice["accepted"], alice["talk_s"], alice["after_call_work_s"],
            alice["staffed_s"]) == (1, 1, 300.0, 30.0, 3600.0)
    assert (alice["occupancy"], alice["service_level"], alice["first_call_resolution"],
            alice["calls_per_hour"]) == (0.0917, 1.0, 1.0, 1.0)
    assert (bob["talk_s"], bob["after_call_work_s"], bob["handle_mean_s"]) == (100.0, 60.0,
                                                                             160.0)
    assert (bob["service_level"], bob["first_call_resolution"]) == (0.0, 0.0)
    assert bob["dispositions"]["sale"] == 1
    assert fig["team"]["accepted"] == 2 and fig["team"]["service_level"] == 0.5


def test_another_day_is_empty(db: Database) -> None:
    a_day(db)
    with db.session() as session:
        fig = agent_figures(session, DAY + timedelta(days=1), ZONE, at(10 * 86400))
    assert fig["agents"] == [] and fig["team"]["offers"] == 0


def run(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> tuple[int, str, str]:
    code = main(["--database", url, "report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_waihu_report_agents(sqlite_db: Database, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    a_day(sqlite_db)
    url = sqlite_db.url.render_as_string(hide_password=False)
    code, out, _ = run(capsys, url, "--agents", "--day", "2026-11-23", "--json")
    fig = json.loads(out)
    assert code == 0 and [r["agent"] for r in fig["agents"]] == ["alice", "bob"]
    assert fig["timezone"] == "Asia/Shanghai"
    code, out, _ = run(capsys, url, "--agents", "--date", "2026-11-23")
    assert code == 0 and out.startswith("坐席日报 agents 2026-11-23")
    assert "  bob: 分配 offers 1, 接听 accepted 1" in out
    target = tmp_path / "agents.json"
    code, out, _ = run(capsys, url, "--agents", "--day", "2026-11-23", "--format", "json",
                       "--output", str(target))
    assert code == 0 and out.strip() == str(target)
    assert json.loads(target.read_text(encoding="utf-8"))["team"]["accepted"] == 2


@pytest.mark.parametrize(("args", "message"), [
    (["--agents", "card-upgrade"], "--agents covers every campaign"),
    (["--agents", "--all"], "--agents covers every campaign"),
    (["--agents", "--period", "weekly"], "--agents is a report of one day"),
    (["--agents", "--format", "pdf"], "--agents prints json or text"),
    (["--agents", "--tz", "Mars/Base"], "unknown time zone"),
])
def test_waihu_report_agents_errors(args: list[str], message: str, sqlite_db: Database,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    url = sqlite_db.url.render_as_string(hide_password=False)
    code, _, err = run(capsys, url, *args)
    assert code == 2 and message in err
