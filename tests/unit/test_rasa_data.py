"""The Rasa data agrees with the call flow: generated rules, slot values, responses."""

from __future__ import annotations

from pathlib import Path

import yaml

from actions import flow, rulegen

REPO = Path(__file__).resolve().parents[2]
DOMAIN = yaml.safe_load((REPO / "domain.yml").read_text(encoding="utf-8"))


def test_generated_rules_are_up_to_date() -> None:
    assert rulegen.main(["--check"]) == 0


def test_lead_and_question_slot_values_match_the_flow() -> None:
    slots = DOMAIN["slots"]
    assert slots["lead"]["values"] == list(flow.LEADS)
    assert slots["question"]["values"] == list(flow.QUESTIONS)


def test_every_response_the_flow_names_exists_and_every_response_is_used() -> None:
    named = {r for rs in flow.LEADS.values() for r in rs} | {
        q for q in flow.QUESTIONS.values() if q}
    assert named == set(DOMAIN["responses"])


def test_questions_listen_and_endings_hang_up_or_transfer() -> None:
    responses = DOMAIN["responses"]
    for response in filter(None, flow.QUESTIONS.values()):
        assert "listen" in responses[response][0]["custom"], response
    for lead, names in flow.LEADS.items():
        if lead.startswith("end_"):
            custom = responses[names[-1]][0]["custom"]
            assert custom.get("hangup") or "transfer" in custom, lead


def test_disclosures_cannot_be_interrupted() -> None:
    responses = DOMAIN["responses"]
    for response, ids in flow.DISCLOSURES.items():
        custom = responses[response][0]["custom"]
        assert custom["barge_in"] is False and custom["disclosure"] == list(ids)
