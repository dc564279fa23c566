"""An agent hands the call back to the bot to confirm the sale they closed
(actions/flowhandback.py): the same rules as the bot's own sale — the holder verified by
the bot, the approved script said in full, the read-back and an explicit confirmation — and
the consent is marked as closed by the agent."""

from __future__ import annotations

from actions.flow import Escalate, Outcome, Script
from actions.wording import LEADS
from tests.unit.test_flow import MARKETING, SURVEY, Call, pitched

ALL_DISCLOSURES = {"features", "price", "trial_end", "usage", "cancel"}


def escalated_after_pitch() -> Call:
    call = pitched()
    step = call.reply("request_human", "转人工")
    assert step.lead == "end_transfer" and Escalate("request_human") in step.effects
    return call


def test_after_the_pitch_the_bot_reads_back_and_an_explicit_yes_is_the_agents_sale() -> None:
    call = escalated_after_pitch()
    step = call.reply("agent_handback")
    assert (step.lead, step.question) == ("handback", "readback")
    assert step.responses == ["utter_handback", "utter_readback"]
    assert call.state.outcome is None and not call.state.ended  # action_ask must not pause
    step = call.reply("agree", "确认", input_mode="speech", asr_confidence=0.9,
                      intent_confidence=0.95)
    assert step.lead == "end_consent"
    [consent] = call.consents
    assert consent.closed_by_agent and consent.utterance == "确认"
    assert set(consent.disclosures) == ALL_DISCLOSURES
    assert call.outcome == Outcome("consented")


def test_keyed_one_confirms_the_agents_sale() -> None:
    call = escalated_after_pitch()
    call.reply("agent_handback")
    assert call.key("1").lead == "end_consent"
    [consent] = call.consents
    assert consent.closed_by_agent and consent.input_mode == "dtmf"


def test_a_weak_yes_is_no_consent_and_a_no_is_a_decline() -> None:
    call = escalated_after_pitch()
    call.reply("agent_handback")
    assert call.reply("affirm", "嗯").question == "explicit"
    step = call.reply("deny", "不要了")
    assert step.question == "decline_reason"
    assert call.outcome == Outcome("declined", "other")  # recorded at once: a no is a no
    call.reply("not_needed", "用不上")
    assert call.consents == [] and call.outcome == Outcome("declined", "not_needed")


def test_an_unclear_spoken_confirmation_must_be_keyed() -> None:
    call = escalated_after_pitch()
    call.reply("agent_handback")
    step = call.reply("agree", "确认", input_mode="speech", asr_confidence=0.4,
                      intent_confidence=0.95)
    assert step.question == "keyed_confirm" and call.consents == []
    assert call.key("1").lead == "end_consent"
    assert call.consents[0].closed_by_agent


def test_without_the_pitch_the_bot_says_the_approved_script_before_the_read_back() -> None:
    call = Call(MARKETING)
    call.reply("affirm", "是我")
    call.reply("request_human", "转人工")  # at the permission question: nothing pitched
    assert call.state.verified and not call.state.sent
    step = call.reply("agent_handback")
    assert (step.lead, step.question) == ("handback_pitch", "readback")
    assert step.responses[0] == "utter_handback" and "utter_disclose_price" in step.responses
    assert set(call.state.sent) == ALL_DISCLOSURES and call.state.pitched
    call.key("1")
    assert set(call.consents[0].disclosures) == ALL_DISCLOSURES


def test_a_holder_not_yet_verified_is_verified_by_the_bot_first() -> None:
    call = Call(MARKETING)
    call.reply("request_human", "转人工")  # at the identity question
    assert not call.state.verified
    step = call.reply("agent_handback")
    assert (step.lead, step.question) == ("handback", "identity")
    step = call.reply("affirm", "是我")  # verified: straight to the agent's sale
    assert step.question == "readback" and step.lead == "pitch"  # nothing was pitched yet
    assert call.key("1").lead == "end_consent"
    assert call.consents[0].closed_by_agent


def test_the_id_digits_are_asked_where_the_campaign_verifies_them() -> None:
    call = Call(Script("marketing", verify_id=True), check_id="1234")
    call.reply("request_human", "转人工")
    call.reply("agent_handback")
    assert call.reply("affirm", "是我").question == "id_last4"
    assert call.key("9999").question == "id_retry"
    assert call.key("1234").question == "readback"


def test_the_wrong_person_gets_no_read_back() -> None:
    call = Call(MARKETING)
    call.reply("request_human", "转人工")
    call.reply("agent_handback")
    step = call.reply("wrong_person", "他不在")
    assert step.lead == "end_wrong_person" and call.consents == []


def test_a_failed_verification_complaint_or_survey_is_refused() -> None:
    failed = Call(Script("marketing", verify_id=True, escalate_on_failed_verification=True),
                  check_id="1234")
    failed.reply("affirm", "是我")
    failed.key("0000")
    assert failed.key("0000").lead == "end_transfer"
    complaint = pitched()
    complaint.reply("complain", "我要投诉")
    survey = Call(SURVEY)
    survey.reply("affirm", "是我")
    survey.reply("request_human", "转人工")
    for call, outcome in ((failed, "verification_failed"), (complaint, "complaint"),
                          (survey, "escalated")):
        step = call.reply("agent_handback")
        assert step.lead == "end_handback_refused" and step.question == "nothing"
        assert call.state.ended and call.state.outcome == outcome
        assert call.consents == [] and call.outcome == Outcome(outcome)


def test_a_stray_hand_back_while_the_bot_has_the_call_asks_its_question_again() -> None:
    call = pitched()
    step = call.reply("agent_handback")
    assert (step.lead, step.question) == ("nothing", "consent") and not call.state.handed_back


def test_the_leads_say_the_handback_then_the_pitch() -> None:
    assert LEADS["handback_pitch"] == ("utter_handback", *LEADS["pitch"])
    assert LEADS["handback_pitch_keep"] == ("utter_handback", *LEADS["pitch_keep"])
