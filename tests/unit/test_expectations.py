"""The summary of a simulated run (`waihu simulate --summary`, `make variants`): held rates
per folder and overall, failures with what was expected and observed, unwanted consents."""

from __future__ import annotations

from typing import Any

from bot.demo import PersonaResult
from bot.expectations import heard_turns, summarise, unwanted_consent
from bot.store import CallRepo, Database
from tests.conftest import seed_call


def result(persona: str, expect: dict[str, Any], outcome: str | None = None, *,
           dial_result: str = "answered", reason: str | None = None,
           confirmation: str | None = None, call_id: str = "") -> PersonaResult:
    return PersonaResult(persona, "camp", call_id or f"call-{persona}", dial_result, outcome,
                         reason, confirmation, expect, attempts=1)


def test_held_rates_per_group_and_overall() -> None:
    groups = {
        "marketing": [
            result("consents", {"outcome": "consented"}, "consented"),
            result("price", {"outcome": "declined", "decline_reason": "too_expensive"},
                   "declined", reason="other"),
            result("busy", {"dial_result": "busy"}, dial_result="busy"),
        ],
        "survey": [result("done", {"outcome": "survey_completed"}, "survey_completed")],
    }
    summary = summarise(groups)
    assert (summary["run"], summary["held"], summary["held_rate"]) == (4, 3, 0.75)
    marketing = summary["groups"]["marketing"]
    assert (marketing["run"], marketing["held"], marketing["held_rate"]) == (3, 2, 0.6667)
    assert summary["groups"]["survey"]["held_rate"] == 1.0
    assert summary["groups"]["survey"]["failures"] == []
    assert marketing["failures"] == [{
        "persona": "price", "call_id": "call-price", "attempts": 1, "heard": [],
        "expected": {"outcome": "declined", "decline_reason": "too_expensive"},
        "observed": {"dial_result": "answered", "outcome": "declined",
                     "decline_reason": "other"}}]
    assert summary["unwanted_consents"] == 0


def test_a_consent_nobody_expected_is_counted_whatever_else_was_expected() -> None:
    groups = {"marketing": [
        result("maybe", {"outcome": "declined", "decline_reason": "other"}, "consented"),
        result("answered", {"dial_result": "answered"}, "consented"),  # held, yet unwanted
        result("agrees", {"outcome": "consented"}, "consented"),
        result("keeps", {"outcome": "consented", "confirmation_result": "keep"}, "consented",
               confirmation="cancel"),  # a failure, but the consent was expected
    ]}
    summary = summarise(groups)
    assert summary["unwanted_consents"] == summary["groups"]["marketing"]["unwanted_consents"] == 2
    assert [r.persona for r in groups["marketing"] if unwanted_consent(r)] == ["maybe", "answered"]
    assert [f["persona"] for f in summary["groups"]["marketing"]["failures"]] == ["maybe", "keeps"]


def test_an_empty_folder_has_no_rate() -> None:
    summary = summarise({"notification": []})
    assert summary["held_rate"] is None and summary["run"] == 0
    assert summary["groups"]["notification"]["held_rate"] is None


def test_failures_show_what_the_bot_heard(sqlite_db: Database) -> None:
    call = seed_call(sqlite_db)
    with sqlite_db.session() as session:
        calls = CallRepo(session)
        calls.add_turn(call.id, "bot", "请问您是张先生本人吗？")
        calls.add_turn(call.id, "customer", "可以跟你说", intent="request_human",
                       intent_confidence=0.35, input_mode="speech", asr_confidence=0.81)
        calls.add_turn(call.id, "customer", "[按键 1]", intent="dtmf", input_mode="dtmf")
    heard = heard_turns(sqlite_db, [call.id])
    assert heard == {call.id: [
        {"text": "可以跟你说", "intent": "request_human", "intent_confidence": 0.35,
         "input_mode": "speech", "asr_confidence": 0.81},
        {"text": "[按键 1]", "intent": "dtmf", "intent_confidence": None,
         "input_mode": "dtmf", "asr_confidence": None}]}
    failed = result("permission", {"outcome": "consented"}, "escalated", call_id=call.id)
    summary = summarise({"marketing": [failed]}, heard)
    assert summary["groups"]["marketing"]["failures"][0]["heard"] == heard[call.id]
