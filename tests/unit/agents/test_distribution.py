"""The three distribution strategies, on their own: who is chosen, why, and that a stored
snapshot always replays to the same choice."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.agents.distribution import AgentSnapshot, Decision, choose, replay

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
CAMPAIGN = "card-upgrade"


def agent(agent_id: int, *, state: str = "available", offers: int = 0, accepted: int = 0,
          successes: int = 0, idle_s: float | None = 60, weight: int = 1,
          campaigns: tuple[str, ...] = (CAMPAIGN,)) -> AgentSnapshot:
    idle_since = None if idle_s is None or state != "available" else NOW - timedelta(
        seconds=idle_s)
    return AgentSnapshot(agent_id, state, offers, accepted, successes, idle_since, weight,
                         campaigns)


# --- equal_share ------------------------------------------------------------------------------


def test_equal_share_picks_the_fewest_offers_today() -> None:
    team = [agent(1, offers=5), agent(2, offers=3), agent(3, offers=8, state="on_call"),
            agent(4, offers=4, state="away"), agent(5, offers=6)]
    decision = choose("equal_share", CAMPAIGN, team, NOW)
    assert decision.agent_id == 2
    assert decision.reason == "fewest offers today: 3 (team mean 5.2 over 5 agents)"


def test_equal_share_breaks_a_tie_by_the_longest_idle() -> None:
    team = [agent(1, offers=2, idle_s=30), agent(2, offers=2, idle_s=250), agent(3, offers=4)]
    decision = choose("equal_share", CAMPAIGN, team, NOW)
    assert decision.agent_id == 2
    assert decision.reason == ("fewest offers today: 2 (team mean 2.7 over 3 agents); tied "
                               "with 1 other, idle longest (idle 4 min 10 s)")


def test_equal_share_last_tie_is_the_agent_id() -> None:
    team = [agent(7, idle_s=10), agent(3, idle_s=10)]
    decision = choose("equal_share", CAMPAIGN, team, NOW)
    assert decision.agent_id == 3
    assert decision.reason.endswith("as long as 1 other(s): lowest agent id")


# --- equal_results ----------------------------------------------------------------------------


def test_equal_results_picks_the_agent_furthest_below_the_team_rate() -> None:
    team = [agent(1, offers=5, accepted=4, successes=3),   # 75%
            agent(2, offers=4, accepted=4, successes=1),   # 25%
            agent(3, offers=6, accepted=4, successes=2),   # 50%
            agent(4, offers=6, accepted=4, successes=0, state="on_call")]  # 0%, busy
    decision = choose("equal_results", CAMPAIGN, team, NOW)
    assert decision.agent_id == 2
    assert decision.reason == ("furthest below the team's outcome rate today: 1 successful of "
                               "4 calls taken today (25%) against the team's 38% (6 of 16)")


def test_equal_results_when_nobody_available_is_below() -> None:
    team = [agent(1, offers=2, accepted=2, successes=2), agent(2, state="on_call", offers=4,
                                                              accepted=4, successes=0)]
    decision = choose("equal_results", CAMPAIGN, team, NOW)
    assert decision.agent_id == 1
    assert decision.reason.startswith("nobody available is below the team's outcome rate")


def test_equal_results_on_a_fresh_day_falls_back_to_idle_time() -> None:
    team = [agent(1, idle_s=5), agent(2, idle_s=95)]
    decision = choose("equal_results", CAMPAIGN, team, NOW)
    assert decision.agent_id == 2
    assert decision.reason == ("no calls taken in the team today yet: 2 agents, all at 0; "
                               "tied with 1 other, idle longest (idle 1 min 35 s)")


def test_equal_results_prefers_fewer_calls_at_the_same_rate() -> None:
    team = [agent(1, offers=4, accepted=4, successes=2, idle_s=500),
            agent(2, offers=2, accepted=2, successes=1, idle_s=5)]
    assert choose("equal_results", CAMPAIGN, team, NOW).agent_id == 2


# --- weight -------------------------------------------------------------------------------------


def test_weight_deals_offers_in_proportion_and_smoothly() -> None:
    team = [agent(1, weight=1), agent(2, weight=2), agent(3, weight=3)]
    order = []
    for minute in range(60):
        at = NOW + timedelta(minutes=minute)
        decision = choose("weight", CAMPAIGN, team, at)
        assert decision.agent_id is not None
        order.append(decision.agent_id)
        team = [replace(a, offers_today=a.offers_today + 1, idle_since=at)
                if a.agent_id == decision.agent_id else a for a in team]
    assert Counter(order) == {1: 10, 2: 20, 3: 30}
    assert order[:6] == [3, 2, 3, 3, 2, 1]
    for start in range(0, 60, 6):
        assert Counter(order[start:start + 6]) == {1: 1, 2: 2, 3: 3}


def test_weight_reason() -> None:
    team = [agent(1, weight=1, offers=2), agent(2, weight=3, offers=4)]
    decision = choose("weight", CAMPAIGN, team, NOW)
    assert decision.agent_id == 2
    assert decision.reason == ("weight 3 of the team's 4 (share 75%): 4 of the team's 6 offers "
                               "today, the fewest per unit of weight counting this one "
                               "((4 + 1) / 3 = 1.67)")


def test_weight_zero_is_never_chosen() -> None:
    team = [agent(1, weight=0), agent(2, weight=0)]
    decision = choose("weight", CAMPAIGN, team, NOW)
    assert decision.agent_id is None
    assert decision.reason == "no available agent for campaign card-upgrade: 2 weight 0"


# --- who may be chosen --------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["equal_share", "equal_results", "weight"])
def test_only_available_agents_of_the_campaign_who_did_not_decline(strategy: str) -> None:
    team = [agent(1, state="on_call"), agent(2, state="away"), agent(3, state="offered"),
            agent(4, state="wrap_up"), agent(5, state="offline"),
            agent(6, campaigns=("other",)), agent(7), agent(8, offers=0)]
    decision = choose(strategy, CAMPAIGN, team, NOW, exclude={7})
    assert decision.agent_id == 8
    nobody = choose(strategy, CAMPAIGN, team, NOW, exclude={7, 8})
    assert nobody.agent_id is None
    assert nobody.reason == ("no available agent for campaign card-upgrade: 1 away, 2 declined "
                             "or missed this call, 1 offered, 1 offline, 1 on_call, 1 wrap_up")


def test_no_agent_serves_the_campaign() -> None:
    decision = choose("equal_share", "nobody-here", [agent(1)], NOW)
    assert (decision.agent_id, decision.reason) == (None, "no agent serves campaign nobody-here")


def test_unknown_strategy() -> None:
    with pytest.raises(ValueError, match="unknown distribution strategy 'random'"):
        choose("random", CAMPAIGN, [agent(1)], NOW)


def test_snapshot_counts_are_checked() -> None:
    with pytest.raises(ValueError, match="more successes than calls taken"):
        AgentSnapshot(1, "available", 3, 1, 2)
    with pytest.raises(ValueError, match="cannot be negative"):
        AgentSnapshot(1, "available", weight=-1)


# --- reproducibility ------------------------------------------------------------------------------


def _busy_team() -> list[AgentSnapshot]:
    return [agent(1, offers=3, accepted=3, successes=1, idle_s=40, weight=3),
            agent(2, offers=3, accepted=2, successes=2, idle_s=40, weight=1),
            agent(3, offers=5, accepted=5, successes=1, idle_s=300, weight=3),
            agent(4, offers=1, accepted=1, successes=0, state="on_call", weight=1),
            agent(5, offers=2, accepted=1, successes=1, idle_s=12, weight=1,
                  campaigns=(CAMPAIGN, "other"))]


@pytest.mark.parametrize("strategy", ["equal_share", "equal_results", "weight"])
def test_a_stored_snapshot_replays_to_the_same_choice(strategy: str) -> None:
    decision = choose(strategy, CAMPAIGN, _busy_team(), NOW, exclude={5})
    stored = json.loads(json.dumps(decision.snapshot))  # as the offer row keeps it
    again = replay(stored)
    assert (again.agent_id, again.reason, again.snapshot) == (
        decision.agent_id, decision.reason, decision.snapshot)


@pytest.mark.parametrize("strategy", ["equal_share", "equal_results", "weight"])
def test_the_order_of_the_agents_does_not_matter(strategy: str) -> None:
    team = _busy_team()
    first = choose(strategy, CAMPAIGN, team, NOW)
    for shift in range(1, len(team)):
        other: Decision = choose(strategy, CAMPAIGN, team[shift:] + team[:shift], NOW)
        assert (other.agent_id, other.reason, other.snapshot) == (
            first.agent_id, first.reason, first.snapshot)


def test_the_strategies_differ_on_the_same_team() -> None:
    chosen = {s: choose(s, CAMPAIGN, _busy_team(), NOW).agent_id
              for s in ("equal_share", "equal_results", "weight")}
    # equal_share: 5 has the fewest offers (2); equal_results: 3 is furthest below (1 of 5
    # against 5 of 12); weight: 1 has the fewest offers per weight counting the next
    # ((3 + 1) / 3 = 1.33 against 3's 2, 2's 4 and 5's 3)
    assert chosen == {"equal_share": 5, "equal_results": 3, "weight": 1}


def test_an_unknown_snapshot_version_is_refused() -> None:
    snapshot = choose("equal_share", CAMPAIGN, [agent(1)], NOW).snapshot
    with pytest.raises(ValueError, match="snapshot version 9"):
        replay({**snapshot, "version": 9})
