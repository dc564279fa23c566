"""The call flow: a pure state machine that enforces the call rules of DESIGN.md.

Rasa classifies what the customer said; this module decides what the bot does about it.
It knows nothing of Rasa, HTTP or the database: ``CallFlow`` takes the campaign ``Script``,
the call's ``FlowState`` and one ``Reply``, and returns a ``Step`` — a lead and a question
(named moves that Rasa rules turn into responses), slot values, and ``Effect`` records
that the action layer applies (actions/actions.py). Keeping the compliance rules here
makes them testable one by one; docs/architecture.md explains the split.

The machine is split by concern: actions/flowbase.py (the question of each stage, moving
between stages, the disclosures sent), actions/flowoffer.py (pitch, objections, read-back
and consent), and this module (identity, permission, notice, survey, and the requests
honoured at any stage).  The types are in actions/flowtypes.py and the response tables in
actions/wording.py; this module re-exports what callers use as ``flow.X``.
"""

from __future__ import annotations

from actions.flowbase import (
    DEFAULT_CALLBACK_DELAY,
    MAX_CONTROL_ASKS,
    MAX_ID_TRIES,
    MAX_OBJECTIONS,
    MAX_REPEATS,
    MAX_SILENCES,
    MAX_WEAK_AGREEMENTS,
    REASON_BY_INTENT,
)
from actions.flowcontrol import control_by_words
from actions.flowhandback import HandBack
from actions.flowtypes import (
    AddDoNotCall,
    CampaignType,
    Effect,
    Escalate,
    FlowState,
    InputMode,
    Outcome,
    RecordConsent,
    Reply,
    SaveSurveyAnswer,
    ScheduleCallback,
    Script,
    Step,
    SurveyQuestion,
)
from actions.wording import (
    DEFAULT_OPEN_QUESTION,
    DISCLOSURES,
    HEAR_AGAIN_REQUEST,
    LEADS,
    QUESTIONS,
    REPEAT_REQUEST,
    SCALE_HINTS,
)
from bot.textnorm import last4, parse_score
from bot.timeparse import parse_callback_time

__all__ = [
    # the machine
    "CallFlow",
    "PRODUCT_QUESTIONS",
    "MAX_CONTROL_ASKS",
    "MAX_ID_TRIES",
    "MAX_OBJECTIONS",
    "MAX_REPEATS",
    "MAX_SILENCES",
    "MAX_WEAK_AGREEMENTS",
    # actions/flowtypes.py
    "AddDoNotCall",
    "CampaignType",
    "Effect",
    "Escalate",
    "FlowState",
    "InputMode",
    "Outcome",
    "RecordConsent",
    "Reply",
    "SaveSurveyAnswer",
    "ScheduleCallback",
    "Script",
    "Step",
    "SurveyQuestion",
    # actions/wording.py
    "DEFAULT_OPEN_QUESTION",
    "DISCLOSURES",
    "LEADS",
    "QUESTIONS",
    "SCALE_HINTS",
]

PRODUCT_QUESTIONS = ("ask_price", "ask_cancel")
_FREE_TEXT_STAGES = {"survey_reason", "survey_open", "decline_reason", "callback_time"}
# Stages where the customer answers the offer: an answer the bot could not make out is not
# a request to hear the whole script again.
_ANSWER_TO_OFFER_STAGES = {"offer", "keep_offer", "final_confirm"}


def _asks_to_repeat(reply: Reply) -> bool:
    """In a free-text stage only the audio being unclear, or words that ask for a repeat,
    make the bot repeat: "网速太慢了" may look like "你说慢点" to NLU but is an answer."""
    return reply.intent == "asr_unclear" or (
        reply.intent == "not_understand" and bool(REPEAT_REQUEST.search(reply.text)))


def _no_answer_made_out(reply: Reply) -> bool:
    """An answer to the offer that neither the recogniser nor the classifier could place:
    audio too unclear to write down, or words that fit no intent (a hum such as 哦哦 or 嗯哼
    comes out of Whisper on the line as 员红 / 无乱, classified nlu_fallback, or as
    not_understand when the nonsense lies nearest a question).  The customer heard the
    offer and answered it with something that is no agreement; unless the words ask to
    hear it again, it is treated like the unheard answer (``_unheard_answer``)."""
    if reply.intent == "asr_unclear":
        return True
    return (reply.intent in ("nlu_fallback", "not_understand")
            and not HEAR_AGAIN_REQUEST.search(reply.text))


class CallFlow(HandBack):
    """Decides each step of one call. Create one per turn from the stored state."""

    def _is_a_request(self, control: str, reply: Reply) -> bool:
        """An answer to an open question (a survey's "any suggestions?", the reason for a
        no, a callback time) is the customer's own free words, which the classifier was not
        trained on: "希望你们把网速弄快点" came back as do_not_call at 0.84.  There a request
        counts only in its own words (转人工, 投诉, 别再打了)."""
        return (self.state.stage not in _FREE_TEXT_STAGES
                or control_by_words(reply.text) == control)

    # -- entry points -------------------------------------------------------------------

    def start(self) -> Step:
        self.state = FlowState()
        return self._prompt(Step(lead="greeting"))

    def handle(self, reply: Reply) -> Step:
        """The bot's answer to one customer turn (or call event)."""
        if reply.intent == "agent_handback":  # an agent gives the call back (flowhandback.py)
            return self._handed_back()
        if self.state.ended:
            return Step()
        self._forget_interrupted(reply.interrupted)
        if reply.intent != "silence_timeout":
            self.state.silences = 0
        intent = reply.intent
        if intent == "caller_hung_up":
            return self._caller_gone()
        if self.state.stage == "confirm_control":  # no control words: "不是，我没说别再打了"
            return self._on_confirm_control(reply)
        control = self._control_request(reply)
        if control is not None and self._is_a_request(control, reply):
            return self._act_on_control(control, reply)
        if intent in PRODUCT_QUESTIONS:
            self.state.product_questions += 1
        if intent == "silence_timeout":
            return self._silence()
        if self.state.stage in _FREE_TEXT_STAGES and not _asks_to_repeat(reply):
            return getattr(self, f"_on_{self.state.stage}")(reply)
        if intent == "busy_call_later":
            return self._callback(reply)
        if self.state.stage in _ANSWER_TO_OFFER_STAGES and _no_answer_made_out(reply):
            return self._unheard_answer()
        if intent in ("not_understand", "asr_unclear", "nlu_fallback"):
            return self._repeat()
        if intent == "ask_who":
            return self._prompt(Step(lead="who"))
        if intent == "goodbye":
            return self._goodbye()
        return getattr(self, f"_on_{self.state.stage}")(reply)

    # -- things that can happen at any stage --------------------------------------------

    def _goodbye(self) -> Step:
        return self._end_unfinished("end_goodbye", silent=False)

    def _callback(self, reply: Reply) -> Step:
        due = parse_callback_time(reply.text, self._now)
        if due is None:  # "call me later", and the time is asked; the request stands
            outcome = self._decide("callback_requested", said=reply.text)
            return self._goto("callback_time", Step(effects=[outcome]))
        return self._schedule_callback(due, reply.text)

    def _on_callback_time(self, reply: Reply) -> Step:
        due = parse_callback_time(reply.text, self._now)
        if due is None:  # no usable time: call back after the usual spacing
            due = self._now + DEFAULT_CALLBACK_DELAY
        said = (self.state.decision or {}).get("said") or ""
        return self._schedule_callback(due, f"{said} {reply.text}".strip())

    # -- identity ------------------------------------------------------------------------

    def _on_identity(self, reply: Reply) -> Step:
        if reply.intent in ("affirm", "agree"):
            return self._identified()
        if reply.intent == "family_member":
            self.state.family = True
            return self._goto("family_authority")
        if reply.intent in ("wrong_person", "deny"):
            return self._end("end_wrong_person", Outcome("wrong_person"))
        if reply.intent == "not_needed" and self.script.campaign_type == "marketing":
            return self._end("end_no_permission", Outcome("declined", "not_needed"))
        if reply.intent == "distrust":
            return self._objection("distrust", "who")
        return self._repeat()

    def _on_family_authority(self, reply: Reply) -> Step:
        if reply.intent in ("affirm", "agree"):
            return self._identified()
        if reply.intent in ("deny", "wrong_person", "not_needed", "undecided"):
            return self._end("end_family_no_authority", Outcome("wrong_person"))
        return self._repeat()

    def _identified(self) -> Step:
        """The listener said they are the holder (or a family member who may decide).  With
        ``verify_id`` that is verified only once the ID digits match; without, their word is
        the verification the campaign asks for."""
        if self.script.verify_id and not self.state.verified:
            return self._goto("verify_id")
        self.state.verified = True
        return self._begin_script()

    def _on_verify_id(self, reply: Reply) -> Step:
        digits = last4(reply.keyed or reply.entities.get("digits", "") or reply.text)
        if digits is None:
            if reply.intent in ("deny", "not_needed"):
                return self._verification_failed()
            return self._repeat()
        if self._check_id(digits):
            self.state.verified = True
            return self._begin_script()
        self.state.id_tries += 1
        if self.state.id_tries >= MAX_ID_TRIES:
            return self._verification_failed()
        return Step(question="id_retry")

    def _verification_failed(self) -> Step:
        """The identity check failed: the call ends politely, or, where the campaign's
        ``escalation.escalate_on_failed_verification`` says so, a person takes it (nothing
        of the account was said; the agent sees that verification failed)."""
        if self.script.escalate_on_failed_verification:
            return self._end("end_transfer", Outcome("verification_failed"),
                             Escalate("verification_failed"))
        return self._end("end_verification_failed", Outcome("verification_failed"))

    def _begin_script(self) -> Step:
        if self.state.handed_back:  # verified after an agent's hand-back: their sale
            return self._read_back_agents_sale()
        if self.script.campaign_type == "notification":
            return self._goto("notice")
        return self._goto("permission")

    def _on_permission(self, reply: Reply) -> Step:
        kind = self.script.campaign_type
        if reply.intent in ("affirm", "agree") or (
                reply.intent in ("ask_price", "ask_cancel") and kind != "survey"):
            if kind == "survey":
                return self._goto("survey_q" if self.script.survey else "survey_open")
            return self._start_pitch()
        refusals = ("deny", "undecided", "not_needed", "too_expensive")
        if reply.intent in refusals and self._barely_heard(reply):
            return self._repeat()  # a yes misheard as 不方便 must not end the call
        if reply.intent in ("deny", "undecided"):
            return self._end("end_no_permission", Outcome("declined", "other"))
        if reply.intent in ("not_needed", "too_expensive"):
            return self._end("end_no_permission",
                             Outcome("declined", REASON_BY_INTENT[reply.intent]))
        if reply.intent == "distrust":
            return self._objection("distrust", "who")
        return self._repeat()

    # -- notification --------------------------------------------------------------------

    def _on_notice(self, reply: Reply) -> Step:
        if reply.intent in ("affirm", "agree"):
            return self._end("end_notice", Outcome("notified"))
        if reply.intent == "deny":  # "没听清楚": read it again
            return self._repeat()
        if reply.intent in ("ask_price", "ask_cancel", "distrust", "undecided"):
            return Step(lead="notice_more_info", question="notice_heard")
        return self._repeat()

    # -- survey --------------------------------------------------------------------------

    def _on_survey_q(self, reply: Reply) -> Step:
        question = self.script.survey[self.state.survey_index]
        score = parse_score(reply.keyed or reply.entities.get("score", "") or reply.text)
        if score is None:
            return self._repeat()
        step = Step(effects=[SaveSurveyAnswer(question.key, question.text, score=score)])
        self.state.answered.append(question.key)
        if score <= 2:
            return self._goto("survey_reason", step)
        return self._next_question(step)

    def _on_survey_reason(self, reply: Reply) -> Step:
        question = self.script.survey[self.state.survey_index]
        step = Step(effects=[SaveSurveyAnswer(f"{question.key}_reason",
                                              f"{question.text}（不满意原因）", text=reply.text)])
        return self._next_question(step)

    def _next_question(self, step: Step) -> Step:
        self.state.survey_index += 1
        if self.state.survey_index < len(self.script.survey):
            return self._goto("survey_q", step)
        return self._goto("survey_open", step)

    def _on_survey_open(self, reply: Reply) -> Step:
        self.state.answered.append("open")
        return self._end("end_survey", Outcome("survey_completed"),
                         SaveSurveyAnswer("open", self.script.open_question, text=reply.text))
