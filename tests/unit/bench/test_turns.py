"""bench/turns.py's figures from constructed call timelines (ms on the simphone's call
timeline): the response gap from the caller's end of speech, and when a turn counts as cut."""

from __future__ import annotations

import math
from array import array

from bench.turns import Said, TurnResult, call_turns, judge, modes, script_listens, summarise
from bot.personas import Persona, parse_persona
from voice.session import SessionConfig

PLAIN = Said("是的", "yes_no", ((1000.0, 1400.0),))
# 不是 1000–1400, a 500 ms pause, 我是他家人 1900–2600.
PAUSED = Said("不是，我是他家人", "yes_no", ((1000.0, 1400.0), (1900.0, 2600.0)))


def test_the_gap_runs_from_the_end_of_speech_to_the_bot_s_next_speech() -> None:
    [result] = judge([PLAIN], bot_starts_ms=[200.0, 1850.0, 5000.0], answers=[(1700.0, "是的")])
    assert result == TurnResult("是的", "yes_no", False, gap_ms=450.0, heard=["是的"])


def test_bot_speech_in_the_pause_cuts_the_turn() -> None:
    [result] = judge([PAUSED], bot_starts_ms=[1700.0, 3500.0],
                     answers=[(1650.0, "不是"), (3300.0, "我是他家人")])
    assert result.cut == ["bot_spoke", "ended_early", "split"]
    assert result.gap_ms is None and result.heard == ["不是", "我是他家人"]


def test_an_answer_before_the_caller_is_done_cuts_it_even_if_the_bot_waits() -> None:
    [result] = judge([PAUSED], bot_starts_ms=[2700.0], answers=[(2500.0, "不是")])
    assert result.cut == ["ended_early"]


def test_a_paused_answer_heard_whole_is_not_cut() -> None:
    [result] = judge([PAUSED], bot_starts_ms=[3400.0], answers=[(3200.0, "不是，我是他家人")])
    assert result.cut == [] and result.gap_ms == 800.0


def test_answers_and_replies_belong_to_the_utterance_before_the_next() -> None:
    later = Said("五分", "score", ((4000.0, 4300.0),))
    first, second = judge([PLAIN, later], bot_starts_ms=[2000.0, 4800.0],
                          answers=[(1900.0, "是的"), (4700.0, "五分")])
    assert (first.gap_ms, first.heard) == (600.0, ["是的"])
    assert (second.gap_ms, second.heard) == (500.0, ["五分"])


def test_no_reply_before_the_next_utterance_leaves_no_gap() -> None:
    later = Said("五分", "score", ((4000.0, 4300.0),))
    first, _ = judge([PLAIN, later], bot_starts_ms=[4500.0], answers=[])
    assert first.gap_ms is None and first.cut == []


def test_summary_gaps_by_kind_and_cut_rate_over_paused_utterances() -> None:
    results = [TurnResult("是的", "yes_no", False, gap_ms=400.0),
               TurnResult("五分", "score", False, gap_ms=500.0),
               TurnResult("没有", "free", False, gap_ms=800.0),
               TurnResult("不是，我是他家人", "yes_no", True, cut=["bot_spoke"],
                          heard=["不是"]),
               TurnResult("我想想，还是算了", "free", True, gap_ms=900.0),
               TurnResult("好的，可以", "yes_no", False, cut=["split"])]
    out = summarise(results)
    gaps = out["response_gap_ms"]
    assert gaps["short_answers"] == {"n": 2, "p50": 400.0, "p95": 500.0, "max": 500.0}
    assert gaps["free_answers"]["n"] == 1 and gaps["paused_answers"]["p50"] == 900.0
    assert (out["paused_utterances"], out["cut"], out["cut_rate"]) == (2, 1, 0.5)
    assert (out["cut_short_answers"], out["cut_free_answers"]) == (1, 0)
    assert out["cut_plain_utterances"] == 1
    assert [c["said"] for c in out["cuts"]] == ["不是，我是他家人", "好的，可以"]


def tone(ms: int) -> bytes:
    return array("h", (round(8000 * math.sin(2 * math.pi * 440 * i / 8000))
                       for i in range(8 * ms))).tobytes()


def test_a_call_s_turns_from_the_simphone_record_and_the_dialogue_log() -> None:
    audio = {"嗯": bytes(1600) + tone(200) + bytes(3200), "是我": bytes(640) + tone(300),
             "好的": tone(300) + bytes(1600)}
    persona: Persona = parse_persona({"id": "p", "turns": [
        {"say": ["嗯", {"pause_s": 0.5}, "是我"]}, {"say": "好的"}]})
    listens = [{"expect": "yes_no"}, {"expect": "free"}]
    record = {"t0_monotonic": 100.0,
              "own_audio": [{"kind": "say", "start_ms": 3000.0},
                            {"kind": "say", "start_ms": 8000.0}],
              "bot_speech": [{"start_ms": 500.0}, {"start_ms": 5000.0}, {"start_ms": 9000.0}]}
    # 嗯 speaks 3100–3300, pause to 3800, 是我 3800–4100; 好的 8000–8300.
    first, second = call_turns(record, persona, listens, audio,
                               [(104.5, "嗯，是我"), (108.7, "好的")])
    assert (first.paused, first.expect, first.gap_ms, first.heard) == (
        True, "yes_no", 900.0, ["嗯，是我"])
    assert (second.expect, second.gap_ms, second.cut) == ("free", 700.0, [])


def test_the_modes_differ_only_in_the_pause_switch() -> None:
    adaptive, fixed = modes()["adaptive"], modes()["fixed"]
    assert adaptive == SessionConfig().vad and adaptive.pause_ms > 0
    assert fixed.pause_ms == 0 and fixed.end_silence_ms == adaptive.end_silence_ms


def test_the_script_asks_short_questions_and_a_free_one() -> None:
    assert [listen["expect"] for listen in script_listens()] == [
        "yes_no", "yes_no", "score", "yes_no", "free"]
