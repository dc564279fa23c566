"""Issue 16 on the pure call flow: a control request in doubt is asked back before the bot
acts on it, and a decision the customer made stands whatever the next turn brings."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from actions import rulegen
from actions.flow import Escalate, Outcome, ScheduleCallback, Script
from tests.unit.test_flow import MARKETING, NOW, SURVEY, Call, pitched

HEARD = {"input_mode": "speech", "asr_confidence": 0.92, "asr_snapped": False}


def asked_permission() -> Call:
    call = Call(MARKETING)
    assert call.reply("affirm", "是我").question == "permission_marketing"
    return call


# -- a control request in doubt is confirmed back -------------------------------------------


def test_a_yes_misheard_as_a_request_for_a_person_is_asked_back_not_transferred() -> None:
    """The case from the field: "可以你说" heard as "可以跟你说", request_human at 0.35."""
    call = asked_permission()
    step = call.reply("request_human", "可以跟你说", intent_confidence=0.35, **HEARD)
    assert (step.question, call.outcome) == ("confirm_human", None)
    assert not [e for e in call.effects if isinstance(e, Escalate)]
    step = call.reply("deny", "不是不是你说吧", **HEARD)
    assert (step.lead, step.question) == ("go_on", "permission_marketing")
    assert call.reply("affirm", "可以", **HEARD).lead == "pitch"  # the call goes on
    assert call.outcome is None


@pytest.mark.parametrize("text", ["可以跟你说", "好的你说", "行啊说吧", "嗯，可以"])
def test_a_control_intent_contradicted_by_an_ordinary_answer_is_asked_back(text: str) -> None:
    """Classified sure of itself, but the words open with an answer to the question and
    hold none of the request's own words."""
    call = asked_permission()
    step = call.reply("request_human", text, intent_confidence=0.95, **HEARD)
    assert step.question == "confirm_human"


@pytest.mark.parametrize("intent, text, question", [
    ("request_human", "能不能换个人跟我说", "confirm_human"),
    ("complain", "你们这服务太差劲了", "confirm_complaint"),
    ("do_not_call", "以后别烦我", "confirm_dnc"),
])
def test_every_control_request_below_the_campaigns_confidence_is_asked_back(
        intent: str, text: str, question: str) -> None:
    call = asked_permission()
    assert call.reply(intent, text, intent_confidence=0.5, **HEARD).question == question


@pytest.mark.parametrize("intent, text, lead", [
    ("request_human", "能不能换个人跟我说", "end_transfer"),
    ("complain", "你们这服务太差劲了", "end_complaint"),
    ("do_not_call", "以后别烦我", "end_dnc"),
])
def test_a_confident_clearly_heard_request_is_acted_on_at_once(intent: str, text: str,
                                                              lead: str) -> None:
    call = asked_permission()
    assert call.reply(intent, text, intent_confidence=0.9, **HEARD).lead == lead


@pytest.mark.parametrize("intent, text, lead", [
    ("request_human", "可以，帮我转人工", "end_transfer"),
    ("complain", "好的我要投诉你们", "end_complaint"),
    ("nlu_fallback", "不要再打了", "end_dnc"),
])
def test_the_requests_own_words_are_acted_on_whatever_the_confidence(intent: str, text: str,
                                                                     lead: str) -> None:
    call = asked_permission()
    assert call.reply(intent, text, intent_confidence=0.3, **HEARD).lead == lead


def test_the_threshold_is_the_campaigns() -> None:
    call = Call(Script("marketing", min_control_confidence=0.4))
    call.reply("affirm", "是我")
    assert call.reply("request_human", "换个人", intent_confidence=0.5, **HEARD).lead \
        == "end_transfer"


def test_yes_to_the_confirmation_transfers() -> None:
    call = asked_permission()
    call.reply("request_human", "换个人", intent_confidence=0.5, **HEARD)
    assert call.reply("affirm", "对", **HEARD).lead == "end_transfer"
    assert call.outcome == Outcome("escalated") and Escalate("request_human") in call.effects


@pytest.mark.parametrize("no", ["不用，你说吧", "不需要", "没有没有"])
def test_no_need_to_the_person_question_goes_back(no: str) -> None:
    call = asked_permission()
    call.reply("request_human", "可以跟你说", intent_confidence=0.35, **HEARD)
    assert call.reply("nlu_fallback", no, **HEARD).lead == "go_on"


def test_silence_after_a_doubtful_request_for_a_person_transfers_nobody() -> None:
    call = asked_permission()
    call.reply("request_human", "可以跟你说", intent_confidence=0.35, **HEARD)
    step = call.reply("silence_timeout")
    assert (step.lead, step.question) == ("still_there", "permission_marketing")
    assert call.outcome is None and call.state.stage == "permission"


def test_two_unclear_answers_about_a_person_go_back_without_a_transfer() -> None:
    call = asked_permission()
    call.reply("request_human", "可以跟你说", intent_confidence=0.35, **HEARD)
    assert call.reply("asr_unclear").lead == "sorry"
    step = call.reply("asr_unclear")
    assert (step.lead, step.question) == ("go_on", "permission_marketing")
    assert call.outcome is None


def test_hanging_up_while_asked_about_a_person_leaves_the_outcome_to_the_channel() -> None:
    call = asked_permission()
    call.reply("request_human", "可以跟你说", intent_confidence=0.35, **HEARD)
    assert call.reply("caller_hung_up").effects == []


def test_a_clear_other_request_while_confirming_is_acted_on() -> None:
    call = asked_permission()
    call.reply("request_human", "可以跟你说", intent_confidence=0.35, **HEARD)
    assert call.reply("complain", "不是，我要投诉", **HEARD).lead == "end_complaint"


# -- a no is a no ---------------------------------------------------------------------------


def refused_after_distrust() -> Call:
    call = pitched()
    assert call.reply("distrust", "你们是骗子吧").lead == "objection_distrust"
    step = call.reply("deny", "不要")
    assert step.question == "decline_reason"
    assert call.outcome == Outcome("declined", "distrust")  # recorded at once
    return call


def test_silence_after_why_keeps_the_refusal_with_the_objection_heard() -> None:
    """The case from the field: 不要 after a distrust objection, then no answer to
    "方便说一下原因吗" was recorded as no_response and the customer called again."""
    call = refused_after_distrust()
    assert call.reply("silence_timeout").lead == "still_there"
    assert call.reply("silence_timeout").lead == "end_silence"
    assert call.outcome == Outcome("declined", "distrust")


@pytest.mark.parametrize("intent", ["goodbye", "not_understand", "affirm"])
def test_any_answer_to_why_keeps_the_refusal(intent: str) -> None:
    call = refused_after_distrust()
    call.reply(intent, "嗯")
    assert call.outcome == Outcome("declined", "distrust") and call.state.ended


def test_a_reason_given_replaces_the_objection() -> None:
    call = refused_after_distrust()
    call.reply("not_needed", "就是用不上")
    assert call.outcome == Outcome("declined", "not_needed")


def test_hanging_up_on_why_keeps_the_refusal() -> None:
    call = refused_after_distrust()
    call.reply("caller_hung_up")
    assert call.outcome == Outcome("declined", "distrust") and call.state.ended


def test_repeated_not_understood_after_why_keeps_the_refusal() -> None:
    call = refused_after_distrust()
    for _ in range(4):
        call.reply("asr_unclear")
    assert call.outcome == Outcome("declined", "distrust")


def test_a_bare_no_without_an_objection_is_declined_other() -> None:
    call = pitched()
    call.reply("deny", "不要")
    call.reply("caller_hung_up")
    assert call.outcome == Outcome("declined", "other")


def test_a_complaint_after_the_refusal_replaces_it() -> None:
    call = refused_after_distrust()
    call.reply("complain", "我要投诉你们")
    assert call.outcome == Outcome("complaint")


def test_a_no_at_the_read_back_is_a_decision_too() -> None:
    call = pitched()
    call.reply("agree", "我同意")
    assert call.steps[-1].question == "readback"
    call.reply("deny", "算了不要了")
    call.reply("silence_timeout")
    call.reply("silence_timeout")
    assert call.outcome == Outcome("declined", "other")


# -- "call me later" stands -----------------------------------------------------------------


def asked_when() -> Call:
    call = asked_permission()
    step = call.reply("busy_call_later", "现在不方便")
    assert step.question == "callback_time"
    assert call.outcome == Outcome("callback_requested")
    return call


def _callbacks(call: Call) -> list[ScheduleCallback]:
    return [e for e in call.effects if isinstance(e, ScheduleCallback)]


@pytest.mark.parametrize("after", [["silence_timeout", "silence_timeout"], ["caller_hung_up"]])
def test_call_me_later_without_a_time_is_still_a_callback(after: list[str]) -> None:
    call = asked_when()
    for intent in after:
        call.reply(intent)
    assert call.outcome == Outcome("callback_requested") and call.state.ended
    assert [c.due_at for c in _callbacks(call)] == [NOW + timedelta(hours=2)]
    assert _callbacks(call)[0].said == "现在不方便"


def test_the_time_given_is_kept_with_the_first_words() -> None:
    call = asked_when()
    call.reply("inform", "明天上午十点")
    [callback] = _callbacks(call)
    assert callback.due_at.hour == 10 and callback.due_at.date() == NOW.date() + timedelta(1)
    assert callback.said == "现在不方便 明天上午十点"


def test_a_survey_decision_stands_as_well() -> None:
    call = Call(SURVEY)
    call.reply("affirm", "是")
    call.reply("busy_call_later", "在开车")
    call.reply("caller_hung_up")
    assert call.outcome == Outcome("callback_requested") and len(_callbacks(call)) == 1


# -- open questions: the customer's own words -----------------------------------------------


@pytest.mark.parametrize("intent, text", [
    ("do_not_call", "希望你们把网速弄快点"),  # classified do_not_call at 0.84
    ("complain", "你们的服务太差了"),
    ("request_human", "师傅上门太晚了"),
])
def test_an_answer_to_an_open_question_is_not_taken_for_a_request(intent: str,
                                                                  text: str) -> None:
    call = Call(SURVEY)
    call.reply("affirm", "是")
    call.reply("affirm", "可以")
    call.reply("inform_score", "不满意", entities={"score": "1"})
    assert call.state.stage == "survey_reason"
    call.reply(intent, text, intent_confidence=0.84, **HEARD)
    assert call.state.stage == "survey_q" and call.outcome is None


def _action_for(intent: str) -> str:
    """The action Rasa runs for a control intent (data/rules/global.yml)."""
    rules = yaml.safe_load((Path(__file__).resolve().parents[2] / "data" / "rules"
                            / "global.yml").read_text(encoding="utf-8"))["rules"]
    for rule in rules:
        steps = rule["steps"]
        if steps[0].get("intent") == intent:
            return str(steps[1]["action"])
    raise AssertionError(f"no rule for {intent}")


@pytest.mark.parametrize("intent, text", [
    ("complain", "赶紧把网速提上去吧"),  # a suggestion, classified complain (voice run 2026-12-06)
    ("do_not_call", "以后别让师傅迟到了"),
    ("request_human", "师傅人挺好的"),
])
def test_a_control_intent_answering_the_last_question_ends_the_survey_with_words(
        intent: str, text: str) -> None:
    """Rasa runs the control intent's own action; the flow takes the words as the
    suggestion and ends the survey: that action must have a rule for the lead it chose,
    or Rasa says nothing and the call ends on 系统繁忙."""
    call = Call(SURVEY)
    call.reply("affirm", "是")
    call.reply("affirm", "可以")
    call.reply("inform_score", "满意", entities={"score": "5"})
    call.reply("inform_score", "五分", entities={"score": "5"})
    assert call.state.stage == "survey_open"
    step = call.reply(intent, text, intent_confidence=0.9, **HEARD)
    assert call.outcome == Outcome("survey_completed")
    assert step.lead in rulegen.leads_of(_action_for(intent))


def test_a_request_in_its_own_words_still_counts_in_an_open_answer() -> None:
    call = Call(SURVEY)
    call.reply("affirm", "是")
    call.reply("affirm", "可以")
    call.reply("inform_score", "不满意", entities={"score": "1"})
    assert call.reply("complain", "我要投诉你们", **HEARD).lead == "end_complaint"


@pytest.mark.parametrize("text", ["没什么建议了", "没啥意见"])
def test_nothing_to_add_is_an_answer_to_the_last_survey_question(text: str) -> None:
    call = Call(SURVEY)
    call.reply("affirm", "是")
    call.reply("affirm", "可以")
    call.reply("inform_score", "满意", entities={"score": "5"})
    call.reply("inform_score", "五分", entities={"score": "5"})
    assert call.state.stage == "survey_open"
    call.reply("not_understand", text)
    assert call.outcome == Outcome("survey_completed")
