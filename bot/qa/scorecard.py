"""The QA scorecard on the practice's four rules (DESIGN.md: right person, understood,
approved script, explicit consent): checkpoints with points, an instant-fail option and
comments.  Pure: the console's review form is parsed here and the verdict computed here.

A call is compliant when no critical checkpoint is missed and the reviewer did not mark an
instant fail; the points are a measure of quality for the reports, not the verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Checkpoint:
    key: str
    zh: str
    en: str
    points: int
    critical: bool  # missed -> the rule fails -> the call is non-compliant


@dataclass(frozen=True)
class Rule:
    key: str
    zh: str
    en: str
    checkpoints: tuple[Checkpoint, ...]


RULES: tuple[Rule, ...] = (
    Rule("right_person", "本人确认", "Right person", (
        Checkpoint("identity_confirmed", "确认为本人或有权决定的家人", "account holder (or a "
                   "family member with authority) confirmed", 15, True),
        Checkpoint("permission_asked", "推介前征得许可", "permission asked before the pitch",
                   10, True),
    )),
    Rule("understood", "听得明白", "Understood", (
        Checkpoint("listener_followed", "客户能听懂通话", "the listener could follow the call",
                   10, True),
        Checkpoint("repeats_within_limit", "没听清最多重复两次", "at most two repeats after "
                   "'not heard'", 10, False),
    )),
    Rule("approved_script", "规范话术", "Approved script", (
        Checkpoint("price_stated", "说明价格", "price stated", 10, True),
        Checkpoint("trial_end_stated", "说明试用结束日期", "trial end date stated", 5, True),
        Checkpoint("cancel_stated", "说明取消和咨询方式", "how to cancel or ask stated", 10,
                   True),
        Checkpoint("approved_wording", "使用规范话术", "approved wording used", 5, False),
        Checkpoint("usage_stated", "说明用途和使用方法", "what it does and how to use it", 5,
                   False),
    )),
    Rule("explicit_consent", "明确同意", "Explicit consent", (
        Checkpoint("explicit_agreement", "明确表示同意", "explicit agreement (not 嗯, 再说吧)",
                   10, True),
        Checkpoint("readback_confirmed", "复述后再次确认", "read-back confirmed", 10, True),
    )),
)
TOTAL_POINTS = sum(c.points for r in RULES for c in r.checkpoints)
MAX_COMMENT = 2000


class ScorecardError(ValueError):
    """A form that is not a scorecard (a missing verdict, an instant fail without reason)."""


@dataclass(frozen=True)
class Scorecard:
    met: frozenset[str]  # "rule.checkpoint" the reviewer ticked
    instant_fail: bool
    instant_fail_reason: str
    comments: dict[str, str]  # rule key or "overall" -> comment

    @property
    def points(self) -> int:
        return sum(c.points for r in RULES for c in r.checkpoints
                   if f"{r.key}.{c.key}" in self.met)

    def failed_rules(self) -> list[str]:
        return [r.key for r in RULES
                if any(c.critical and f"{r.key}.{c.key}" not in self.met
                       for c in r.checkpoints)]

    @property
    def compliant(self) -> bool:
        return not self.instant_fail and not self.failed_rules()

    def by_rule(self) -> list[tuple[str, bool, int, int]]:
        """Each rule's (key, passed, points, max points): what qa_rule_results keeps."""
        failed = self.failed_rules()
        return [(r.key, r.key not in failed,
                 sum(c.points for c in r.checkpoints if f"{r.key}.{c.key}" in self.met),
                 sum(c.points for c in r.checkpoints)) for r in RULES]

    def as_json(self) -> dict[str, Any]:
        return {"points": self.points, "total": TOTAL_POINTS, "compliant": self.compliant,
                "failed_rules": self.failed_rules(), "met": sorted(self.met),
                "instant_fail": self.instant_fail,
                "instant_fail_reason": self.instant_fail_reason, "comments": self.comments}

    def notes(self) -> str:
        """The review's notes (qa_reviews.notes; the follow-up callback's text)."""
        parts = [f"评分 {self.points}/{TOTAL_POINTS}"]
        if self.instant_fail:
            parts.append(f"一票否决 instant fail: {self.instant_fail_reason}")
        if self.failed_rules():
            parts.append("未通过 failed: " + ", ".join(self.failed_rules()))
        parts += [f"{key}: {text}" for key, text in self.comments.items()]
        return "；".join(parts)


def checkpoint_field(rule: Rule, checkpoint: Checkpoint) -> str:
    return f"cp.{rule.key}.{checkpoint.key}"


def parse_scorecard(form: Mapping[str, Any]) -> Scorecard:
    met = frozenset(f"{r.key}.{c.key}" for r in RULES for c in r.checkpoints
                    if str(form.get(checkpoint_field(r, c), "")) == "on")
    instant_fail = str(form.get("instant_fail", "")) == "on"
    reason = str(form.get("instant_fail_reason", "")).strip()[:MAX_COMMENT]
    if instant_fail and not reason:
        raise ScorecardError("一票否决需写明原因 An instant fail needs a reason")
    comments = {key: text for key in [r.key for r in RULES] + ["overall"]
                if (text := str(form.get(f"comment.{key}", "")).strip()[:MAX_COMMENT])}
    return Scorecard(met, instant_fail, reason, comments)
