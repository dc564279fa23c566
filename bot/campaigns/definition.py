"""Campaign definition files (YAML): the schema, its validation and the script hash.

A campaign file alone is enough to run a new product, notice or survey: its wording reaches
the bot through slots (actions/context.py), never through edits of data/ or domain.yml.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot.yamlfile import read_yaml

CampaignType = Literal["notification", "survey", "marketing", "second_confirmation"]


class CampaignFileError(ValueError):
    """A campaign file that cannot be used, with every problem found in it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Script(_Strict):
    product: str | None = None
    price: str | None = Field(None, description="read as written, e.g. 每月5元")
    trial_days: int | None = Field(None, ge=1, le=365)
    trial_end: date | None = None
    cancel_method: str | None = None
    usage: str | None = None
    features: str | None = None
    notice_text: str | None = None
    deadline: date | None = None


class SurveyQuestion(_Strict):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,30}$")
    text: str = Field(min_length=2)
    scale: Literal["score", "satisfaction"] = "score"


class Survey(_Strict):
    questions: list[SurveyQuestion] = Field(min_length=2, max_length=5)
    open_question: str = "最后，您对我们还有什么意见或建议吗？"


class Consent(_Strict):
    min_asr_confidence: float = Field(0.75, ge=0, le=1)
    min_intent_confidence: float = Field(0.8, ge=0, le=1)


class Understanding(_Strict):
    """How sure the bot must be before it acts on a request that changes the call."""

    min_control_confidence: float = Field(
        0.7, ge=0, le=1, description="a request for a person, a complaint or a do-not-call "
        "request classified below this (and not said in so many words) is confirmed back "
        "before the bot acts on it")


# The bot's voices (voice/tts/voices.py).  Two of Kokoro's Mandarin voices, a female one by
# default and a male one; the virtual customers speak with zf_xiaobei (voice/tts/kokoro.py),
# a voice the bot never uses, so that a recording's two sides can be told apart.
KOKORO_VOICES: dict[str, str] = {"zf_xiaoyi": "female", "zm_yunxi": "male"}
DEFAULT_KOKORO_VOICE = "zf_xiaoyi"
ESPEAK_VOICES: dict[str, str] = {"cmn-latn-pinyin": "espeak-ng's Mandarin, read from pinyin"}
DEFAULT_ESPEAK_VOICE = "cmn-latn-pinyin"
VoiceEngine = Literal["kokoro", "espeak"]


class BotVoice(_Strict):
    """How the bot sounds.  Kokoro's neural Mandarin by default; espeak-ng (robotic, hard to
    understand) is the fallback the gateway uses when Kokoro is not prepared, and can be
    chosen here.  A recorded prompt (``<response>.wav``) wins over either."""

    engine: VoiceEngine = "kokoro"
    name: str = Field(DEFAULT_KOKORO_VOICE, description="kokoro: zf_xiaoyi (female, the "
                      "default) or zm_yunxi (male); espeak: cmn-latn-pinyin (its default)")
    speed: float = Field(1.0, ge=0.7, le=1.3, description="1.0 is the voice's own pace")

    @model_validator(mode="before")
    @classmethod
    def _engine_default(cls, data: Any) -> Any:
        """espeak without a name speaks its own default, not Kokoro's."""
        if isinstance(data, dict) and data.get("engine") == "espeak" and "name" not in data:
            return {**data, "name": DEFAULT_ESPEAK_VOICE}
        return data

    @field_validator("name")
    @classmethod
    def _known_name(cls, value: str, info: ValidationInfo) -> str:
        engine = info.data.get("engine")
        known = KOKORO_VOICES if engine == "kokoro" else ESPEAK_VOICES
        if engine is not None and value not in known:
            choices = " or ".join(f"{name} ({what})" for name, what in known.items())
            raise ValueError(f"no {engine} voice {value!r}: choose {choices}")
        return value


# --- the contact list and order templates ----------------------------------------------

StandardColumn = Literal["name", "gender", "age", "region", "id_last4"]
FieldType = Literal["text", "int", "date", "money"]
IDENT = r"^[a-z][a-z0-9_]{0,39}$"


class CustomField(_Strict):
    """A column kept per contact in ``Contact.fields`` (custom data or the order/product)."""

    key: str = Field(pattern=IDENT)
    header: str | None = Field(None, description="column header in the list; default: key")
    type: FieldType = "text"
    required: bool = False

    @property
    def headers(self) -> list[str]:
        return [self.header or self.key, self.key]


class ListTemplate(_Strict):
    """Which columns a contact list carries.  ``phone`` is always required; the standard
    columns are found under their usual Chinese or English headers
    (bot/campaigns/importer/columns.py) plus any listed in ``headers``; ID numbers are
    reduced to a salted hash of the last 4."""

    columns: list[StandardColumn] = ["name", "gender", "age", "region", "id_last4"]
    required: list[StandardColumn] = []
    headers: dict[str, list[str]] = Field(default_factory=dict,
                                          description="extra header names per standard column")
    custom: list[CustomField] = []

    @model_validator(mode="after")
    def _consistent(self) -> ListTemplate:
        unknown = [c for c in self.required if c not in self.columns]
        if unknown:
            raise ValueError(f"required column(s) {', '.join(unknown)} not in columns")
        bad = [k for k in self.headers if k not in (*self.columns, "phone")]
        if bad:
            raise ValueError(f"headers given for unknown column(s) {', '.join(bad)}")
        return self


# --- when and how often to dial ----------------------------------------------------------

_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
_DELAY = re.compile(r"^(\d+)\s*(m|h|d)$")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
RetryResult = Literal["busy", "no_answer", "rejected", "invalid_number", "suspended",
                      "powered_off", "failed", "no_response"]
DEFAULT_RETRY: dict[str, str] = {
    "busy": "30m", "no_answer": "2h", "rejected": "2h", "powered_off": "next_day",
    "suspended": "next_day", "invalid_number": "never", "failed": "30m", "no_response": "2h",
}


def parse_window(text: str) -> tuple[time, time]:
    """``"09:00-12:00"`` -> (09:00, 12:00); ``24:00`` means the end of the day."""
    m = _WINDOW.match(text.strip())
    if not m:
        raise ValueError(f"calling window {text!r} is not HH:MM-HH:MM")
    start = time(int(m[1]), int(m[2]))
    end = time.max if m[3] == "24" else time(int(m[3]), int(m[4]))
    if m[3] == "24" and m[4] != "00":
        raise ValueError(f"calling window {text!r} ends after 24:00")
    if end <= start:
        raise ValueError(f"calling window {text!r} ends before it starts")
    return start, end


def parse_delay(text: str) -> timedelta | Literal["next_day", "never"]:
    """``30m`` / ``2h`` / ``1d`` -> timedelta; ``next_day`` (first window of the next calling
    day) and ``never`` are kept as words."""
    text = text.strip()
    if text in ("next_day", "never"):
        return text  # type: ignore[return-value]
    m = _DELAY.match(text)
    if not m:
        raise ValueError(f"retry delay {text!r}: use 30m, 2h, 1d, next_day or never")
    unit = {"m": "minutes", "h": "hours", "d": "days"}[m[2]]
    return timedelta(**{unit: int(m[1])})


class Schedule(_Strict):
    """Calling windows in the campaign's time zone (default 09:00-12:00 and 14:00-20:00)."""

    windows: list[str] = Field(["09:00-12:00", "14:00-20:00"], min_length=1)
    weekdays: list[Weekday] = list(WEEKDAYS)
    start_date: date | None = None
    end_date: date | None = None

    @field_validator("windows")
    @classmethod
    def _windows(cls, value: list[str]) -> list[str]:
        spans = sorted(parse_window(w) for w in value)
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            if start < end:
                raise ValueError("calling windows overlap")
        return value

    @property
    def spans(self) -> list[tuple[time, time]]:
        return sorted(parse_window(w) for w in self.windows)


class Dialing(_Strict):
    """Retry policy per dial result, attempt cap, pacing and the cross-campaign cap."""

    max_attempts: int = Field(3, ge=1, le=10)
    retry: dict[RetryResult, str] = Field(default_factory=dict,
                                          description="overrides of DEFAULT_RETRY")
    concurrency: int = Field(10, ge=1, le=1000)
    priority: int = Field(0, description="higher campaigns are dialled first")
    caller_id: str | None = Field(None, pattern=r"^\+?\d{3,20}$")
    marketing_cap_days: int = Field(5, ge=0, le=90,
                                    description="one marketing call per number per N days")
    notify_lead_days: int = Field(2, ge=0, le=60,
                                  description="warn when a notification starts later than "
                                  "this many days before its deadline")

    @field_validator("retry")
    @classmethod
    def _retry(cls, value: dict[str, str]) -> dict[str, str]:
        for delay in value.values():
            parse_delay(delay)
        return value

    def retry_delay(self, result: str) -> timedelta | Literal["next_day", "never"]:
        """When to dial again after *result* (a dial result, or ``no_response``)."""
        overrides: dict[str, str] = {str(k): v for k, v in self.retry.items()}
        return parse_delay(overrides.get(result, DEFAULT_RETRY.get(result, "never")))


class Trunk(_Strict):
    """Where calls go: a SIP URI template (``{number}`` = the dialled number), with optional
    digest credentials.  The password is read from the environment variable named here."""

    uri: str = Field("sip:{number}@127.0.0.1:5060", pattern=r"^sips?:")
    username: str | None = None
    password_env: str | None = Field(None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    prefix: str = Field("", pattern=r"^\d*$", description="digits put before every number")

    def target(self, number: str) -> str:
        return self.uri.replace("{number}", self.prefix + number)


# --- intent grading ------------------------------------------------------------------------

Grade = Literal["A", "B", "C", "D"]
OutcomeName = Literal["consented", "declined", "notified", "survey_completed",
                      "survey_partial", "wrong_person", "verification_failed",
                      "callback_requested", "escalated", "complaint", "do_not_call",
                      "hung_up_early", "no_response"]


class GradeRule(_Strict):
    """A grade and the conditions (all must hold) under which an answered call gets it."""

    grade: Grade
    outcome: list[OutcomeName] | None = None
    product_questions_min: int | None = Field(None, ge=0)
    refused: bool | None = Field(None, description="declined, do-not-call or complaint")
    pitched: bool | None = None
    verified: bool | None = None


DEFAULT_GRADE_RULES = [
    GradeRule(grade="A", outcome=["consented"]),
    GradeRule(grade="A", product_questions_min=2, refused=False),
    GradeRule(grade="D", outcome=["declined", "do_not_call", "complaint", "hung_up_early",
                                  "wrong_person", "verification_failed"]),
    GradeRule(grade="B", outcome=["callback_requested", "escalated"]),
    GradeRule(grade="B", product_questions_min=1, refused=False),
]


class Grading(_Strict):
    """First matching rule wins; ``default`` when none matches (bot/campaigns/grading.py)."""

    rules: list[GradeRule] = Field(default_factory=lambda: list(DEFAULT_GRADE_RULES))
    default: Grade = "C"


class FollowUps(_Strict):
    """Calls generated automatically after this campaign's calls (bot/campaigns/followups.py)."""

    second_confirmation: str | None = Field(
        None, description="name of the second-confirmation campaign that re-confirms a trial "
        "sold here, before the trial ends")
    confirm_days_before_end: int = Field(3, ge=1, le=30)
    qa_followup: bool = Field(True, description="call back customers whose sale QA marks "
                              "non-compliant")


# --- the escalation desk ------------------------------------------------------------------

DistributionStrategy = Literal["equal_share", "equal_results", "weight"]


class Escalation(_Strict):
    """How a call the bot hands over reaches a person (bot/agents): who is offered it, how
    long each offer and the customer's wait may last, and the agents' after-call work.
    The defaults suit a bank's outbound desk: the customer did not call in, so the wait is
    short, and an offer that rings 20 s without an answer goes to the next agent."""

    strategy: DistributionStrategy = Field(
        "equal_share", description="equal_share: fewest offers today, then longest idle; "
        "equal_results: furthest below the team's outcome rate today; weight: in proportion "
        "to each agent's weight")
    offer_timeout_s: int = Field(20, ge=5, le=120, description="an offer not answered in "
                                 "this time goes to the next agent (the agent is set away)")
    wait_limit_s: int = Field(60, ge=10, le=600, description="nobody has taken the call by "
                              "then: the bot tells the customer and schedules a callback")
    wrap_up_max_s: int = Field(90, ge=0, le=1800, description="after-call work ends after "
                               "this at the latest; the agent is available again")
    service_level_s: int = Field(10, ge=1, le=120, description="an offer taken within this "
                                 "time counts towards the agent's service level")
    escalate_on_failed_verification: bool = Field(
        False, description="hand the call to a person when the customer fails the identity "
        "check (otherwise the call ends politely)")

    @model_validator(mode="after")
    def _consistent(self) -> Escalation:
        if self.wait_limit_s < self.offer_timeout_s:
            raise ValueError(f"wait_limit_s ({self.wait_limit_s}) is shorter than one offer "
                             f"(offer_timeout_s {self.offer_timeout_s}): no agent could ever "
                             "answer in time")
        if self.service_level_s > self.offer_timeout_s:
            raise ValueError(f"service_level_s ({self.service_level_s}) is longer than an "
                             f"offer rings (offer_timeout_s {self.offer_timeout_s}): every "
                             "offer taken would count as within it")
        return self


# --- QA sampling ----------------------------------------------------------------------------

QaAlwaysInclude = Literal["consent", "complaint", "escalated", "do_not_call"]


class ValidCall(_Strict):
    """What counts as a valid call for QA sampling: answered (a carrier announcement is no
    call: it leaves no call record), over and talked at least ``min_talk_s`` seconds, and
    not ended by one of ``exclude_outcomes`` (by default a system failure)."""

    min_talk_s: int = Field(10, ge=0, le=3600, description="seconds from the answer to "
                            "the end of the call")
    exclude_outcomes: list[OutcomeName | Literal["failed"]] = ["failed"]
    outcomes: list[OutcomeName] | None = Field(None, description="only calls with one of "
                                               "these outcomes count (default: any)")


class QaSampling(_Strict):
    """The QA samples (bot/qa/sampling.py): each day a random ``daily_rate`` of the
    previous day's valid calls, plus every call of an ``always_include`` kind, plus enough
    to give each agent who took a call ``min_per_agent``; each week another ``weekly_rate``
    of the week's valid calls not drawn on a day, for the supervisors.  Days are counted in
    the campaign's time zone; a rate is rounded up (a day with any valid call gives one)."""

    daily_rate: float = Field(0.10, ge=0, le=1)
    weekly_rate: float = Field(0.05, ge=0, le=1)
    always_include: list[QaAlwaysInclude] = Field(
        default_factory=list, description="consent, complaint, escalated, do_not_call: every "
        "such call of the day is in the daily sample")
    min_per_agent: int = Field(1, ge=0, le=100, description="calls in the daily sample for "
                               "each agent who took a valid call that day (as far as they "
                               "took that many)")
    valid_call: ValidCall = ValidCall()


# --- complaints -----------------------------------------------------------------------------

ComplaintBlacklist = Literal["immediately", "on_decision"]


class Complaints(_Strict):
    """What a complaint does to the customer's number (bot/qa/complaints.py).  Every
    complaint is recorded and handled (new -> contacted -> resolved); a supervisor decides
    whether it was serious enough to blacklist the number."""

    blacklist: ComplaintBlacklist = Field(
        "immediately", description="immediately: every complaint blacklists the number at "
        "once (a supervisor who decides it was not serious lifts it); on_decision: only a "
        "supervisor's decision that it was serious does")


class CampaignDefinition(_Strict):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[\w\-.]+$")
    type: CampaignType
    company: str
    hotline: str
    timezone: str = "Asia/Shanghai"
    verify_id: bool = False
    script: Script = Script()
    survey: Survey | None = None
    consent: Consent = Consent()
    understanding: Understanding = Understanding()
    voice: BotVoice = BotVoice()
    contacts: ListTemplate = ListTemplate()
    order: list[CustomField] = Field([], description="product/order fields of each contact")
    schedule: Schedule = Schedule()
    dialing: Dialing = Dialing()
    trunk: Trunk = Trunk()
    grading: Grading = Grading()
    follow_ups: FollowUps = FollowUps()
    escalation: Escalation = Escalation()
    qa: QaSampling = QaSampling()
    complaints: Complaints = Complaints()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Shanghai)") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def list_fields(self) -> list[CustomField]:
        """Custom and order fields together: everything that goes into ``Contact.fields``."""
        return [*self.contacts.custom, *self.order]

    @model_validator(mode="after")
    def _fields_for_type(self) -> CampaignDefinition:
        needed = {
            "notification": ["notice_text"],
            "survey": [],
            "marketing": ["product", "price", "cancel_method", "usage", "features"],
            "second_confirmation": ["product", "price", "cancel_method", "usage", "features"],
        }[self.type]
        missing = [f"script.{name}" for name in needed if not getattr(self.script, name)]
        if self.type == "survey" and self.survey is None:
            missing.append("survey.questions")
        if missing:
            raise ValueError(f"a {self.type} campaign needs {', '.join(missing)}")
        keys = [f.key for f in self.list_fields]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(f"field key(s) {', '.join(twice)} defined twice in contacts.custom"
                             " and order")
        return self

    @property
    def has_trial(self) -> bool:
        return bool(self.script.trial_days or self.script.trial_end)

    def wording_hash(self) -> str:
        """Identifies the campaign's own wording: changes whenever any script text changes.
        (The ledger's ``script_hash`` also covers the response templates the customer
        heard: ``actions.actions.approved_script_hash``.)"""
        body = self.model_dump(mode="json", include={"type", "company", "hotline", "script",
                                                     "survey"})
        return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def parse_definition(data: Any, source: str = "campaign") -> CampaignDefinition:
    """Validate a campaign dict; every problem is listed in one clear error."""
    if not isinstance(data, dict):
        raise CampaignFileError(f"{source}: expected a mapping of campaign settings")
    try:
        return CampaignDefinition.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(part) for part in err["loc"]) or "(top level)"
            lines.append(f"  {where}: {err['msg']}")
        raise CampaignFileError(f"{source} is not a valid campaign:\n" + "\n".join(lines)) from None


def load_definition(path: str | Path) -> CampaignDefinition:
    return parse_definition(read_yaml(path, CampaignFileError, "campaign file"), str(path))
