"""bench/console.py's pure parts: matching what the pages noted to what was committed, the
missing and the misdirected, and the page clock's offset."""

from __future__ import annotations

from bench.consolebench.measure import (
    Offered,
    PageNotes,
    Stored,
    clock_offset,
    offer_lags,
    shown_elsewhere,
    turn_lags,
)

OFFERS = [Offered(7, agent_id=1, call_id="c1", committed_ms=1000.0),
          Offered(8, agent_id=2, call_id="c2", committed_ms=2000.0)]


def test_an_offer_counts_on_the_chosen_agents_page_only() -> None:
    notes: dict[int, PageNotes] = {
        1: {"offers": {"7": {"dom": 1120.0, "frame": 1135.5}}, "turns": {}},
        # agent 2's page never showed offer 8; agent 1 showing it would not count for 2
        2: {"offers": {}, "turns": {}},
    }
    lags = offer_lags(OFFERS, notes)
    assert lags.dom == [120.0] and lags.frame == [135.5] and lags.missing == 1
    summary = lags.summary()
    assert (summary["p50"], summary["p95"], summary["n"], summary["missing"]) == (
        120.0, 120.0, 1, 1)


def test_the_websocket_message_splits_the_latency() -> None:
    notes: dict[int, PageNotes] = {
        1: {"offers": {"7": {"dom": 1200.0, "frame": None}}, "offerMessages": {"c1": 1150.0}},
        2: {"offers": {}, "offerMessages": {"c2": 2100.0}},  # the message came, no pop
    }
    lags = offer_lags(OFFERS, notes)
    assert lags.message == [150.0, 100.0] and lags.dom == [200.0] and lags.missing == 1
    assert lags.summary()["to_message"]["p50"] == 100.0


def test_turn_lags_match_call_and_number_and_skip_a_frame_not_drawn() -> None:
    turns = [Stored("c1", 4, 1, 5000.0), Stored("c1", 5, 1, 6000.0), Stored("c1", 6, 1, 7000.0)]
    notes: dict[int, PageNotes] = {1: {"offers": {}, "turns": {
        "c1#4": {"dom": 5040.0, "frame": 5050.0},
        "c1#5": {"dom": 6300.0, "frame": None},  # noted, the page closed before a frame
        "c2#6": {"dom": 7001.0, "frame": 7002.0},  # another call's sixth turn
    }}}
    lags = turn_lags(turns, notes)
    assert lags.dom == [40.0, 300.0]
    assert lags.frame == [50.0]
    assert lags.missing == 1  # c1#6 never shown


def test_percentiles_are_nearest_rank() -> None:
    turns = [Stored("c", seq, 1, 0.0) for seq in range(1, 21)]
    notes: dict[int, PageNotes] = {1: {"offers": {}, "turns": {
        f"c#{seq}": {"dom": float(seq * 10), "frame": None} for seq in range(1, 21)}}}
    summary = turn_lags(turns, notes).summary()
    assert (summary["p50"], summary["p95"], summary["max"]) == (100.0, 190.0, 200.0)


def test_what_appears_on_another_agents_page_is_counted() -> None:
    notes: dict[int, PageNotes] = {
        1: {"offers": {"7": {"dom": 1.0, "frame": 2.0}}, "turns": {"c1#4": {"dom": 1.0}}},
        2: {"offers": {"7": {"dom": 1.0, "frame": 2.0}},  # agent 1's offer: leaked
            "turns": {"c1#5": {"dom": 1.0}, "c2#1": {"dom": 1.0}},  # c1's turn: leaked
            "turnMessages": {"c1#6": 1.0}},  # over the socket only: leaked too
    }
    assert shown_elsewhere(OFFERS, notes) == 3


def test_clock_offset_is_the_page_against_the_midpoint_of_each_reading() -> None:
    found = clock_offset([(100.0, 101.5, 102.0), (200.0, 200.0, 201.0)])
    assert found == {"n": 2, "page_minus_bench_ms_median": 0.0,
                     "page_minus_bench_ms_max_abs": 0.5, "round_trip_ms_max": 2.0}
    assert clock_offset([]) == {"n": 0}
