"""QA samples: the pure draw (reproducible, rates, inclusions, minimum per agent) and the
stored samples (valid calls, idempotence, the weekly draw, re-derivation, the command)."""

from __future__ import annotations

import json
from datetime import date, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.qa.draw import Candidate, Pick, Rule, derive_seed, draw, random_count
from bot.qa.sampling import SamplingRefused, draw_sample, verify_sample
from bot.store import Database
from bot.store.models import Call, Complaint, QaSample, QaSampleCall

from .seeding import AFTER_WEEK, DAY, add_agents, add_call, add_campaign

POPULATION = [Candidate(f"call-{i:03d}") for i in range(200)]
SEED = derive_seed(1, "daily", DAY, Rule(0.1), "00" * 16)


# --- the pure draw ---------------------------------------------------------------------------


def test_the_same_seed_draws_the_same_calls_whatever_the_order() -> None:
    first = draw(POPULATION, Rule(0.1), SEED)
    assert first == draw(list(reversed(POPULATION)), Rule(0.1), SEED)
    other = draw(POPULATION, Rule(0.1), derive_seed(1, "daily", DAY, Rule(0.1), "01" * 16))
    assert {p.call_id for p in first} != {p.call_id for p in other}


def test_the_seed_depends_on_every_recorded_field() -> None:
    seeds = {derive_seed(1, "daily", DAY, Rule(0.1), "00" * 16),
             derive_seed(2, "daily", DAY, Rule(0.1), "00" * 16),
             derive_seed(1, "weekly", DAY, Rule(0.1), "00" * 16),
             derive_seed(1, "daily", DAY + timedelta(days=1), Rule(0.1), "00" * 16),
             derive_seed(1, "daily", DAY, Rule(0.2), "00" * 16),
             derive_seed(1, "daily", DAY, Rule(0.1), "ff" * 16)}
    assert len(seeds) == 6


def test_rates_are_rounded_up_on_the_rate_as_written() -> None:
    assert len(draw(POPULATION, Rule(0.1), SEED)) == 20
    assert len(draw(POPULATION, Rule(0.05), SEED)) == 10
    assert (random_count(0.1, 5), random_count(0.1, 0), random_count(0.0, 50)) == (1, 0, 0)
    assert random_count(0.07, 100) == 7  # 0.07 * 100 is 7.000000000000001 in binary
    assert all(p.reason == "random" for p in draw(POPULATION, Rule(0.1), SEED))


def test_always_included_kinds_come_on_top_of_the_random_share() -> None:
    marked = {f"call-{i:03d}": frozenset({"consent"}) for i in range(0, 200, 20)}
    marked["call-007"] = frozenset({"complaint", "escalated"})
    population = [Candidate(c.call_id, marked.get(c.call_id, frozenset()))
                  for c in POPULATION]
    rule = Rule(0.1, always_include=("complaint", "consent"))
    picks = draw(population, rule, SEED)
    random = [p for p in picks if p.reason == "random"]
    assert len(random) == 20
    drawn = {p.call_id for p in picks}
    assert set(marked) <= drawn  # every consent and the complaint
    assert Pick("call-007", "always:complaint") in picks or Pick("call-007", "random") in picks
    assert len(picks) == 20 + sum(1 for c in marked if c not in {p.call_id for p in random})
    assert not [p for p in picks if p.reason == "always:escalated"]  # not in the rule


def test_each_agent_gets_the_minimum_as_far_as_they_took_calls() -> None:
    population = [Candidate(c.call_id) for c in POPULATION[:50]] + [
        Candidate("agent-1-a", agents=(1,)), Candidate("agent-1-b", agents=(1,)),
        Candidate("agent-1-c", agents=(1,)), Candidate("agent-2-a", agents=(2,))]
    picks = draw(population, Rule(0.0, min_per_agent=2), SEED)
    by_agent = {1: [p for p in picks if p.call_id.startswith("agent-1")],
                2: [p for p in picks if p.call_id.startswith("agent-2")]}
    assert len(by_agent[1]) == 2 and len(by_agent[2]) == 1  # agent 2 took only one
    assert {p.reason for p in picks} == {"min_per_agent"}
    # an agent whose call was drawn at random needs no more
    lucky = [Candidate("agent-3-a", agents=(3,)), Candidate("agent-3-b", agents=(3,))]
    picks = draw(lucky, Rule(1.0, min_per_agent=1), SEED)
    assert [p.reason for p in picks] == ["random", "random"]


def test_a_weekly_draw_takes_its_rate_of_the_whole_week() -> None:
    eligible = POPULATION[:180]  # 20 were drawn on the days
    assert len(draw(eligible, Rule(0.05), SEED, population_size=200)) == 10
    assert len(draw(eligible[:3], Rule(0.05), SEED, population_size=200)) == 3


# --- stored samples ----------------------------------------------------------------------------


def test_valid_calls_of_the_day_are_the_population(db: Database) -> None:
    cid = add_campaign(db, daily_rate=1.0)
    valid = [add_call(db, cid, 1), add_call(db, cid, 2, at=time(0, 5)),
             add_call(db, cid, 3, at=time(23, 59), talk_s=10)]
    add_call(db, cid, 4, talk_s=9.5)  # too short
    add_call(db, cid, 5, outcome="failed")  # a system failure
    add_call(db, cid, 6, ended=False)  # never closed
    add_call(db, cid, 7, day=DAY - timedelta(days=1), at=time(23, 59))  # the day before
    add_call(db, cid, 8, day=DAY + timedelta(days=1), at=time(0, 0))  # the day after
    result = draw_sample(db, "qa-camp", "daily", DAY, now=AFTER_WEEK, drawn_by="test")
    assert result.population_size == 3
    assert sorted(p.call_id for p in result.picks) == sorted(valid)


def test_drawing_again_returns_the_stored_sample(db: Database) -> None:
    cid = add_campaign(db, daily_rate=0.1)
    for n in range(30):
        add_call(db, cid, n)
    first = draw_sample(db, "qa-camp", "daily", DAY, now=AFTER_WEEK, drawn_by="test")
    again = draw_sample(db, "qa-camp", "daily", DAY, now=AFTER_WEEK + timedelta(days=3),
                        drawn_by="someone else")
    assert (first.sample_id, first.seed, first.picks) == (again.sample_id, again.seed,
                                                          again.picks)
    assert len(first.picks) == 3 and first.population_size == 30
    with db.session() as session:
        assert len(session.scalars(select(QaSample)).all()) == 1


def test_a_period_not_over_is_not_drawn(db: Database) -> None:
    cid = add_campaign(db)
    add_call(db, cid, 1)
    end_of_day = AFTER_WEEK - timedelta(days=6)  # Wed 08:00 Shanghai = Tue's end + 8 h
    with pytest.raises(SamplingRefused, match="not over"):
        draw_sample(db, "qa-camp", "daily", DAY + timedelta(days=1), now=end_of_day,
                    drawn_by="test")
    with pytest.raises(SamplingRefused, match="not over"):
        draw_sample(db, "qa-camp", "weekly", DAY, now=end_of_day, drawn_by="test")
    with pytest.raises(SamplingRefused, match="no campaign"):
        draw_sample(db, "nope", "daily", DAY, now=AFTER_WEEK, drawn_by="test")


def test_the_daily_sample_applies_inclusions_and_the_minimum_per_agent(db: Database) -> None:
    cid = add_campaign(db, daily_rate=0.0, always_include=["consent", "escalated"],
                       min_per_agent=1)
    alice, bob = add_agents(db, "alice", "bob")
    consent = add_call(db, cid, 1, outcome="consented")
    bobs = add_call(db, cid, 2, agent=bob)  # escalated, and bob's
    alices = [add_call(db, cid, 3 + n, agent=alice) for n in range(2)]
    add_call(db, cid, 9)
    result = draw_sample(db, "qa-camp", "daily", DAY, now=AFTER_WEEK, drawn_by="test")
    reasons = {p.call_id: p.reason for p in result.picks}
    assert reasons[consent] == "always:consent" and reasons[bobs] == "always:escalated"
    # alice's calls were escalated too: both are drawn as such, so she needs no minimum
    assert {reasons[c] for c in alices} == {"always:escalated"}
    assert len(reasons) == 4


def test_a_complaint_entered_about_a_call_makes_it_always_drawn(db: Database) -> None:
    """A supervisor's complaint about a call that ended ``declined``, on a campaign that
    blacklists only on a decision: only the complaints table knows of it."""
    cid = add_campaign(db, daily_rate=0.0, always_include=["complaint"], min_per_agent=0)
    entered = add_call(db, cid, 1)
    add_call(db, cid, 2)
    with db.session() as session:
        call = session.get(Call, entered)
        assert call is not None
        at = call.started_at + timedelta(hours=2)
        session.add(Complaint(
            campaign_id=cid, contact_id=call.contact_id, call_id=entered,
            source="supervisor", words="推销员态度不好", severity="medium", status="new",
            created_at=at, created_by="sup", contact_due_at=at + timedelta(days=1),
            resolve_due_at=at + timedelta(days=5), blacklist_policy="on_decision"))
    result = draw_sample(db, "qa-camp", "daily", DAY, now=AFTER_WEEK, drawn_by="test")
    assert [(p.call_id, p.reason) for p in result.picks] == [(entered, "always:complaint")]


def test_the_weekly_sample_leaves_out_the_daily_draws(db: Database) -> None:
    cid = add_campaign(db, daily_rate=0.5, weekly_rate=0.25, min_per_agent=0)
    week = [DAY - timedelta(days=1) + timedelta(days=d) for d in range(7)]  # Mon..Sun
    for d, day in enumerate(week):
        for n in range(4):
            add_call(db, cid, d * 10 + n, day=day)
    weekly = draw_sample(db, "qa-camp", "weekly", DAY, now=AFTER_WEEK, drawn_by="test")
    assert (weekly.period_start, weekly.period_end) == (week[0], week[-1])
    assert (weekly.population_size, weekly.eligible_size, len(weekly.picks)) == (28, 14, 7)
    with db.session() as session:
        daily = set(session.scalars(select(QaSampleCall.call_id).join(QaSample).where(
            QaSample.kind == "daily")))
    assert len(daily) == 14 and not daily & {p.call_id for p in weekly.picks}


def test_re_derivation_holds_and_detects_a_tampered_sample(db: Database) -> None:
    cid = add_campaign(db, daily_rate=0.2)
    calls = [add_call(db, cid, n) for n in range(20)]
    result = draw_sample(db, "qa-camp", "daily", DAY, now=AFTER_WEEK, drawn_by="test")
    assert result.sample_id is not None
    assert verify_sample(db, result.sample_id).ok
    drawn = {p.call_id for p in result.picks}
    swap = next(c for c in calls if c not in drawn)
    with db.session() as session:
        row = session.scalar(select(QaSampleCall).where(
            QaSampleCall.sample_id == result.sample_id, QaSampleCall.position == 0))
        assert row is not None
        row.call_id = swap  # an easier call put in place of a drawn one
    check = verify_sample(db, result.sample_id)
    assert not check.ok and "drawn calls differ" in check.problems[0]
    with db.session() as session:
        sample = session.get(QaSample, result.sample_id)
        assert sample is not None
        sample.nonce = "ab" * 16  # a seed chosen afterwards
    assert any("seed" in p for p in verify_sample(db, result.sample_id).problems)


def test_re_derivation_notices_a_changed_population(db: Database) -> None:
    cid = add_campaign(db, daily_rate=0.5)
    for n in range(6):
        add_call(db, cid, n)
    result = draw_sample(db, "qa-camp", "daily", DAY, now=AFTER_WEEK, drawn_by="test")
    assert result.sample_id is not None
    add_call(db, cid, 99)  # a call of that day appears afterwards
    problems = verify_sample(db, result.sample_id).problems
    assert any("7 valid calls now, 6 recorded" in p for p in problems)


def test_cli_qa_sample_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    db = Database(url)
    db.upgrade()
    cid = add_campaign(db, daily_rate=0.1, always_include=["complaint"])
    add_campaign(db, "empty-camp")
    calls = [add_call(db, cid, n) for n in range(40)]
    complaint = add_call(db, cid, 50, outcome="complaint")
    args = ["--database", url, "qa", "sample", "--day", DAY.isoformat(), "--json"]
    assert main(args) == 0
    body = json.loads(capsys.readouterr().out)
    by_name = {row["campaign"]: row for row in body}
    sample = by_name["qa-camp"]
    assert sample["population_size"] == 41 and len(sample["seed"]) == 64
    assert len(sample["call_ids"]) in (5, 6) and complaint in sample["call_ids"]
    assert set(sample["call_ids"]) <= {*calls, complaint}
    assert sample["reasons"][complaint] in ("random", "always:complaint")
    assert sample["rule"]["rate"] == 0.1 and sample["rule"]["always_include"] == ["complaint"]
    empty = by_name["empty-camp"]
    assert (empty["population_size"], empty["sample_id"], empty["seed"]) == (0, None, None)
    assert main([*args, "--campaign", "qa-camp", "--verify"]) == 0  # idempotent, verified
    [again] = json.loads(capsys.readouterr().out)
    assert again["call_ids"] == sample["call_ids"] and again["verified"] is True
    assert main(["--database", url, "qa", "sample", "--day", DAY.isoformat()]) == 0
    table = capsys.readouterr().out
    assert "qa-camp" in table and "139" not in table  # no phone number printed
    future = date.today() + timedelta(days=1)
    assert main(["--database", url, "qa", "sample", "--day", future.isoformat()]) == 2
    assert "not over" in capsys.readouterr().err
