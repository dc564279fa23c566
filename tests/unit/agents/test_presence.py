"""The agent presence state machine: every allowed change, and clear refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.agents.presence import (
    NEVER_SEEN,
    Presence,
    PresenceEvent,
    PresenceRefused,
    transition,
    wrap_up_ends_at,
    wrap_up_seconds,
)

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
CALL = "call-1"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def run(*events: PresenceEvent) -> Presence:
    presence = NEVER_SEEN
    for i, event in enumerate(events):
        presence = transition(presence, event, at(i * 10))
    return presence


def ev(kind: str, call_id: str | None = None, reason: str | None = None) -> PresenceEvent:
    return PresenceEvent(kind, call_id=call_id, reason=reason)


def test_a_whole_call_from_login_to_available_again() -> None:
    steps = [ev("log_in"), ev("offer", CALL), ev("accept", CALL), ev("call_ended", CALL),
             ev("wrap_up_done", CALL)]
    presence = NEVER_SEEN
    seen = []
    for i, event in enumerate(steps):
        presence = transition(presence, event, at(i))
        seen.append((presence.state, presence.call_id, presence.since))
    assert seen == [("available", None, at(0)), ("offered", CALL, at(1)),
                    ("on_call", CALL, at(2)), ("wrap_up", CALL, at(3)),
                    ("available", None, at(4))]


@pytest.mark.parametrize(("kind", "state", "reason"), [
    ("decline", "available", None),
    ("offer_withdrawn", "available", None),
    ("offer_timed_out", "away", "missed_offer"),
])
def test_the_ends_of_an_offer(kind: str, state: str, reason: str | None) -> None:
    presence = run(ev("log_in"), ev("offer", CALL), ev(kind, CALL))
    assert (presence.state, presence.reason, presence.call_id) == (state, reason, None)


def test_wrap_up_is_capped_by_the_campaign_then_available() -> None:
    wrapping = run(ev("log_in"), ev("offer", CALL), ev("accept", CALL), ev("call_ended", CALL))
    assert wrapping.since == at(30)
    assert wrap_up_ends_at(wrapping, 90) == at(120)
    assert wrap_up_seconds(wrapping, at(60), 90) == 30
    assert wrap_up_seconds(wrapping, at(500), 90) == 90
    after = transition(wrapping, ev("wrap_up_expired", CALL), at(120))
    assert after.state == "available"
    assert wrap_up_ends_at(after, 90) is None and wrap_up_seconds(after, at(130), 90) == 0


@pytest.mark.parametrize("reason", ["break", "meal", "meeting", "training", "other"])
def test_away_needs_a_reason_and_keeps_it(reason: str) -> None:
    presence = run(ev("log_in"), ev("go_away", reason=reason))
    assert (presence.state, presence.reason) == ("away", reason)
    back = transition(presence, ev("come_back"), at(100))
    assert (back.state, back.reason) == ("available", None)


def test_away_without_or_with_an_unknown_reason_is_refused() -> None:
    with pytest.raises(ValueError, match="going away needs a reason: break, meal"):
        ev("go_away")
    with pytest.raises(ValueError, match="unknown away reason 'nap'"):
        ev("go_away", reason="nap")


def test_an_away_agent_may_change_the_reason_but_not_repeat_it() -> None:
    presence = run(ev("log_in"), ev("go_away", reason="break"))
    meeting = transition(presence, ev("go_away", reason="meeting"), at(50))
    assert meeting.reason == "meeting"
    with pytest.raises(PresenceRefused, match=r"already away \(meeting\)"):
        transition(meeting, ev("go_away", reason="meeting"), at(60))


def test_after_call_work_can_end_in_a_break() -> None:
    presence = run(ev("log_in"), ev("offer", CALL), ev("accept", CALL), ev("call_ended", CALL),
                   ev("go_away", reason="break"))
    assert (presence.state, presence.reason, presence.call_id) == ("away", "break", None)


@pytest.mark.parametrize(("events", "refused", "message"), [
    ([], ev("offer", CALL), r"offer refused: the agent is offline \(only an available agent"),
    ([ev("log_in"), ev("go_away", reason="break")], ev("offer", CALL),
     "the agent is away .only an available agent is offered a call"),
    ([ev("log_in"), ev("offer", CALL)], ev("offer", "call-2"),
     "the agent is offered .only an available agent"),
    ([ev("log_in"), ev("offer", CALL)], ev("log_out"), "answer or decline the call on offer"),
    ([ev("log_in"), ev("offer", CALL), ev("accept", CALL)], ev("log_out"), "end the call first"),
    ([ev("log_in"), ev("offer", CALL), ev("accept", CALL)], ev("go_away", reason="break"),
     "end the call first"),
    ([ev("log_in")], ev("log_in"), "already logged in"),
    ([ev("log_in")], ev("accept", CALL), "happens only when offered"),
    ([ev("log_in")], ev("come_back"), "happens only when away"),
    ([], ev("go_away", reason="break"), "the agent is offline; it happens only when available"),
])
def test_refusals_say_why(events: list[PresenceEvent], refused: PresenceEvent,
                          message: str) -> None:
    presence = run(*events)
    with pytest.raises(PresenceRefused, match=message):
        transition(presence, refused, at(1000))


def test_an_event_about_another_call_is_refused() -> None:
    presence = run(ev("log_in"), ev("offer", CALL))
    with pytest.raises(PresenceRefused, match="about call call-2, the agent's call is call-1"):
        transition(presence, ev("accept", "call-2"), at(100))


def test_time_does_not_run_backwards() -> None:
    presence = run(ev("log_in"), ev("offer", CALL))
    with pytest.raises(PresenceRefused, match="before the agent became offered"):
        transition(presence, ev("accept", CALL), at(5))


def test_events_check_their_own_fields() -> None:
    with pytest.raises(ValueError, match="offer needs the call's id"):
        ev("offer")
    with pytest.raises(ValueError, match="log_in takes no call id"):
        ev("log_in", CALL)
    with pytest.raises(ValueError, match="come_back takes no reason"):
        ev("come_back", reason="break")
    with pytest.raises(ValueError, match="unknown presence event 'lunch'"):
        ev("lunch")


def test_a_presence_is_consistent() -> None:
    with pytest.raises(ValueError, match="away reason"):
        Presence("available", T0, reason="break")
    with pytest.raises(ValueError, match="call id"):
        Presence("on_call", T0)
    with pytest.raises(ValueError, match="unknown agent state"):
        Presence("busy", T0)
