"""The call rules of DESIGN.md, one by one, on the pure call flow (actions/flow.py)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from actions import flow
from actions.context import build_script
from actions.flow import (
    AddDoNotCall,
    CallFlow,
    Escalate,
    FlowState,
    Outcome,
    RecordConsent,
    Reply,
    SaveSurveyAnswer,
    ScheduleCallback,
    Script,
    SurveyQuestion,
)
from bot.campaigns.definition import load_definition

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
MARKETING = Script("marketing")
SURVEY = Script("survey", survey=(SurveyQuestion("install", "满意吗？", "satisfaction"),
                                  SurveyQuestion("speed", "网速打分。", "score")))


class Call:
    """Plays a conversation against the flow the way the actions do: one CallFlow per turn."""

    def __init__(self, script: Script, check_id: str | None = None) -> None:
        self.script = script
        self.check_id = check_id
        self.state = FlowState()
        self.steps: list[flow.Step] = []
        self._run(lambda d: d.start())

    def _run(self, fn):  # type: ignore[no-untyped-def]
        dialogue = CallFlow(self.script, self.state, now=NOW,
                            check_id=lambda digits: digits == self.check_id)
        step = fn(dialogue)
        self.state = dialogue.state
        self.steps.append(step)
        return step

    def reply(self, intent: str, text: str = "", **kw) -> flow.Step:  # type: ignore[no-untyped-def]
        return self._run(lambda d: d.handle(Reply(intent, text=text, **kw)))

    def key(self, digits: str) -> flow.Step:
        return self.reply("dtmf", input_mode="dtmf", entities={"digits": digits})

    @property
    def effects(self) -> list[flow.Effect]:
        return [e for s in self.steps for e in s.effects]

    @property
    def outcome(self) -> Outcome | None:
        """The call's outcome: the last one recorded (a decision taken while the call goes
        on is recorded at once, and again, perhaps with its reason, when the call ends)."""
        outcomes = [e for e in self.effects if isinstance(e, Outcome)]
        return outcomes[-1] if outcomes else None

    @property
    def consents(self) -> list[RecordConsent]:
        return [e for e in self.effects if isinstance(e, RecordConsent)]


def pitched() -> Call:
    call = Call(MARKETING)
    call.reply("affirm", "是我")
    step = call.reply("affirm", "可以")
    assert step.lead == "pitch" and step.question == "consent"
    return call


def test_greeting_asks_for_the_account_holder() -> None:
    step = Call(MARKETING).steps[0]
    assert (step.lead, step.question) == ("greeting", "identity")
    assert step.responses == ["utter_greeting", "utter_ask_identity"]


def test_explicit_agreement_then_confirmation_is_recorded_with_all_disclosures() -> None:
    call = pitched()
    assert call.reply("agree", "好的我同意").question == "readback"
    step = call.reply("agree", "确认")
    assert step.lead == "end_consent"
    [consent] = call.consents
    assert consent.utterance == "确认" and consent.input_mode == "text"
    assert set(consent.disclosures) == {"features", "price", "trial_end", "usage", "cancel"}
    assert call.outcome == Outcome("consented")


def test_keyed_one_twice_is_consent() -> None:
    call = pitched()
    call.key("1")
    call.key("1")
    assert call.consents[0].utterance == "DTMF 1"
    assert call.consents[0].input_mode == "dtmf"


@pytest.mark.parametrize("weak", ["嗯", "好的", "可以"])
def test_weak_yes_is_never_consent(weak: str) -> None:
    call = pitched()
    for _ in range(flow.MAX_WEAK_AGREEMENTS):
        assert call.reply("affirm", weak).question == "explicit"
    step = call.reply("affirm", weak)
    assert step.lead == "end_decline"
    assert call.consents == []
    assert call.outcome == Outcome("declined", "other")


def test_weak_yes_at_final_confirmation_is_not_consent() -> None:
    call = pitched()
    call.reply("agree", "我同意")
    assert call.reply("affirm", "嗯").question == "explicit"
    assert call.consents == []


def test_maybe_later_is_no_consent() -> None:
    call = pitched()
    call.reply("undecided", "再说吧")
    assert call.consents == [] and call.outcome == Outcome("declined", "other")


@pytest.mark.parametrize("asr, snapped", [(0.5, False), (None, False), (0.95, True)])
def test_unclear_spoken_confirmation_must_be_keyed(asr: float | None, snapped: bool) -> None:
    call = pitched()
    call.reply("agree", "我同意", input_mode="speech", asr_confidence=0.95)
    step = call.reply("agree", "确认", input_mode="speech", asr_confidence=asr,
                      asr_snapped=snapped)
    assert step.question == "keyed_confirm"
    assert call.consents == []
    call.key("1")
    assert call.consents[0].utterance == "DTMF 1"


@pytest.mark.parametrize("confirm", ["spoken", "keyed"])
def test_a_confirmation_begun_before_the_question_is_no_consent(confirm: str) -> None:
    """Words (or a key) the caller began while the dialogue was still thinking, or to the
    agent before a hand-back, answer nothing the bot asked after them (rule 4)."""
    call = pitched()
    call.reply("agree", "我同意", input_mode="speech", asr_confidence=0.95)
    early = ({"entities": {"digits": "1"}, "input_mode": "dtmf"} if confirm == "keyed"
             else {"input_mode": "speech", "asr_confidence": 0.95})
    intent, text = ("dtmf", "") if confirm == "keyed" else ("agree", "确认")
    assert call.reply(intent, text, before_question=True, **early).question == "keyed_confirm"
    # asked to key it: a 1 keyed before that question was heard is no consent either
    assert call.reply(intent, text, before_question=True, **early).question == "keyed_confirm"
    assert call.consents == []
    call.key("1")  # keyed after the question: the consent
    assert call.consents[0].utterance == "DTMF 1"


def test_low_nlu_confidence_confirmation_must_be_keyed() -> None:
    call = pitched()
    call.reply("agree", "我同意")
    assert call.reply("agree", "确认吧", intent_confidence=0.6).question == "keyed_confirm"


def test_clear_spoken_confirmation_counts() -> None:
    call = pitched()
    call.reply("agree", "我同意", input_mode="speech", asr_confidence=0.9)
    call.reply("agree", "确认", input_mode="speech", asr_confidence=0.9)
    assert call.consents[0].asr_confidence == 0.9


def test_interrupted_disclosure_is_repeated_before_consent_counts() -> None:
    call = pitched()
    call.reply("agree", "我同意")
    step = call.reply("agree", "确认", interrupted=("price",))
    assert step.lead == "pitch" and step.question == "readback"
    assert call.consents == []
    call.reply("agree", "确认")
    assert "price" in call.consents[0].disclosures


def test_price_question_is_answered_and_offer_repeated() -> None:
    call = pitched()
    step = call.reply("ask_price", "多少钱")
    assert (step.lead, step.question) == ("disclose_price", "consent")


def test_product_questions_are_counted_for_grading() -> None:
    call = pitched()
    call.reply("ask_price", "多少钱")
    call.reply("ask_cancel", "怎么取消")
    call.reply("not_understand", "你说什么")
    assert call.state.product_questions == 2


@pytest.mark.parametrize("intent, lead, reason", [
    ("too_expensive", "objection_price", "too_expensive"),
    ("distrust", "objection_distrust", "distrust"),
])
def test_objection_is_answered_once_then_becomes_the_decline_reason(
        intent: str, lead: str, reason: str) -> None:
    call = pitched()
    assert call.reply(intent).lead == lead
    assert call.reply(intent).lead == "end_decline"
    assert call.outcome == Outcome("declined", reason)


def test_plain_no_asks_for_the_reason() -> None:
    call = pitched()
    assert call.reply("deny", "不要").question == "decline_reason"
    call.reply("nlu_fallback", "家里人不让")
    assert call.outcome == Outcome("declined", "other")


def test_not_needed_declines_at_once() -> None:
    call = pitched()
    call.reply("not_needed", "我不需要")
    assert call.outcome == Outcome("declined", "not_needed")


@pytest.mark.parametrize("intent", ["wrong_person", "deny"])
def test_wrong_person_gets_no_pitch(intent: str) -> None:
    call = Call(MARKETING)
    assert call.reply(intent, "你打错了").lead == "end_wrong_person"
    assert not call.state.pitched
    assert call.outcome == Outcome("wrong_person")


def test_family_member_must_have_authority_before_a_pitch() -> None:
    call = Call(MARKETING)
    assert call.reply("family_member", "我是他老婆").question == "family_authority"
    assert call.reply("deny", "不行").lead == "end_family_no_authority"
    assert not call.state.pitched and call.outcome == Outcome("wrong_person")

    call = Call(MARKETING)
    call.reply("family_member")
    assert call.reply("affirm").question == "permission_marketing"


def test_permission_is_asked_before_the_pitch() -> None:
    call = Call(MARKETING)
    assert call.reply("affirm", "是我").question == "permission_marketing"
    assert not call.state.pitched
    call.reply("deny", "不方便")
    assert not call.state.pitched and call.outcome == Outcome("declined", "other")


def test_not_understood_is_repeated_twice_then_the_call_ends_without_sale() -> None:
    call = pitched()
    assert call.reply("not_understand", "你说什么").lead == "sorry_pitch"
    assert call.reply("nlu_fallback", "你说啥").lead == "sorry_pitch"
    assert call.reply("not_understand", "我没懂").lead == "end_not_understood"
    assert call.consents == [] and call.outcome == Outcome("no_response")


def test_words_nlu_cannot_place_at_the_offer_are_no_agreement_and_end_as_a_decline() -> None:
    # Whisper writes a hummed 哦哦 / 嗯哼 at the offer as 员红 / 无乱 (nlu_fallback): the
    # customer heard the offer and answered it, so three of them are a decline, not a
    # no_response that would be dialled again two hours later.
    # The classifier puts some of that nonsense nearest a question (员红 → not_understand
    # 0.66, 你啊 for 啊嗯 → not_understand 0.99, 2026-12-06): without words that ask to hear
    # it again it is no request either.
    call = pitched()
    step = call.reply("nlu_fallback", "员红")
    assert (step.lead, step.question) == ("sorry", "explicit")
    assert call.reply("not_understand", "你啊").question == "explicit"
    assert call.reply("not_understand", "员红").lead == "end_decline"
    assert call.consents == [] and call.outcome == Outcome("declined", "other")


def test_words_nlu_cannot_place_before_the_offer_are_asked_again() -> None:
    call = Call(MARKETING)
    call.reply("affirm", "是我")
    assert (call.reply("nlu_fallback", "员红").lead, call.state.stage) == ("sorry", "permission")


def test_an_unheard_answer_to_the_offer_asks_for_an_explicit_one_and_counts_as_weak() -> None:
    call = pitched()
    step = call.reply("asr_unclear")
    assert (step.lead, step.question) == ("sorry", "explicit")
    assert call.reply("affirm", "嗯嗯").question == "explicit"
    assert call.reply("asr_unclear").lead == "end_decline"
    assert call.consents == [] and call.outcome == Outcome("declined", "other")


def test_an_unheard_answer_before_the_offer_is_asked_again() -> None:
    call = Call(MARKETING)
    call.reply("affirm", "是我")
    assert (call.reply("asr_unclear").lead, call.state.stage) == ("sorry", "permission")


def test_silence_reprompts_once_then_ends() -> None:
    call = Call(MARKETING)
    step = call.reply("silence_timeout")
    assert (step.lead, step.question) == ("still_there", "identity")
    assert call.reply("silence_timeout").lead == "end_silence"
    assert call.outcome == Outcome("no_response")


def test_do_not_call_is_honoured_at_any_stage() -> None:
    call = pitched()
    step = call.reply("do_not_call", "别再打了")
    assert step.lead == "end_dnc"
    assert AddDoNotCall("do_not_call", "customer", "别再打了") in call.effects
    assert call.outcome == Outcome("do_not_call")


def test_complaint_blacklists_and_escalates() -> None:
    call = Call(MARKETING)
    step = call.reply("complain", "我要投诉")
    assert step.lead == "end_complaint"
    assert Escalate("complaint") in call.effects
    assert any(isinstance(e, AddDoNotCall) and e.kind == "blacklist" for e in call.effects)
    assert call.outcome == Outcome("complaint")


def test_request_human_escalates() -> None:
    call = pitched()
    assert call.reply("request_human").lead == "end_transfer"
    assert Escalate("request_human") in call.effects
    assert call.outcome == Outcome("escalated")


def test_busy_with_a_time_schedules_that_callback() -> None:
    call = Call(MARKETING)
    step = call.reply("busy_call_later", "明天下午三点再打")
    assert step.lead == "end_callback"
    [callback] = [e for e in call.effects if isinstance(e, ScheduleCallback)]
    assert callback.due_at == datetime(2026, 11, 24, 15, 0, tzinfo=NOW.tzinfo)
    assert step.slots["callback_time_text"] == "明天下午3点"


def test_busy_without_a_time_asks_for_one() -> None:
    call = Call(MARKETING)
    assert call.reply("busy_call_later", "在开会").question == "callback_time"
    call.reply("nlu_fallback", "后天上午吧")
    [callback] = [e for e in call.effects if isinstance(e, ScheduleCallback)]
    assert callback.due_at.day == 25 and callback.due_at.hour == 10


def test_identity_is_verified_by_id_digits_with_two_tries() -> None:
    script = Script("second_confirmation", verify_id=True)
    call = Call(script, check_id="1234")
    assert call.reply("affirm").question == "id_last4"
    assert call.reply("inform_digits", "五五五五").question == "id_retry"
    assert call.reply("inform_digits", "六六六六").lead == "end_verification_failed"
    assert call.outcome == Outcome("verification_failed")

    call = Call(script, check_id="1234")
    call.reply("affirm")
    assert not call.state.verified  # saying "yes" is not enough when the ID is checked
    assert call.key("1234").question == "permission_confirm"
    assert call.state.verified


def test_a_failed_identity_check_goes_to_a_person_where_the_campaign_says_so() -> None:
    script = Script("second_confirmation", verify_id=True, escalate_on_failed_verification=True)
    call = Call(script, check_id="1234")
    call.reply("affirm")
    call.reply("inform_digits", "五五五五")
    assert call.reply("inform_digits", "六六六六").lead == "end_transfer"
    assert Escalate("verification_failed") in call.effects
    assert call.outcome == Outcome("verification_failed")
    assert not call.state.verified

    refused = Call(script, check_id="1234")
    refused.reply("affirm")
    assert refused.reply("deny", "不想说").lead == "end_transfer"
    assert Escalate("verification_failed") in refused.effects


def test_without_id_check_the_holder_s_word_verifies() -> None:
    call = Call(Script("marketing"))
    call.reply("affirm", "是我")
    assert call.state.verified
    family = Call(Script("marketing"))
    family.reply("family_member", "我是他老婆")
    assert not family.state.verified
    family.reply("affirm", "我可以做主")
    assert family.state.verified


def test_second_confirmation_keep_cancel_undecided() -> None:
    script = Script("second_confirmation")

    def offered() -> Call:
        call = Call(script)
        call.reply("affirm")
        assert call.reply("affirm").lead == "pitch_keep"
        return call

    keep = offered()
    keep.reply("agree", "我同意")
    keep.reply("agree", "确认")
    assert keep.outcome == Outcome("consented", confirmation_result="keep") and keep.consents

    cancel = offered()
    cancel.key("2")
    assert cancel.outcome == Outcome("declined", "other", confirmation_result="cancel")

    undecided = offered()
    assert undecided.reply("undecided", "我再想想").lead == "end_undecided"
    assert undecided.outcome == Outcome("notified", confirmation_result="undecided")
    assert undecided.consents == []


@pytest.mark.parametrize("snapped, confidence", [(True, 0.45), (False, 0.108)])
def test_a_cancel_that_is_only_a_weak_guess_is_asked_again(snapped: bool,
                                                           confidence: float) -> None:
    # 确认了 heard as 取消 at ASR confidence 0.108 cancelled a trial the customer kept.
    call = Call(Script("second_confirmation"))
    call.reply("affirm")
    call.reply("affirm")
    call.reply("agree", "我同意")
    step = call.reply("deny", "取消", input_mode="speech", asr_confidence=confidence,
                      asr_snapped=snapped)
    assert step.lead == "sorry" and call.outcome is None
    call.key("1")
    assert call.outcome == Outcome("consented", confirmation_result="keep")


@pytest.mark.parametrize("heard", [
    {"input_mode": "speech", "asr_confidence": 0.38, "asr_snapped": False},  # said, unclear
    {"input_mode": "speech", "asr_confidence": 0.8, "asr_snapped": True},
])
def test_a_cancel_heard_with_more_stands(heard: dict) -> None:
    call = Call(Script("second_confirmation"))
    call.reply("affirm")
    call.reply("affirm")
    call.reply("deny", "不要了帮我退掉吧", **heard)
    assert call.outcome == Outcome("declined", "other", confirmation_result="cancel")


@pytest.mark.parametrize("intent", ["deny", "not_needed", "undecided"])
def test_a_refusal_of_permission_barely_heard_is_asked_again(intent: str) -> None:
    # An espeak-ng 转人工 came back as 不方便 at 0.289 (snapped) and ended the call at once.
    call = Call(Script("marketing"))
    call.reply("affirm", "是我")
    step = call.reply(intent, "不方便", input_mode="speech", asr_confidence=0.289,
                      asr_snapped=True)
    assert (step.lead, step.question, call.outcome) == ("sorry", "permission_marketing", None)
    plain = Call(Script("marketing"))
    plain.reply("affirm", "是我")
    plain.reply(intent, "不方便", input_mode="speech", asr_confidence=0.45, asr_snapped=True)
    assert plain.outcome is not None and plain.outcome.outcome == "declined"


def test_notification_read_repeated_and_acknowledged() -> None:
    call = Call(Script("notification"))
    step = call.reply("affirm", "是我")
    assert (step.lead, step.question) == ("notice", "notice_heard")
    assert call.reply("not_understand").lead == "sorry_notice"
    assert call.reply("ask_who").lead == "who"
    call.reply("affirm", "知道了")
    assert call.outcome == Outcome("notified")


def test_survey_scores_reason_and_open_answer() -> None:
    call = Call(SURVEY)
    call.reply("affirm")
    step = call.reply("affirm")
    assert step.question == "survey_question" and step.slots["survey_question"] == "满意吗？"
    assert call.reply("inform_score", "不满意").question == "survey_reason"
    assert call.reply("nlu_fallback", "师傅迟到了").question == "survey_question"
    assert call.key("4").question == "survey_open"
    call.reply("nlu_fallback", "希望网速快一点")
    answers = [e for e in call.effects if isinstance(e, SaveSurveyAnswer)]
    assert [(a.key, a.score, a.text) for a in answers] == [
        ("install", 2, None), ("install_reason", None, "师傅迟到了"), ("speed", 4, None),
        ("open", None, "希望网速快一点")]
    assert call.outcome == Outcome("survey_completed")


def test_survey_cut_short_is_partial() -> None:
    call = Call(SURVEY)
    call.reply("affirm")
    call.reply("affirm")
    call.reply("inform_score", "满意")
    call.reply("goodbye")
    assert call.outcome == Outcome("survey_partial")


def test_state_round_trips_through_the_slot() -> None:
    call = pitched()
    assert FlowState.from_slot(call.state.to_slot()) == call.state
    assert FlowState.from_slot(None) == FlowState()


def test_slot_stored_before_played_became_sent_is_read() -> None:
    """A call in progress across a deploy keeps the disclosures it was sent."""
    call = pitched()
    old = call.state.to_slot()
    old["played"] = old.pop("sent")
    assert FlowState.from_slot(old) == call.state
    assert call.state.sent and "played" not in call.state.to_slot()


def test_after_the_end_nothing_more_is_said() -> None:
    call = Call(MARKETING)
    call.reply("wrong_person")
    step = call.reply("affirm")
    assert (step.lead, step.question, step.effects) == ("nothing", "nothing", [])


def test_free_answer_that_looks_like_not_understand_is_still_the_answer() -> None:
    call = Call(SURVEY)
    call.reply("affirm")
    call.reply("affirm")
    call.reply("inform_score", "不满意")
    assert call.reply("not_understand", "网速太慢了").question == "survey_question"
    call.key("4")
    assert call.reply("not_understand", "你说什么").lead == "sorry"


@pytest.mark.parametrize("text, intent, outcome", [
    ("你们田间4打我要投诉", "busy_call_later", "complaint"),  # Whisper on 你们天天打我要投诉
    ("哎呀别再打了行不行", "nlu_fallback", "do_not_call"),
    ("拽我转人工啊", "not_understand", "escalated"),
])
def test_control_words_win_over_a_misread_intent(text: str, intent: str, outcome: str) -> None:
    call = Call(MARKETING)
    call.reply("affirm", "是我")
    call.reply(intent, text)
    assert call.outcome is not None and call.outcome.outcome == outcome


def test_the_classifiers_own_control_intent_stands() -> None:
    call = Call(MARKETING)
    call.reply("affirm", "是我")
    call.reply("do_not_call", "再打我就投诉")
    assert call.outcome == Outcome("do_not_call")


UNSURE = {"input_mode": "speech", "asr_confidence": 0.9, "asr_snapped": True}  # a hint guess


@pytest.mark.parametrize("heard", [
    {"input_mode": "speech", "asr_confidence": 0.9, "asr_snapped": True},
    {"input_mode": "speech", "asr_confidence": 0.5, "asr_snapped": False},
    {"input_mode": "speech", "asr_confidence": None},
])
def test_an_unclearly_heard_do_not_call_is_confirmed_first(heard: dict) -> None:
    call = pitched()
    step = call.reply("do_not_call", "别再打了", **heard)
    assert (step.question, call.outcome) == ("confirm_dnc", None)
    step = call.reply("affirm", "是的", input_mode="speech", asr_confidence=0.6)
    assert step.lead == "end_dnc"
    assert AddDoNotCall("do_not_call", "customer", "别再打了") in call.effects  # their words
    assert call.outcome == Outcome("do_not_call")


def test_a_clearly_heard_do_not_call_is_honoured_at_once() -> None:
    call = pitched()
    step = call.reply("do_not_call", "别再打了", input_mode="speech", asr_confidence=0.9)
    assert step.lead == "end_dnc"


def test_no_to_the_confirmation_goes_back_to_the_question() -> None:
    call = pitched()
    call.reply("do_not_call", "别再打了", **UNSURE)
    step = call.reply("deny", "不是")
    assert (step.lead, step.question) == ("go_on", "consent")
    assert call.state.stage == "offer" and call.outcome is None
    assert not [e for e in call.effects if isinstance(e, AddDoNotCall)]
    assert call.reply("agree", "我同意").question == "readback"  # the call goes on


def test_keyed_two_is_no_and_keyed_one_is_yes() -> None:
    call = Call(SURVEY)
    call.reply("affirm")
    call.reply("complain", "我要投诉", **UNSURE)
    assert call.state.stage == "confirm_control" and call.steps[-1].question == "confirm_complaint"
    assert call.key("2").question == "permission_survey"
    call.reply("complain", "我要投诉", **UNSURE)
    assert call.key("1").lead == "end_complaint"
    assert call.outcome == Outcome("complaint") and Escalate("complaint") in call.effects


@pytest.mark.parametrize("answer", ["silence_timeout", "do_not_call"])
def test_silence_or_the_request_again_honours_it(answer: str) -> None:
    call = pitched()
    call.reply("do_not_call", "别再打了", **UNSURE)
    assert call.reply(answer, "", **UNSURE).lead == "end_dnc"


def test_an_answer_that_is_neither_asks_once_more_then_the_request_stands() -> None:
    call = pitched()
    call.reply("do_not_call", "别再打了", **UNSURE)
    step = call.reply("not_understand", "你说什么")
    assert (step.lead, step.question) == ("sorry", "confirm_dnc")
    assert call.reply("asr_unclear").lead == "end_dnc"


def test_another_request_while_confirming_is_honoured() -> None:
    call = pitched()
    call.reply("do_not_call", "别再打了", **UNSURE)
    assert call.reply("request_human", "转人工").lead == "end_transfer"
    assert call.outcome == Outcome("escalated")


def test_hanging_up_while_asked_back_leaves_the_request_standing() -> None:
    call = pitched()
    call.reply("complain", "我要投诉", **UNSURE)
    assert call.reply("caller_hung_up").lead == "end_complaint"
    assert call.outcome == Outcome("complaint")


def test_hanging_up_elsewhere_leaves_the_outcome_to_the_channel() -> None:
    call = pitched()
    step = call.reply("caller_hung_up")
    assert (step.lead, step.question, step.effects) == ("nothing", "nothing", [])
    assert call.state.stage == "offer"


def test_a_clear_answer_to_the_call_while_confirming_is_a_no_and_is_taken() -> None:
    # 我在开车呢 heard as 我去开这盒呢 (complain, ASR 0.51) is asked back; what the customer
    # says next answers the call, not the question: no complaint, their callback is taken.
    call = Call(MARKETING)
    call.reply("complain", "我去开这盒呢", input_mode="speech", asr_confidence=0.51)
    assert call.state.stage == "confirm_control"
    step = call.reply("busy_call_later", "你明天上午10点再打过来", input_mode="speech",
                      asr_confidence=0.82, intent_confidence=0.99)
    assert step.lead == "end_callback"
    assert not [e for e in call.effects if isinstance(e, AddDoNotCall | Escalate)]
    [callback] = [e for e in call.effects if isinstance(e, ScheduleCallback)]
    assert callback.due_at == datetime(2026, 11, 24, 10, 0, tzinfo=NOW.tzinfo)


def test_an_unclear_answer_to_the_call_while_confirming_keeps_the_question() -> None:
    call = Call(MARKETING)
    call.reply("complain", "我去开这盒呢", input_mode="speech", asr_confidence=0.51)
    step = call.reply("busy_call_later", "你明天上午10点再打过来", input_mode="speech",
                      asr_confidence=0.5)
    assert (step.lead, step.question) == ("sorry", "confirm_complaint")


@pytest.mark.parametrize("intent, text", [
    ("do_not_call", "不是，我没说别再打了"),  # the words of the request, said as a no
    ("nlu_fallback", "没有没有"),
])
def test_a_no_in_words_to_the_confirmation_is_a_no(intent: str, text: str) -> None:
    call = pitched()
    call.reply("do_not_call", "别再打了", **UNSURE)
    assert call.reply(intent, text).lead == "go_on"
    assert call.outcome is None


def test_the_campaign_settings_reach_the_script() -> None:
    defn = load_definition(REPO / "examples" / "campaigns" / "second_confirmation.yml")
    defn = defn.model_copy(update={
        "escalation": defn.escalation.model_copy(update={
            "escalate_on_failed_verification": True}),
        "understanding": defn.understanding.model_copy(update={
            "min_control_confidence": 0.55})})
    script = build_script(defn, can_verify_id=True)
    assert script.escalate_on_failed_verification
    assert script.min_control_confidence == 0.55
    assert not build_script(defn.model_copy(update={
        "escalation": defn.escalation.model_copy(update={
            "escalate_on_failed_verification": False})}),
        can_verify_id=True).escalate_on_failed_verification


def test_every_way_customers_ask_to_hear_it_again_is_known_at_the_offer() -> None:
    # The flow tells a request to repeat from nonsense by its words (HEAR_AGAIN_REQUEST):
    # each not_understand example of the NLU data must have one, a lone interjection aside.
    import yaml

    from actions.wording import HEAR_AGAIN_REQUEST

    examples = []
    for path in sorted((REPO / "data" / "nlu").glob("*.yml")):
        for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu", []):
            if block.get("intent") == "not_understand":
                examples += [line.strip()[2:] for line in block["examples"].splitlines()
                             if line.strip().startswith("- ")]
    assert len(examples) > 20
    unknown = [e for e in examples if len(e) > 1 and not HEAR_AGAIN_REQUEST.search(e)]
    assert unknown == []
