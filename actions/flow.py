"""The call flow: a pure state machine that enforces the call rules of DESIGN.md.

Rasa classifies what the customer said; this module decides what the bot does about it.
It knows nothing of Rasa, HTTP or the database: it takes the campaign ``Script``, the
call's ``FlowState`` and one ``Reply``, and returns a ``Step`` — the responses to say,
control payloads, slot values and ``Effect`` records that the action layer applies
(actions/actions.py). Keeping the compliance rules here makes them testable one by one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from bot.textnorm import last4, parse_score
from bot.timeparse import parse_callback_time, say_time

CampaignType = Literal["notification", "survey", "marketing", "second_confirmation"]

MAX_REPEATS = 2  # "没听清" → repeat at most twice, then end without a sale
MAX_SILENCES = 1  # /silence_timeout → reprompt once, then end
MAX_ID_TRIES = 2
MAX_WEAK_AGREEMENTS = 2  # "嗯"/"好" where an explicit "我同意" is needed
MAX_OBJECTIONS = 1  # answer an objection once; the second time it is the decline reason

# Which mandatory disclosures each response carries (rule 3, "approved script").
DISCLOSURES: dict[str, tuple[str, ...]] = {
    "utter_disclose_features": ("features",),
    "utter_disclose_price": ("price",),
    "utter_disclose_trial": ("trial_end", "price"),
    "utter_disclose_usage": ("usage",),
    "utter_disclose_cancel": ("cancel",),
    "utter_trial_reminder": ("trial_end", "price"),
}

HINTS = {
    "identity": ["是的", "是我", "不是", "你打错了", "我是他家人", "你是谁"],
    "yes_no": ["是的", "好的", "可以", "不是", "不用了", "不方便"],
    "consent": ["我同意", "确认", "不需要", "太贵了", "多少钱", "怎么取消", "你是谁"],
    "keep": ["我同意", "确认", "取消", "不需要", "我再考虑一下"],
    "score": ["一分", "二分", "三分", "四分", "五分", "满意", "一般", "不满意", "非常满意"],
    "digits": [],
    "free": [],
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
    input_mode: Literal["speech", "dtmf", "text"] = "text"
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
    resume_stage: str | None = None
    outcome: str | None = None

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
class Say:
    response: str

    @property
    def disclosures(self) -> tuple[str, ...]:
        return DISCLOSURES.get(self.response, ())


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
Message = Say | dict[str, Any]  # a response, or a control payload (`custom`)


@dataclass
class Step:
    messages: list[Message] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    slots: dict[str, Any] = field(default_factory=dict)
    pause: bool = False  # hand the conversation to a human (ConversationPaused)

    def say(self, *responses: str) -> Step:
        self.messages.extend(Say(r) for r in responses)
        return self

    def control(self, payload: dict[str, Any]) -> Step:
        self.messages.append(payload)
        return self


def listen(expect: str, hints: list[str], dtmf_max: int = 0, timeout_s: float = 6.0) -> dict:
    return {"listen": {"expect": expect, "hints": hints, "dtmf_max": dtmf_max,
                       "timeout_s": timeout_s}}


HANGUP = {"hangup": True}

# --- the flow -------------------------------------------------------------------------

_FREE_TEXT_STAGES = {"survey_reason", "survey_open", "decline_reason", "callback_time"}
_REASON_BY_INTENT = {"too_expensive": "too_expensive", "distrust": "distrust",
                     "not_needed": "not_needed"}


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
        step = Step().say("utter_greeting")
        return step.control(listen("yes_no", HINTS["identity"]))

    def handle(self, reply: Reply) -> Step:
        """The bot's answer to one customer turn (or call event)."""
        if self.state.ended:
            return Step().control(HANGUP)
        self._forget_interrupted(reply.interrupted)
        if reply.intent != "silence_timeout":
            self.state.silences = 0
        intent = reply.intent
        if intent in ("request_human", "complain"):
            return self._escalate(intent)
        if intent == "do_not_call":
            return self._do_not_call(reply)
        if intent == "silence_timeout":
            return self._silence()
        if self.state.stage in _FREE_TEXT_STAGES and intent not in ("not_understand", "asr_unclear"):
            return getattr(self, f"_on_{self.state.stage}")(reply)
        if intent == "busy_call_later":
            return self._callback(reply)
        if intent in ("not_understand", "asr_unclear", "nlu_fallback"):
            return self._repeat()
        if intent == "ask_who":
            return self._prompt(Step().say("utter_who_we_are"))
        if intent == "goodbye":
            return self._goodbye()
        return getattr(self, f"_on_{self.state.stage}")(reply)

    # -- asking the question of the current stage ----------------------------------------

    def _prompt(self, step: Step | None = None) -> Step:
        """Append the question of the current stage (again) to ``step``."""
        step = step or Step()
        stage = self.state.stage
        kind = self.script.campaign_type
        if stage == "identity":
            return step.say("utter_ask_identity").control(listen("yes_no", HINTS["identity"]))
        if stage == "family_authority":
            return step.say("utter_ask_family_authority").control(listen("yes_no", HINTS["yes_no"]))
        if stage == "verify_id":
            return step.say("utter_ask_id_last4").control(
                listen("digits", HINTS["digits"], dtmf_max=4, timeout_s=12))
        if stage == "permission":
            response = {"marketing": "utter_ask_permission_marketing",
                        "survey": "utter_ask_permission_survey",
                        "second_confirmation": "utter_ask_permission_confirm"}[kind]
            return step.say(response).control(listen("yes_no", HINTS["yes_no"]))
        if stage == "notice":
            return step.say("utter_notice", "utter_ask_notice_heard").control(
                listen("yes_no", HINTS["yes_no"]))
        if stage == "survey_q":
            question = self.script.survey[self.state.survey_index]
            step.slots.update(survey_question=question.text,
                              survey_scale_hint=SCALE_HINTS[question.scale])
            return step.say("utter_survey_question").control(
                listen("score", HINTS["score"], dtmf_max=1, timeout_s=8))
        if stage == "survey_reason":
            return step.say("utter_ask_survey_reason").control(listen("free", [], timeout_s=10))
        if stage == "survey_open":
            step.slots["survey_open_question"] = self.script.open_question
            return step.say("utter_survey_open").control(listen("free", [], timeout_s=10))
        if stage == "offer":
            return step.say("utter_ask_consent").control(
                listen("yes_no", HINTS["consent"], dtmf_max=1, timeout_s=8))
        if stage == "keep_offer":
            return step.say("utter_ask_keep").control(
                listen("yes_no", HINTS["keep"], dtmf_max=1, timeout_s=8))
        if stage == "final_confirm":
            response = "utter_readback_keep" if kind == "second_confirmation" else "utter_readback"
            return step.say(response).control(
                listen("yes_no", HINTS["consent"], dtmf_max=1, timeout_s=8))
        if stage == "keyed_confirm":
            return step.say("utter_ask_keyed_confirm").control(
                listen("digits", ["我同意", "确认"], dtmf_max=1, timeout_s=10))
        if stage == "decline_reason":
            return step.say("utter_ask_decline_reason").control(listen("free", [], timeout_s=8))
        if stage == "callback_time":
            return step.say("utter_ask_callback_time").control(listen("free", [], timeout_s=8))
        raise ValueError(f"no prompt for stage {stage!r}")

    def _goto(self, stage: str, step: Step | None = None) -> Step:
        self.state.stage = stage
        self.state.repeats = 0
        self.state.weak = 0
        return self._prompt(step)

    def _end(self, step: Step, outcome: Outcome, *, hangup: bool = True) -> Step:
        self.state.stage = "ended"
        self.state.outcome = outcome.outcome
        step.effects.append(outcome)
        return step.control(HANGUP) if hangup else step

    # -- things that can happen at any stage --------------------------------------------

    def _escalate(self, intent: str) -> Step:
        reason = "complaint" if intent == "complain" else "request_human"
        step = Step(pause=True)
        if reason == "complaint":
            step.say("utter_complaint_transfer")
            # A complaint puts the number on the blacklist at once (DESIGN.md, "Blacklist").
            step.effects.append(AddDoNotCall("blacklist", "complaint", "客户在通话中投诉"))
        else:
            step.say("utter_transfer")
        step.effects.append(Escalate(reason))
        step.control({"transfer": {"reason": reason}})
        return self._end(step, Outcome("complaint" if reason == "complaint" else "escalated"),
                         hangup=False)

    def _do_not_call(self, reply: Reply) -> Step:
        step = Step().say("utter_dnc_confirm")
        step.effects.append(AddDoNotCall("do_not_call", "customer", reply.text or "客户要求不再拨打"))
        return self._end(step, Outcome("do_not_call"))

    def _silence(self) -> Step:
        self.state.silences += 1
        if self.state.silences <= MAX_SILENCES:
            return self._prompt(Step().say("utter_still_there"))
        return self._end(Step().say("utter_bye_silence"), self._unfinished_outcome(silent=True))

    def _repeat(self) -> Step:
        self.state.repeats += 1
        if self.state.repeats > MAX_REPEATS:
            return self._end(Step().say("utter_bye_not_understood"),
                             self._unfinished_outcome(silent=True))
        step = Step().say("utter_sorry_repeat")
        if self.state.stage == "offer" or self.state.stage == "keep_offer":
            self._pitch(step)
        return self._prompt(step)

    def _goodbye(self) -> Step:
        return self._end(Step().say("utter_goodbye"), self._unfinished_outcome(silent=False))

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
            self.state.resume_stage = self.state.stage
            return self._goto("callback_time")
        return self._schedule_callback(due, reply.text)

    def _schedule_callback(self, due: datetime, said: str) -> Step:
        step = Step(slots={"callback_time_text": say_time(due, self._now)})
        step.say("utter_callback_confirm")
        step.effects.append(ScheduleCallback(due, said))
        return self._end(step, Outcome("callback_requested"))

    def _forget_interrupted(self, interrupted: tuple[str, ...]) -> None:
        if interrupted:
            self.state.played = [d for d in self.state.played if d not in interrupted]

    def _unexpected(self) -> Step:
        """A reply that does not answer the question: ask again (counts as a repeat)."""
        return self._repeat()

    # -- identity ------------------------------------------------------------------------

    def _on_identity(self, reply: Reply) -> Step:
        if reply.intent in ("affirm", "agree"):
            return self._identified()
        if reply.intent == "family_member":
            self.state.family = True
            return self._goto("family_authority")
        if reply.intent in ("wrong_person", "deny"):
            return self._end(Step().say("utter_wrong_person"), Outcome("wrong_person"))
        if reply.intent == "not_needed" and self.script.campaign_type == "marketing":
            return self._end(Step().say("utter_no_permission"), Outcome("declined", "not_needed"))
        if reply.intent == "distrust":
            return self._objection("distrust", Step().say("utter_who_we_are"))
        return self._unexpected()

    def _on_family_authority(self, reply: Reply) -> Step:
        if reply.intent in ("affirm", "agree"):
            return self._identified()
        if reply.intent in ("deny", "wrong_person", "not_needed", "undecided"):
            return self._end(Step().say("utter_family_no_authority"), Outcome("wrong_person"))
        return self._unexpected()

    def _identified(self) -> Step:
        if self.script.verify_id and not self.state.verified:
            return self._goto("verify_id")
        return self._begin_script()

    def _on_verify_id(self, reply: Reply) -> Step:
        digits = last4(reply.keyed or reply.entities.get("digits", "") or reply.text)
        if digits is None:
            if reply.intent in ("deny", "not_needed"):
                return self._end(Step().say("utter_verification_failed"),
                                 Outcome("verification_failed"))
            return self._unexpected()
        if self._check_id(digits):
            self.state.verified = True
            return self._begin_script()
        self.state.id_tries += 1
        if self.state.id_tries >= MAX_ID_TRIES:
            return self._end(Step().say("utter_verification_failed"),
                             Outcome("verification_failed"))
        return Step().say("utter_id_retry").control(
            listen("digits", HINTS["digits"], dtmf_max=4, timeout_s=12))

    def _begin_script(self) -> Step:
        if self.script.campaign_type == "notification":
            return self._goto("notice")
        return self._goto("permission")

    def _on_permission(self, reply: Reply) -> Step:
        kind = self.script.campaign_type
        if reply.intent in ("affirm", "agree") or (
                reply.intent in ("ask_price", "ask_cancel") and kind != "survey"):
            if kind == "survey":
                if not self.script.survey:
                    return self._goto("survey_open")
                return self._goto("survey_q")
            return self._start_pitch()
        if reply.intent in ("deny", "undecided"):
            return self._end(Step().say("utter_no_permission"), Outcome("declined", "other"))
        if reply.intent in ("not_needed", "too_expensive"):
            return self._end(Step().say("utter_no_permission"),
                             Outcome("declined", _REASON_BY_INTENT[reply.intent]))
        if reply.intent == "distrust":
            return self._objection("distrust", Step().say("utter_who_we_are"))
        return self._unexpected()

    # -- notification --------------------------------------------------------------------

    def _on_notice(self, reply: Reply) -> Step:
        if reply.intent in ("affirm", "agree"):
            return self._end(Step().say("utter_notice_bye"), Outcome("notified"))
        if reply.intent == "deny":  # "没听清楚": read it again
            return self._repeat()
        if reply.intent in ("ask_price", "ask_cancel", "distrust", "undecided"):
            step = Step().say("utter_notice_more_info", "utter_ask_notice_heard")
            return step.control(listen("yes_no", HINTS["yes_no"]))
        return self._unexpected()

    # -- survey --------------------------------------------------------------------------

    def _on_survey_q(self, reply: Reply) -> Step:
        question = self.script.survey[self.state.survey_index]
        score = parse_score(reply.keyed or reply.entities.get("score", "") or reply.text)
        if score is None:
            return self._unexpected()
        step = Step()
        step.effects.append(SaveSurveyAnswer(question.key, question.text, score=score))
        self.state.answered.append(question.key)
        if score <= 2:
            return self._goto("survey_reason", step)
        return self._next_question(step)

    def _on_survey_reason(self, reply: Reply) -> Step:
        question = self.script.survey[self.state.survey_index]
        step = Step()
        step.effects.append(SaveSurveyAnswer(f"{question.key}_reason",
                                             f"{question.text}（不满意原因）", text=reply.text))
        return self._next_question(step)

    def _next_question(self, step: Step) -> Step:
        self.state.survey_index += 1
        if self.state.survey_index < len(self.script.survey):
            return self._goto("survey_q", step)
        return self._goto("survey_open", step)

    def _on_survey_open(self, reply: Reply) -> Step:
        step = Step().say("utter_survey_thanks")
        step.effects.append(SaveSurveyAnswer("open", self.script.open_question,
                                             text=reply.text))
        self.state.answered.append("open")
        return self._end(step, Outcome("survey_completed"))

    # -- marketing and second confirmation -----------------------------------------------

    def _pitch(self, step: Step) -> Step:
        """The approved script with every mandatory disclosure (rule 3)."""
        if self.script.campaign_type == "second_confirmation":
            responses = ["utter_trial_reminder", "utter_disclose_features",
                         "utter_disclose_usage", "utter_disclose_cancel"]
        else:
            responses = ["utter_disclose_features", "utter_disclose_price"]
            if self.script.has_trial:
                responses.append("utter_disclose_trial")
            responses += ["utter_disclose_usage", "utter_disclose_cancel"]
        for response in responses:
            self._disclose(step, response)
        self.state.pitched = True
        return step

    def _disclose(self, step: Step, response: str) -> None:
        say = Say(response)
        step.messages.append(say)
        # The channel plays a disclosure in full even when the caller talks over it.
        step.control({"barge_in": False, "disclosure": list(say.disclosures)})
        self.state.played.extend(d for d in say.disclosures if d not in self.state.played)

    def _start_pitch(self) -> Step:
        stage = "keep_offer" if self.script.campaign_type == "second_confirmation" else "offer"
        self.state.stage = stage
        self.state.repeats = 0
        return self._prompt(self._pitch(Step()))

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
        if reply.intent in ("deny", "not_needed", "too_expensive", "distrust") or reply.keyed == "2":
            reason = _REASON_BY_INTENT.get(reply.intent, "other")
            return self._end(Step().say("utter_trial_cancelled"),
                             Outcome("declined", reason, confirmation_result="cancel"))
        if reply.intent == "ask_cancel":
            return self._prompt(self._disclosed(Step(), "utter_disclose_cancel"))
        if reply.intent == "ask_price":
            return self._prompt(self._disclosed(Step(), "utter_trial_reminder"))
        return self._unexpected()

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
        return self._unexpected()

    def _consent_is_clear(self, reply: Reply) -> bool:
        """Rule 4: only a keyed 1 or an explicit agreement heard with good confidence."""
        if reply.input_mode == "dtmf" or reply.intent == "dtmf":
            return reply.keyed == "1"
        if reply.intent != "agree" or reply.intent_confidence < self.script.min_intent_confidence:
            return False
        if reply.input_mode == "speech":
            return (reply.asr_confidence is not None and not reply.asr_snapped
                    and reply.asr_confidence >= self.script.min_asr_confidence)
        return True

    def _consent(self, reply: Reply) -> Step:
        missing = self.script.required_disclosures - set(self.state.played)
        if missing:  # a disclosure was cut off: say it again before the consent can count
            step = Step()
            for response, ids in DISCLOSURES.items():
                if missing & set(ids) and response != "utter_trial_reminder":
                    self._disclose(step, response)
            return self._goto("final_confirm", step)
        utterance = f"DTMF {reply.keyed}" if reply.keyed else reply.text
        step = Step()
        step.effects.append(RecordConsent(
            utterance=utterance,
            input_mode="dtmf" if reply.keyed else reply.input_mode,
            asr_confidence=None if reply.keyed else reply.asr_confidence,
            disclosures=tuple(sorted(self.state.played)),
        ))
        if self.script.campaign_type == "second_confirmation":
            step.say("utter_keep_done")
            return self._end(step, Outcome("consented", confirmation_result="keep"))
        step.say("utter_consent_done")
        return self._end(step, Outcome("consented"))

    def _weak_agreement(self) -> Step:
        self.state.weak += 1
        if self.state.weak > MAX_WEAK_AGREEMENTS:
            if self.script.campaign_type == "second_confirmation":
                return self._undecided()
            return self._end(Step().say("utter_decline_bye"), Outcome("declined", "other"))
        step = Step().say("utter_ask_explicit")
        return step.control(listen("yes_no", HINTS["consent"], dtmf_max=1, timeout_s=8))

    def _undecided(self) -> Step:
        return self._end(Step().say("utter_undecided_how_to_cancel"),
                         Outcome("notified", confirmation_result="undecided"))

    def _objection_or_decline(self, reply: Reply) -> Step:
        intent = reply.intent
        if intent == "ask_price":
            return self._prompt(self._disclosed(Step(), "utter_disclose_price"))
        if intent == "ask_cancel":
            return self._prompt(self._disclosed(Step(), "utter_disclose_cancel"))
        if intent == "too_expensive":
            return self._objection("too_expensive", Step().say("utter_objection_price"))
        if intent == "distrust":
            return self._objection("distrust", Step().say("utter_objection_distrust"))
        if intent == "not_needed":
            return self._decline("not_needed")
        if intent in ("deny", "undecided") or reply.keyed == "2":
            if intent == "undecided":
                return self._decline("other")
            self.state.stage = "decline_reason"
            return self._prompt()
        return self._unexpected()

    def _disclosed(self, step: Step, response: str) -> Step:
        self._disclose(step, response)
        return step

    def _objection(self, kind: str, answer: Step) -> Step:
        count = self.state.objections.get(kind, 0) + 1
        self.state.objections[kind] = count
        if count > MAX_OBJECTIONS:
            return self._decline(kind)
        return self._prompt(answer)

    def _decline(self, reason: str) -> Step:
        reason = reason if reason in ("distrust", "too_expensive", "not_needed") else "other"
        return self._end(Step().say("utter_decline_bye"), Outcome("declined", reason))

    def _on_decline_reason(self, reply: Reply) -> Step:
        return self._decline(_REASON_BY_INTENT.get(reply.intent, "other"))

    def _on_callback_time(self, reply: Reply) -> Step:
        due = parse_callback_time(reply.text, self._now)
        if due is None:  # no usable time: call back in two hours (the no-answer spacing)
            due = self._now + timedelta(hours=2)
        return self._schedule_callback(due, reply.text)
