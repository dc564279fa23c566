"""The agent figures from constructed rows, every number worked out by hand.

Day 2026-12-07 in Asia/Shanghai; times below are local.

alice  09:00 log in; 09:10:00 offered call 1 (customer A), 09:10:05 taken, 09:20 ended,
       09:21 disposition resolved; 10:00-10:30 away (meal); 10:40:00 offered call 2
       (customer B), 10:40:15 taken, 10:50 ended, 10:52 disposition sale; 11:00:00 offered
       call 3, 11:00:20 declined; 12:00 log out.  Customer B is escalated again 3 days later.
bob    available since 23:00 the day before; 01:00 log out.
carol  09:00 log in; 09:30:00 offered call 4, withdrawn at 09:30:08 (the customer hung up);
       09:45 log out.
dave   logged out the day before: not listed.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.agents.figures import (
    DispositionRow,
    FollowUpRow,
    OfferRow,
    StateRow,
    agent_day_figures,
    format_agent_figures,
    state_seconds,
)

ZONE = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 12, 7)
ALICE, BOB, CAROL, DAVE = 1, 2, 3, 4
NAMES = {ALICE: "alice", BOB: "bob", CAROL: "carol", DAVE: "dave"}


def t(hms: str, day: int = 7) -> datetime:
    h, m, *s = (int(x) for x in hms.split(":"))
    return datetime(2026, 12, day, h, m, s[0] if s else 0, tzinfo=ZONE)


STATES = [
    StateRow(ALICE, t("18:00", 6), "offline"),
    StateRow(ALICE, t("09:00"), "available"),
    StateRow(ALICE, t("09:10"), "offered"),
    StateRow(ALICE, t("09:10:05"), "on_call"),
    StateRow(ALICE, t("09:20"), "wrap_up"),
    StateRow(ALICE, t("09:21"), "available"),
    StateRow(ALICE, t("10:00"), "away"),
    StateRow(ALICE, t("10:30"), "available"),
    StateRow(ALICE, t("10:40"), "offered"),
    StateRow(ALICE, t("10:40:15"), "on_call"),
    StateRow(ALICE, t("10:50"), "wrap_up"),
    StateRow(ALICE, t("10:52"), "available"),
    StateRow(ALICE, t("11:00"), "offered"),
    StateRow(ALICE, t("11:00:20"), "available"),
    StateRow(ALICE, t("12:00"), "offline"),
    StateRow(BOB, t("23:00", 6), "available"),
    StateRow(BOB, t("01:00"), "offline"),
    StateRow(CAROL, t("09:00"), "available"),
    StateRow(CAROL, t("09:30"), "offered"),
    StateRow(CAROL, t("09:30:08"), "available"),
    StateRow(CAROL, t("09:45"), "offline"),
    StateRow(DAVE, t("17:00", 6), "offline"),
]
OFFERS = [
    OfferRow(ALICE, 1, "A", t("09:10"), t("09:10:05"), "accepted", 10),
    OfferRow(ALICE, 2, "B", t("10:40"), t("10:40:15"), "accepted", 10),
    OfferRow(ALICE, 3, "C", t("11:00"), t("11:00:20"), "declined", 10),
    OfferRow(CAROL, 4, "D", t("09:30"), t("09:30:08"), "withdrawn", 10),
]
DISPOSITIONS = [DispositionRow(ALICE, 1, "resolved", t("09:21")),
                DispositionRow(ALICE, 2, "sale", t("10:52"))]
FOLLOW_UPS = [FollowUpRow("B", t("15:00", 10), "escalation"),
              FollowUpRow("A", t("09:00", 7), "escalation")]  # A's own, before it was taken
LATER = t("00:00", 20)


def figures(now: datetime = LATER, **changes: object) -> dict[str, object]:
    given: dict[str, object] = {"states": STATES, "offers": OFFERS,
                                "dispositions": DISPOSITIONS, "follow_ups": FOLLOW_UPS}
    given.update(changes)
    return agent_day_figures(day=DAY, zone=ZONE, now=now, names=NAMES, **given)  # type: ignore[arg-type]


def by_name(fig: dict[str, object]) -> dict[str, dict[str, object]]:
    return {row["agent"]: row for row in fig["agents"]}  # type: ignore[attr-defined,index]


def test_alice_worked_out_by_hand() -> None:
    alice = by_name(figures())["alice"]
    assert alice == {
        "agent_id": ALICE, "agent": "alice",
        "offers": 3, "accepted": 2, "declined": 1, "missed": 0, "withdrawn": 0, "ringing": 0,
        "talk_s": 1180.0,                 # 9 min 55 s + 9 min 45 s
        "talk_mean_s": 590.0,
        "after_call_work_s": 180.0,       # 1 min + 2 min
        "after_call_work_mean_s": 90.0,
        "handle_mean_s": 680.0,
        "logged_in_s": 10800.0,           # 09:00-12:00
        "staffed_s": 9000.0,              # less the half hour away
        "away_s": 1800.0,
        "calls_per_hour": 0.8,            # 2 calls in 2.5 staffed hours
        "occupancy": 0.1511,              # (1180 + 180) / 9000
        "service_level": 0.3333,          # 1 of 3 answered offers taken within 10 s
        "service_level_met": 1,
        "first_call_resolution": 0.5,     # B was escalated again within 7 days
        "fcr_resolved": 1, "fcr_open": 0,
        "dispositions": {"resolved": 1, "sale": 1, "callback": 0, "complaint": 0,
                         "wrong_person": 0, "other": 0},
    }


def test_the_day_clips_a_state_begun_the_day_before_and_idle_agents_are_listed() -> None:
    bob = by_name(figures())["bob"]
    assert (bob["staffed_s"], bob["offers"], bob["occupancy"], bob["calls_per_hour"]) == (
        3600.0, 0, 0.0, 0.0)
    assert (bob["talk_mean_s"], bob["service_level"], bob["first_call_resolution"]) == (
        None, None, None)


def test_withdrawn_offers_are_left_out_of_the_service_level() -> None:
    carol = by_name(figures())["carol"]
    assert (carol["offers"], carol["withdrawn"], carol["service_level"]) == (1, 1, None)
    assert carol["staffed_s"] == 2700.0


def test_agents_not_logged_in_that_day_are_not_listed() -> None:
    assert list(by_name(figures())) == ["alice", "bob", "carol"]


def test_the_team() -> None:
    team = figures()["team"]
    assert team == {  # type: ignore[comparison-overlap]
        "agents": 3, "offers": 4, "accepted": 2, "declined": 1, "missed": 0, "withdrawn": 1,
        "ringing": 0, "fcr_resolved": 1, "fcr_open": 0, "service_level_met": 1,
        "talk_s": 1180.0, "after_call_work_s": 180.0, "logged_in_s": 17100.0,
        "staffed_s": 15300.0, "away_s": 1800.0,
        "talk_mean_s": 590.0, "after_call_work_mean_s": 90.0, "handle_mean_s": 680.0,
        "calls_per_hour": 0.47, "occupancy": 0.0889, "service_level": 0.3333,
        "first_call_resolution": 0.5,
        "dispositions": {"resolved": 1, "sale": 1, "callback": 0, "complaint": 0,
                         "wrong_person": 0, "other": 0},
    }


def test_a_day_still_going_on_counts_up_to_now() -> None:
    fig = figures(now=t("10:45"))
    alice = by_name(fig)["alice"]
    # on call 09:10:05-09:20 and 10:40:15-10:45
    assert alice["talk_s"] == 595.0 + 285.0
    assert alice["staffed_s"] == 3600.0 + 900.0
    assert alice["fcr_open"] == 2  # both calls are still within their 7 days
    assert fig["as_of"] == "2026-12-07T10:45:00+08:00"


@pytest.mark.parametrize(("follow_ups", "dispositions", "resolved"), [
    ([], DISPOSITIONS, 2),
    ([FollowUpRow("B", t("15:00", 10), "escalation")], DISPOSITIONS, 1),
    ([FollowUpRow("A", t("09:00", 15), "callback")], DISPOSITIONS, 2),  # 8 days later
    ([FollowUpRow("A", t("09:00", 14), "callback")], DISPOSITIONS, 1),  # within 7 days
    ([], [DispositionRow(ALICE, 1, "callback", t("09:21"))], 1),
])
def test_first_call_resolution(follow_ups: list[FollowUpRow],
                               dispositions: list[DispositionRow], resolved: int) -> None:
    alice = by_name(figures(follow_ups=follow_ups, dispositions=dispositions))["alice"]
    assert (alice["fcr_resolved"], alice["first_call_resolution"]) == (resolved, resolved / 2)


def test_state_seconds_of_one_agent() -> None:
    rows = [StateRow(1, t("08:00"), "available"), StateRow(1, t("09:00"), "away"),
            StateRow(1, t("09:30"), "available")]
    spent = state_seconds(rows, t("08:30"), t("10:00"))
    assert (spent["available"], spent["away"], spent["on_call"]) == (3600.0, 1800.0, 0.0)


def test_text_report() -> None:
    text = format_agent_figures(figures())
    assert text.splitlines()[0] == "坐席日报 agents 2026-12-07 (Asia/Shanghai, as of " \
        "2026-12-08T00:00:00+08:00)"
    assert "  alice: 分配 offers 3, 接听 accepted 2, 拒接 declined 1" in text
    assert "通话 talk 590 s avg (0.3 h)" in text
    assert "占用率 occupancy 15.1%" in text
    assert "一次解决率 first-call resolution 50.0%" in text
    assert "处理结果 dispositions: resolved 1, sale 1" in text
    assert "合计 team (3)" in text
    empty = format_agent_figures(figures(states=[], offers=[]))
    assert "no agent was logged in" in empty


def test_an_offer_still_ringing_is_counted_but_not_yet_in_the_service_level() -> None:
    ringing = OfferRow(CAROL, 5, "E", t("09:40"), None, None, 10)
    carol = by_name(figures(offers=[*OFFERS, ringing]))["carol"]
    assert (carol["offers"], carol["ringing"], carol["service_level"]) == (2, 1, None)


def test_no_calls_per_hour_over_a_few_minutes_staffed() -> None:
    """Alice at 09:10:30: one call taken after 10.5 minutes staffed would read as 5.71 an
    hour; at 09:15 (15 minutes staffed) the rate is given."""
    first = OFFERS[:1]
    assert by_name(figures(now=t("09:10:30"), offers=first))["alice"]["calls_per_hour"] is None
    assert by_name(figures(now=t("09:15"), offers=first))["alice"]["calls_per_hour"] == 4.0
