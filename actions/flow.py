"""The call flow: a pure state machine that enforces the call rules of DESIGN.md.

Rasa classifies what the customer said; this module decides what the bot does about it.
It knows nothing of Rasa, HTTP or the database: it takes the campaign ``Script``, the
call's ``FlowState`` and one ``Reply``, and returns a ``Step`` — a lead and a question
(named moves that Rasa rules turn into responses), slot values, and ``Effect`` records
that the action layer applies (actions/actions.py). Keeping the compliance rules here
makes them testable one by one; docs/architecture.md explains the split.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from bot.textnorm import last4, parse_score
from bot.timeparse import parse_callback_time, say_time

CampaignType = Literal["notification", "survey", "marketing", "second_confirmation"]
InputMode = Literal["speech", "dtmf", "text"]

MAX_REPEATS = 2  # "没听清" → repeat at most twice, then end without a sale
MAX_SILENCES = 1  # /silence_timeout → reprompt once, then end
MAX_ID_TRIES = 2
MAX_WEAK_AGREEMENTS = 2  # "嗯"/"好" where an explicit "我同意" is needed
MAX_OBJECTIONS = 1  # answer an objection once; the second time it is the decline reason
MAX_CONTROL_ASKS = 2  # "您是说以后不要再打了吗？" at most twice, then the request stands

# What the bot says before its question ("lead") and the question itself. Rasa rules
# (data/rules/moves.yml, generated from these tables by `python -m actions.rulegen`) turn
# the `lead` and `question` slots that the actions set into these responses, so every
# response of domain.yml is said by Rasa itself. Control payloads live in the templates:
# `listen` on questions, `barge_in: false` on disclosures, `hangup`/`transfer` on endings.
_PITCH_MARKETING = ("utter_disclose_features", "utter_disclose_price", "utter_disclose_trial",
                    "utter_disclose_usage", "utter_disclose_cancel")
_PITCH_NO_TRIAL = ("utter_disclose_features", "utter_disclose_price", "utter_disclose_usage",
                   "utter_disclose_cancel")
_PITCH_KEEP = ("utter_trial_reminder", "utter_disclose_features", "utter_disclose_usage",
               "utter_disclose_cancel")
LEADS: dict[str, tuple[str, ...]] = {
    "nothing": (),
    "greeting": ("utter_greeting",),
    "sorry": ("utter_sorry_repeat",),
    "who": ("utter_who_we_are",),
    "still_there": ("utter_still_there",),
    "notice": ("utter_notice",),
    "sorry_notice": ("utter_sorry_repeat", "utter_notice"),
    "notice_more_info": ("utter_notice_more_info",),
    "pitch": _PITCH_MARKETING,
    "pitch_no_trial": _PITCH_NO_TRIAL,
    "pitch_keep": _PITCH_KEEP,
    "sorry_pitch": ("utter_sorry_repeat", *_PITCH_MARKETING),
    "sorry_pitch_no_trial": ("utter_sorry_repeat", *_PITCH_NO_TRIAL),
    "sorry_pitch_keep": ("utter_sorry_repeat", *_PITCH_KEEP),
    "disclose_price": ("utter_disclose_price",),
    "disclose_cancel": ("utter_disclose_cancel",),
    "trial_reminder": ("utter_trial_reminder",),
    "objection_price": ("utter_objection_price",),
    "objection_distrust": ("utter_objection_distrust",),
    "go_on": ("utter_go_on",),
    # endings: the template carries {"hangup": true} or {"transfer": …}
    "end_wrong_person": ("utter_wrong_person",),
    "end_family_no_authority": ("utter_family_no_authority",),
    "end_verification_failed": ("utter_verification_failed",),
    "end_no_permission": ("utter_no_permission",),
    "end_notice": ("utter_notice_bye",),
    "end_consent": ("utter_consent_done",),
    "end_keep": ("utter_keep_done",),
    "end_decline": ("utter_decline_bye",),
    "end_trial_cancelled": ("utter_trial_cancelled",),
    "end_undecided": ("utter_undecided_how_to_cancel",),
    "end_survey": ("utter_survey_thanks",),
    "end_transfer": ("utter_transfer",),
    "end_complaint": ("utter_complaint_transfer",),
    "end_dnc": ("utter_dnc_confirm",),
    "end_callback": ("utter_callback_confirm",),
    "end_silence": ("utter_bye_silence",),
    "end_not_understood": ("utter_bye_not_understood",),
    "end_goodbye": ("utter_goodbye",),
}
QUESTIONS: dict[str, str | None] = {
    "nothing": None,
    "identity": "utter_ask_identity",
    "family_authority": "utter_ask_family_authority",
    "id_last4": "utter_ask_id_last4",
    "id_retry": "utter_id_retry",
    "permission_marketing": "utter_ask_permission_marketing",
    "permission_survey": "utter_ask_permission_survey",
    "permission_confirm": "utter_ask_permission_confirm",
    "notice_heard": "utter_ask_notice_heard",
    "survey_question": "utter_survey_question",
    "survey_reason": "utter_ask_survey_reason",
    "survey_open": "utter_survey_open",
    "consent": "utter_ask_consent",
    "explicit": "utter_ask_explicit",
    "keep": "utter_ask_keep",
    "readback": "utter_readback",
    "readback_keep": "utter_readback_keep",
    "keyed_confirm": "utter_ask_keyed_confirm",
    "decline_reason": "utter_ask_decline_reason",
    "callback_time": "utter_ask_callback_time",
    "confirm_dnc": "utter_confirm_dnc",
    "confirm_complaint": "utter_confirm_complaint",
}

# Which mandatory disclosures each response carries (rule 3, "approved script").
DISCLOSURES: dict[str, tuple[str, ...]] = {
    "utter_disclose_features": ("features",),
    "utter_disclose_price": ("price",),
    "utter_disclose_trial": ("trial_end", "price"),
    "utter_disclose_usage": ("usage",),
    "utter_disclose_cancel": ("cancel",),
    "utter_trial_reminder": ("trial_end", "price"),
}

SCALE_HINTS = {
    "score": "请用1到5分打分，5分表示非常满意。",
    "satisfaction": "请回答满意、一般或者不满意。",
}

DEFAULT_OPEN_QUESTION = "最后，您对我们还有什么意见或建议吗？"


# --- inputs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SurveyQuestion:
    key: str
    text: str
    scale: Literal["score", "satisfaction"] = "score"


@dataclass(frozen=True)
class Script:
    """What the campaign and the contact decide about this call's flow."""

    campaign_type: CampaignType
    verify_id: bool = False
    has_trial: bool = True
    survey: tuple[SurveyQuestion, ...] = ()
    open_question: str = DEFAULT_OPEN_QUESTION
    min_asr_confidence: float = 0.75
    min_intent_confidence: float = 0.8

    @property
    def required_disclosures(self) -> frozenset[str]:
        base = {"features", "price", "usage", "cancel"}
        return frozenset(base | {"trial_end"} if self.has_trial else base)


@dataclass(frozen=True)
class Reply:
    """One customer turn as Rasa understood it, with what the channel knows about it."""

    intent: str
    text: str = ""
    intent_confidence: float = 1.0
    entities: dict[str, str] = field(default_factory=dict)
    input_mode: InputMode = "text"
    asr_confidence: float | None = None
    asr_snapped: bool = False  # the ASR snapped the audio to a hint phrase
    interrupted: tuple[str, ...] = ()  # disclosure ids the channel could not play in full

    @property
    def keyed(self) -> str:
        return self.entities.get("digits", "") if self.intent == "dtmf" else ""


# --- state ----------------------------------------------------------------------------


@dataclass
class FlowState:
    """Everything the flow remembers between turns; stored in the `flow` slot as a dict."""

    stage: str = "identity"
    repeats: int = 0
    silences: int = 0
    weak: int = 0
    id_tries: int = 0
    objections: dict[str, int] = field(default_factory=dict)
    survey_index: int = 0
    answered: list[str] = field(default_factory=list)
    played: list[str] = field(default_factory=list)
    verified: bool = False
    family: bool = False
    pitched: bool = False
    product_questions: int = 0  # ask_price / ask_cancel turns, for intent grading
    outcome: str | None = None
    question: str = "nothing"  # asked by action_ask after the lead has been said
    # A do-not-call request or complaint heard unclearly, being confirmed back: the intent,
    # the customer's words, the stage to go back to if they say no, the times asked.
    pending_control: str | None = None
    pending_words: str = ""
    resume_stage: str = ""
    control_asks: int = 0

    @classmethod
    def from_slot(cls, value: Any) -> FlowState:
        if not isinstance(value, dict):
            return cls()
        known = {k: v for k, v in value.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def to_slot(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def ended(self) -> bool:
        return self.stage == "ended"


# --- outputs --------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    outcome: str
    decline_reason: str | None = None
    confirmation_result: str | None = None


@dataclass(frozen=True)
class RecordConsent:
    utterance: str
    input_mode: str
    asr_confidence: float | None
    disclosures: tuple[str, ...]


@dataclass(frozen=True)
class SaveSurveyAnswer:
    key: str
    question: str
    score: int | None = None
    text: str | None = None


@dataclass(frozen=True)
class AddDoNotCall:
    kind: Literal["do_not_call", "blacklist"]
    source: Literal["customer", "complaint"]
    reason: str


@dataclass(frozen=True)
class ScheduleCallback:
    due_at: datetime
    said: str


@dataclass(frozen=True)
class Escalate:
    reason: str


Effect = Outcome | RecordConsent | SaveSurveyAnswer | AddDoNotCall | ScheduleCallback | Escalate


@dataclass
class Step:
    """The bot's move for one turn: a lead, a question, slot values and effects."""

    lead: str = "nothing"
    question: str = "nothing"
    effects: list[Effect] = field(default_factory=list)
    slots: dict[str, Any] = field(default_factory=dict)

    @property
    def responses(self) -> list[str]:
        """The responses Rasa will say for this step, in order."""
        question = QUESTIONS[self.question]
        return [*LEADS[self.lead], *([question] if question else [])]


# --- the flow -------------------------------------------------------------------------

PRODUCT_QUESTIONS = ("ask_price", "ask_cancel")
_FREE_TEXT_STAGES = {"survey_reason", "survey_open", "decline_reason", "callback_time"}
# Stages where the customer answers the offer: an answer the bot could not make out is not
# a request to hear the whole script again.
_ANSWER_TO_OFFER_STAGES = {"offer", "keep_offer", "final_confirm"}
_REASON_BY_INTENT = {"too_expensive": "too_expensive", "distrust": "distrust",
                     "not_needed": "not_needed"}
# Words of a request to repeat ("你说什么", "再说一遍", "没听清", "说慢点").
_REPEAT_REQUEST = re.compile(r"什么|啥|再说|再讲|重复|没听|听不|不明白|没明白|慢点|大声")


def _asks_to_repeat(reply: Reply) -> bool:
    """In a free-text stage only the audio being unclear, or words that ask for a repeat,
    make the bot repeat: "网速太慢了" may look like "你说慢点" to NLU but is an answer."""
    return reply.intent == "asr_unclear" or (
        reply.intent == "not_understand" and bool(_REPEAT_REQUEST.search(reply.text)))


# Requests the bot must honour wherever they come and whatever the classifier made of the
# rest of the words: a noisy transcript ("你们田间4打我要投诉") was taken for busy_call_later,
# and a lost complaint or do-not-call request is a compliance failure.  First match wins;
# the classifier's own control intent is never overridden ("再打我就投诉" is do_not_call).
_CONTROL_INTENTS = frozenset({"request_human", "complain", "do_not_call"})
# The ones with lasting effects (the number is barred): confirmed back when heard unclearly.
_CONFIRMED_CONTROLS = frozenset({"complain", "do_not_call"})
_CONTROL_WORDS = (
    ("complain", re.compile(r"投诉|举报")),
    ("do_not_call", re.compile(r"别再打|不要再打|别打了|不要打了|别给我打|不要给我打")),
    ("request_human", re.compile(r"转人工|人工客服|人工服务")),
)


# A reply to "您是说…对吗？" that starts with a no is one, whatever words follow.
_SAYS_NO = re.compile(r"(?:不是|不对|没有|没说|我没|不不)")


def _control_by_words(text: str) -> str | None:
    return next((intent for intent, words in _CONTROL_WORDS if words.search(text)), None)


_PERMISSION_QUESTION = {"marketing": "permission_marketing", "survey": "permission_survey",
                        "second_confirmation": "permission_confirm"}


class Dialogue:
    """Decides each step of one call. Create one per turn from the stored state."""

    def __init__(self, script: Script, state: FlowState, *,
                 check_id: Callable[[str], bool] | None = None,
                 now: datetime | None = None) -> None:
        self.script = script
        self.state = state
        self._check_id = check_id or (lambda _digits: False)
        self._now = now or datetime.now().astimezone()

    # -- entry points -------------------------------------------------------------------

    def start(self) -> Step:
        self.state = FlowState()
        return self._prompt(Step(lead="greeting"))

    def handle(self, reply: Reply) -> Step:
        """The bot's answer to one customer turn (or call event)."""
        if self.state.ended:
            return Step()
        self._forget_interrupted(reply.interrupted)
        if reply.intent != "silence_timeout":
            self.state.silences = 0
        intent = reply.intent
        if intent == "caller_hung_up":
            return self._caller_gone()
        if self.state.stage == "confirm_control":  # no control words: "不是，我没说别再打了"
            return self._on_confirm_control(reply, intent)
        if intent not in _CONTROL_INTENTS and reply.input_mode != "dtmf":
            intent = _control_by_words(reply.text) or intent
        if intent in _CONFIRMED_CONTROLS and not self._heard_clearly(reply):
            return self._confirm_control(intent, reply.text)
        if intent in PRODUCT_QUESTIONS:
            self.state.product_questions += 1
        if intent in ("request_human", "complain"):
            return self._escalate(intent)
        if intent == "do_not_call":
            return self._do_not_call(reply)
        if intent == "silence_timeout":
            return self._silence()
        if self.state.stage in _FREE_TEXT_STAGES and not _asks_to_repeat(reply):
            return getattr(self, f"_on_{self.state.stage}")(reply)
        if intent == "busy_call_later":
            return self._callback(reply)
        if intent == "asr_unclear" and self.state.stage in _ANSWER_TO_OFFER_STAGES:
            return self._unheard_answer()
        if intent in ("not_understand", "asr_unclear", "nlu_fallback"):
            return self._repeat()
        if intent == "ask_who":
            return self._prompt(Step(lead="who"))
        if intent == "goodbye":
            return self._goodbye()
        return getattr(self, f"_on_{self.state.stage}")(reply)

    # -- asking the question of the current stage ----------------------------------------

    def _prompt(self, step: Step | None = None) -> Step:
        """Set ``step``'s question to the one of the current stage."""
        step = step or Step()
        stage = self.state.stage
        if stage == "identity":
            step.question = "identity"
        elif stage == "family_authority":
            step.question = "family_authority"
        elif stage == "verify_id":
            step.question = "id_last4"
        elif stage == "permission":
            step.question = _PERMISSION_QUESTION[self.script.campaign_type]
        elif stage == "notice":
            step.question = "notice_heard"
            if step.lead == "nothing":
                step.lead = "notice"
            elif step.lead == "sorry":
                step.lead = "sorry_notice"
        elif stage == "survey_q":
            question = self.script.survey[self.state.survey_index]
            step.slots.update(survey_question=question.text,
                              survey_scale_hint=SCALE_HINTS[question.scale])
            step.question = "survey_question"
        elif stage == "survey_open":
            step.slots["survey_open_question"] = self.script.open_question
            step.question = "survey_open"
        elif stage == "final_confirm":
            step.question = ("readback_keep" if self.script.campaign_type == "second_confirmation"
                             else "readback")
        elif stage == "keep_offer":
            step.question = "keep"
        elif stage == "offer":
            step.question = "consent"
        elif stage == "confirm_control":
            step.question = ("confirm_dnc" if self.state.pending_control == "do_not_call"
                             else "confirm_complaint")
        elif stage in ("survey_reason", "keyed_confirm", "decline_reason", "callback_time"):
            step.question = {"survey_reason": "survey_reason", "keyed_confirm": "keyed_confirm",
                             "decline_reason": "decline_reason",
                             "callback_time": "callback_time"}[stage]
        else:
            raise ValueError(f"no question for stage {stage!r}")
        return step

    def _goto(self, stage: str, step: Step | None = None) -> Step:
        self.state.stage = stage
        self.state.repeats = 0
        self.state.weak = 0
        return self._prompt(step)

    def _end(self, lead: str, outcome: Outcome, *effects: Effect, **slots: Any) -> Step:
        self.state.stage = "ended"
        self.state.outcome = outcome.outcome
        return Step(lead=lead, effects=[*effects, outcome], slots=slots)

    # -- things that can happen at any stage --------------------------------------------

    def _escalate(self, intent: str) -> Step:
        if intent == "complain":
            # A complaint puts the number on the blacklist at once (DESIGN.md, "Blacklist").
            step = self._end("end_complaint", Outcome("complaint"),
                             AddDoNotCall("blacklist", "complaint", "客户在通话中投诉"),
                             Escalate("complaint"))
        else:
            step = self._end("end_transfer", Outcome("escalated"), Escalate("request_human"))
        return step  # action_ask pauses the conversation once the transfer is announced

    def _do_not_call(self, reply: Reply) -> Step:
        return self._end("end_dnc", Outcome("do_not_call"),
                         AddDoNotCall("do_not_call", "customer",
                                      reply.text or "客户要求不再拨打"))

    def _heard_clearly(self, reply: Reply) -> bool:
        """Typed or keyed, or spoken and heard as the consent rule requires: unsnapped, with
        acoustic confidence of at least `min_asr_confidence`."""
        if reply.input_mode != "speech":
            return True
        return (reply.asr_confidence is not None and not reply.asr_snapped
                and reply.asr_confidence >= self.script.min_asr_confidence)

    def _confirm_control(self, intent: str, words: str) -> Step:
        """A do-not-call request or a complaint heard unclearly (a guess the ASR snapped to
        a hint, low confidence): both end the relationship, so ask back first."""
        self.state.pending_control, self.state.pending_words = intent, words
        self.state.resume_stage, self.state.control_asks = self.state.stage, 1
        self.state.stage = "confirm_control"
        return self._prompt()

    def _caller_gone(self) -> Step:
        """The caller hung up (after their last words, if any).  A request being confirmed
        back stands, as on silence; anything else is left to the channel's hang-up, which
        decides `hung_up_early` or `survey_partial`."""
        if self.state.stage == "confirm_control":
            return self._on_confirm_control(Reply("silence_timeout"), "silence_timeout")
        return Step()

    def _on_confirm_control(self, reply: Reply, intent: str) -> Step:
        """Only a clear no drops the request; yes, the request again, silence or a second
        answer that is neither honour it (when in doubt a do-not-call request stands)."""
        pending = self.state.pending_control or "do_not_call"
        if intent == "deny" or reply.keyed == "2" or _SAYS_NO.match(reply.text):
            self.state.stage = self.state.resume_stage or "identity"
            self.state.pending_control, self.state.pending_words = None, ""
            return self._prompt(Step(lead="go_on"))
        if intent in _CONTROL_INTENTS and intent != pending:
            pending = intent  # asked to confirm one request, the customer made another
        elif not (intent in ("affirm", "agree", "silence_timeout") or reply.keyed == "1"
                  or intent == pending or self.state.control_asks >= MAX_CONTROL_ASKS):
            self.state.control_asks += 1
            return self._prompt(Step(lead="sorry"))
        if pending == "do_not_call":
            return self._do_not_call(Reply("do_not_call", text=self.state.pending_words))
        return self._escalate(pending)

    def _silence(self) -> Step:
        self.state.silences += 1
        if self.state.silences <= MAX_SILENCES:
            return self._prompt(Step(lead="still_there"))
        return self._end("end_silence", self._unfinished_outcome(silent=True))

    def _repeat(self) -> Step:
        self.state.repeats += 1
        if self.state.repeats > MAX_REPEATS:
            return self._end("end_not_understood", self._unfinished_outcome(silent=True))
        if self.state.stage in ("offer", "keep_offer"):
            return self._prompt(self._pitch(sorry=True))
        return self._prompt(Step(lead="sorry"))

    def _goodbye(self) -> Step:
        return self._end("end_goodbye", self._unfinished_outcome(silent=False))

    def _unfinished_outcome(self, *, silent: bool) -> Outcome:
        """The outcome of a call that ends before its script did."""
        if self.state.answered:
            return Outcome("survey_partial")
        if self.state.stage == "notice" and not silent:
            return Outcome("notified")  # heard the notice and said goodbye
        if self.state.pitched and not silent:
            return Outcome("declined", "other")
        return Outcome("no_response" if silent else "hung_up_early")

    def _callback(self, reply: Reply) -> Step:
        due = parse_callback_time(reply.text, self._now)
        if due is None:
            return self._goto("callback_time")
        return self._schedule_callback(due, reply.text)

    def _schedule_callback(self, due: datetime, said: str) -> Step:
        return self._end("end_callback", Outcome("callback_requested"),
                         ScheduleCallback(due, said),
                         callback_time_text=say_time(due, self._now))

    def _forget_interrupted(self, interrupted: tuple[str, ...]) -> None:
        if interrupted:
            self.state.played = [d for d in self.state.played if d not in interrupted]

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
                return self._end("end_verification_failed", Outcome("verification_failed"))
            return self._repeat()
        if self._check_id(digits):
            self.state.verified = True
            return self._begin_script()
        self.state.id_tries += 1
        if self.state.id_tries >= MAX_ID_TRIES:
            return self._end("end_verification_failed", Outcome("verification_failed"))
        return Step(question="id_retry")

    def _begin_script(self) -> Step:
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
        if reply.intent in ("deny", "undecided"):
            return self._end("end_no_permission", Outcome("declined", "other"))
        if reply.intent in ("not_needed", "too_expensive"):
            return self._end("end_no_permission",
                             Outcome("declined", _REASON_BY_INTENT[reply.intent]))
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

    # -- marketing and second confirmation -----------------------------------------------

    def _pitch(self, *, sorry: bool = False) -> Step:
        """The approved script with every mandatory disclosure (rule 3)."""
        if self.script.campaign_type == "second_confirmation":
            lead = "pitch_keep"
        else:
            lead = "pitch" if self.script.has_trial else "pitch_no_trial"
        return self._disclosed(("sorry_" if sorry else "") + lead)

    def _disclosed(self, lead: str, step: Step | None = None) -> Step:
        """A step whose lead says disclosures; they count as played unless the channel
        reports them interrupted on the next turn."""
        step = step or Step()
        step.lead = lead
        for response in LEADS[lead]:
            self.state.played.extend(d for d in DISCLOSURES.get(response, ())
                                     if d not in self.state.played)
        if lead.removeprefix("sorry_").startswith("pitch"):
            self.state.pitched = True
        return step

    def _start_pitch(self) -> Step:
        stage = "keep_offer" if self.script.campaign_type == "second_confirmation" else "offer"
        self.state.stage = stage
        self.state.repeats = 0
        return self._prompt(self._pitch())

    def _on_offer(self, reply: Reply) -> Step:
        if reply.intent == "agree" or reply.keyed == "1":
            return self._goto("final_confirm")
        if reply.intent == "affirm":
            return self._weak_agreement()
        return self._objection_or_decline(reply)

    def _on_keep_offer(self, reply: Reply) -> Step:
        if reply.intent == "agree" or reply.keyed == "1":
            return self._goto("final_confirm")
        if reply.intent == "affirm":
            return self._weak_agreement()
        if reply.intent == "undecided":
            return self._undecided()
        refusals = ("deny", "not_needed", "too_expensive", "distrust")
        if reply.intent in refusals or reply.keyed == "2":
            return self._end("end_trial_cancelled",
                             Outcome("declined", _REASON_BY_INTENT.get(reply.intent, "other"),
                                     confirmation_result="cancel"))
        if reply.intent == "ask_cancel":
            return self._prompt(self._disclosed("disclose_cancel"))
        if reply.intent == "ask_price":
            return self._prompt(self._disclosed("trial_reminder"))
        return self._repeat()

    def _on_final_confirm(self, reply: Reply) -> Step:
        if reply.intent == "agree" or reply.keyed == "1":
            if not self._consent_is_clear(reply):
                return self._goto("keyed_confirm")
            return self._consent(reply)
        if reply.intent == "affirm":
            return self._weak_agreement()
        if self.script.campaign_type == "second_confirmation":
            return self._on_keep_offer(reply)
        return self._objection_or_decline(reply)

    def _on_keyed_confirm(self, reply: Reply) -> Step:
        if reply.keyed == "1" or (reply.intent == "agree" and self._consent_is_clear(reply)):
            return self._consent(reply)
        if reply.keyed == "2" or reply.intent in ("deny", "not_needed"):
            return self._decline(reply.intent)
        return self._repeat()

    def _consent_is_clear(self, reply: Reply) -> bool:
        """Rule 4: only a keyed 1 or an explicit agreement heard with good confidence."""
        if reply.input_mode == "dtmf" or reply.intent == "dtmf":
            return reply.keyed == "1"
        if reply.intent != "agree" or reply.intent_confidence < self.script.min_intent_confidence:
            return False
        return self._heard_clearly(reply)

    def _consent(self, reply: Reply) -> Step:
        if self.script.required_disclosures - set(self.state.played):
            # A disclosure was cut off: the whole script again before a consent can count.
            self.state.stage = "final_confirm"
            return self._prompt(self._pitch())
        consent = RecordConsent(
            utterance=f"DTMF {reply.keyed}" if reply.keyed else reply.text,
            input_mode="dtmf" if reply.keyed else reply.input_mode,
            asr_confidence=None if reply.keyed else reply.asr_confidence,
            disclosures=tuple(sorted(self.state.played)),
        )
        if self.script.campaign_type == "second_confirmation":
            return self._end("end_keep", Outcome("consented", confirmation_result="keep"),
                             consent)
        return self._end("end_consent", Outcome("consented"), consent)

    def _weak_agreement(self) -> Step:
        self.state.weak += 1
        if self.state.weak > MAX_WEAK_AGREEMENTS:
            if self.script.campaign_type == "second_confirmation":
                return self._undecided()
            return self._end("end_decline", Outcome("declined", "other"))
        return Step(question="explicit")

    def _unheard_answer(self) -> Step:
        """The customer answered the offer and the bot could not make it out (a lone 嗯 on
        the telephone is often too short and soft for the recogniser).  Whatever it was, it
        was no explicit agreement: ask for one, the way a weak yes is answered, and count it
        with them, so that a call of mumbles ends as a decline instead of replaying the
        script every turn."""
        step = self._weak_agreement()
        if step.question == "explicit":
            step.lead = "sorry"
        return step

    def _undecided(self) -> Step:
        return self._end("end_undecided", Outcome("notified", confirmation_result="undecided"))

    def _objection_or_decline(self, reply: Reply) -> Step:
        intent = reply.intent
        if intent == "ask_price":
            return self._prompt(self._disclosed("disclose_price"))
        if intent == "ask_cancel":
            return self._prompt(self._disclosed("disclose_cancel"))
        if intent == "too_expensive":
            return self._objection("too_expensive", "objection_price")
        if intent == "distrust":
            return self._objection("distrust", "objection_distrust")
        if intent == "not_needed":
            return self._decline("not_needed")
        if intent == "undecided":
            return self._decline("other")
        if intent == "deny" or reply.keyed == "2":
            self.state.stage = "decline_reason"
            return self._prompt()
        return self._repeat()

    def _objection(self, kind: str, lead: str) -> Step:
        count = self.state.objections.get(kind, 0) + 1
        self.state.objections[kind] = count
        if count > MAX_OBJECTIONS:
            return self._decline(kind)
        return self._prompt(Step(lead=lead))

    def _decline(self, reason: str) -> Step:
        reason = reason if reason in ("distrust", "too_expensive", "not_needed") else "other"
        return self._end("end_decline", Outcome("declined", reason))

    def _on_decline_reason(self, reply: Reply) -> Step:
        return self._decline(_REASON_BY_INTENT.get(reply.intent, "other"))

    def _on_callback_time(self, reply: Reply) -> Step:
        due = parse_callback_time(reply.text, self._now)
        if due is None:  # no usable time: call back in two hours (the no-answer spacing)
            due = self._now + timedelta(hours=2)
        return self._schedule_callback(due, reply.text)
