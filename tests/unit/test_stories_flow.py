"""tests/test_stories.yml is also a spec of the call flow: replaying each story's intents
through actions/flow.py must choose the lead and question written in the story."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from tests.flow_replay import replay
from tests.stories import STORIES_FILE

STORIES = yaml.safe_load(STORIES_FILE.read_text(encoding="utf-8"))["stories"]


def _turns(steps: list[dict[str, Any]]) -> tuple[list[tuple[str, str, dict]], list[tuple]]:
    turns, moves, lead = [], [], None
    for step in steps:
        if "intent" in step and step["intent"] != "call_started":
            user = (step.get("user") or "/").strip()
            text = re.sub(r"\[([^\]]+)\](\(\w+\)|\{[^}]*\})", r"\1", user)
            entities: dict[str, str] = {}
            for entity in step.get("entities") or []:
                entities.update(entity)
            for value, name in re.findall(r"\[([^\]]+)\]\((\w+)\)", user):
                entities[name] = value
            for label in re.findall(r"\]\{([^}]*)\}", user):
                parsed = json.loads("{" + label + "}")
                entities[parsed["entity"]] = parsed["value"]
            turns.append((step["intent"], text, entities))
        for slot in step.get("slot_was_set") or []:
            if "lead" in slot:
                lead = slot["lead"]
            if "question" in slot:
                moves.append((lead, slot["question"]))
    return turns, moves


@pytest.mark.parametrize("story", STORIES, ids=[s["story"] for s in STORIES])
def test_flow_chooses_what_the_story_says(story: dict[str, Any]) -> None:
    campaign = story["story"].split(" - ")[0]
    turns, moves = _turns(story["steps"])
    assert replay(campaign, turns) == moves


def test_stories_cover_every_flow_and_objection() -> None:
    leads = {slot["lead"] for s in STORIES for step in s["steps"]
             for slot in step.get("slot_was_set") or [] if "lead" in slot}
    for needed in ["end_consent", "end_keep", "end_decline", "end_trial_cancelled",
                   "end_undecided", "end_notice", "end_survey", "end_wrong_person",
                   "end_family_no_authority", "end_verification_failed", "end_dnc",
                   "end_transfer", "end_complaint", "end_callback", "end_silence",
                   "end_not_understood", "objection_price", "objection_distrust",
                   "disclose_price", "disclose_cancel", "who", "sorry_pitch", "sorry_notice",
                   "still_there"]:
        assert needed in leads, needed
