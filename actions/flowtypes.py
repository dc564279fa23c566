"""The types of the call flow: what goes in (Script, Reply), what it remembers between
turns (FlowState), and what comes out (a Step and its Effect records).

actions/flow.py decides; actions/actions.py turns a Step into Rasa events and applies its
effects.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from actions.wording import DEFAULT_OPEN_QUESTION, LEADS, QUESTIONS

CampaignType = Literal["notification", "survey", "marketing", "second_confirmation"]
InputMode = Literal["speech", "dtmf", "text"]


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
    min_control_confidence: float = 0.7  # a control request classified below it is asked back
    escalate_on_failed_verification: bool = False  # a failed identity check goes to a person

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
    before_question: bool = False  # begun before the bot's last words were heard

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
    sent: list[str] = field(default_factory=list)  # disclosures sent to be said, not yet heard
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
    # A decision the customer has made while the call goes on (a refusal before "方便说一下
    # 原因吗", "call me later" before the time): {"outcome", "reason", "said"}.  Whatever
    # follows (silence, a hang-up, a goodbye) the call ends with it; only a stronger request
    # (a complaint, do-not-call, a person) replaces it.
    decision: dict[str, Any] | None = None
    # An agent took the call and handed it back for the consent read-back
    # (actions/flowhandback.py): once the holder is verified the bot reads back, not pitches.
    handed_back: bool = False

    @classmethod
    def from_slot(cls, value: Any) -> FlowState:
        if not isinstance(value, dict):
            return cls()
        # A deep copy: the flow changes its counters and lists in place, and the stored
        # value (an ORM-loaded JSON column) must not change with them, or the write-back
        # compares equal to it and is never saved.
        value = copy.deepcopy(value)
        if "played" in value:  # stored before `played` became `sent`: a call across a deploy
            value.setdefault("sent", value.pop("played"))
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
    # The sale was closed by the agent who handed the call back; the bot confirmed it (the
    # action layer names the agent in the ledger entry).
    closed_by_agent: bool = False


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
