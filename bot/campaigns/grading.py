"""Intent grading: A/B/C/D for every answered call, from the campaign's `grading` rules.

The rules (bot/campaigns/definition.py, ``Grading``) are tried in order; the first whose
conditions all hold gives the grade, else the default.  The facts come from the stored call:
its outcome, whether it was verified and pitched, and ``summary.product_questions`` that the
actions count (ask_price / ask_cancel turns).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.campaigns.definition import Grade, GradeRule, Grading
from bot.store.models import Call

REFUSALS = frozenset({"declined", "do_not_call", "complaint"})


@dataclass(frozen=True)
class CallFacts:
    outcome: str | None
    verified: bool
    pitched: bool
    product_questions: int

    @classmethod
    def of(cls, call: Call) -> CallFacts:
        summary = call.summary or {}
        return cls(call.outcome, bool(call.verified), bool(call.pitched),
                   int(summary.get("product_questions") or 0))

    @property
    def refused(self) -> bool:
        return self.outcome in REFUSALS


def matches(rule: GradeRule, facts: CallFacts) -> bool:
    checks = [
        rule.outcome is None or facts.outcome in rule.outcome,
        rule.product_questions_min is None or facts.product_questions >= rule.product_questions_min,
        rule.refused is None or facts.refused == rule.refused,
        rule.pitched is None or facts.pitched == rule.pitched,
        rule.verified is None or facts.verified == rule.verified,
    ]
    return all(checks)


def grade(grading: Grading, facts: CallFacts) -> Grade:
    for rule in grading.rules:
        if matches(rule, facts):
            return rule.grade
    return grading.default


def grade_call(grading: Grading, call: Call) -> Grade | None:
    """The grade of a finished call (None while it has no outcome, or when a system failure
    ended it: it says nothing about the customer)."""
    if call.outcome is None or call.outcome == "failed":
        return None
    return grade(grading, CallFacts.of(call))
