"""Intent grades from the campaign's rules: first matching rule wins, else the default."""

from __future__ import annotations

import pytest

from bot.campaigns.definition import GradeRule, Grading
from bot.campaigns.grading import CallFacts, grade, grade_call
from bot.store.models import Call


def facts(outcome: str | None = None, *, questions: int = 0, pitched: bool = False,
          verified: bool = True) -> CallFacts:
    return CallFacts(outcome, verified, pitched, questions)


@pytest.mark.parametrize(("call", "expected"), [
    (facts("consented", pitched=True), "A"),
    (facts("callback_requested", questions=2), "A"),  # interested: asked twice, no refusal
    (facts("declined", questions=3, pitched=True), "D"),  # a refusal outweighs questions
    (facts("hung_up_early"), "D"),
    (facts("do_not_call"), "D"),
    (facts("callback_requested"), "B"),
    (facts("escalated"), "B"),
    (facts("no_response", questions=1), "B"),
    (facts("notified"), "C"),
    (facts("no_response"), "C"),
])
def test_default_rules(call: CallFacts, expected: str) -> None:
    assert grade(Grading(), call) == expected


def test_custom_rules_and_default() -> None:
    rules = Grading(rules=[GradeRule(grade="A", pitched=True, verified=True),
                           GradeRule(grade="B", refused=True)], default="D")
    assert grade(rules, facts("declined", pitched=True)) == "A"
    assert grade(rules, facts("complaint")) == "B"
    assert grade(rules, facts("notified")) == "D"


def test_grade_call_reads_the_stored_call() -> None:
    call = Call(outcome="survey_completed", verified=True, pitched=False,
                summary={"product_questions": 2})
    assert grade_call(Grading(), call) == "A"
    assert grade_call(Grading(), Call(outcome=None, summary={})) is None
