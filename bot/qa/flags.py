"""Automatic review flags (issue 15 item 4): moments of a call a QA reviewer should hear,
found in what the call recorded.  Pure functions over a `CallView` (built from the
database by bot/qa/callview.py), so each rule is tested on constructed calls.

Each flag has a kind, the moment it jumps to (ms from the answer) and a short label in
Chinese and English.  A flag is a place to listen, not a verdict: the reviewer decides.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from actions.wording import CONTROL_WORDS, DISCLOSURES, REPEAT_REQUEST
from bot.campaigns.compliance import in_window
from bot.campaigns.definition import CampaignDefinition

LONG_SILENCE_MS = 8000  # a gap between turns longer than this is flagged
REPEATED_NOT_UNDERSTOOD = 2  # a pitch after this many "没听清" in a row is flagged
# The voice channel's notes (voice/call/speaker.py): a disclosure the customer talked over
# is said again after a system turn with this text; an ordinary segment cut off by a
# barge-in is stored with this suffix.
TALKED_OVER_NOTE = "客户插话，重复声明"
CUT_OFF_SUFFIX = "（被打断）"
# The transcript writer's notes of the gateway's `disclosure.interrupted` (bot/transcript.py):
# a disclosure talked over again when repeated (the note follows its bot turn), or the
# disclosures of a reply never said because the customer cut in before them.  Each note
# names them in `Turn.unheard_disclosures`.
TALKED_OVER_TWICE_NOTE = "客户两次插话，声明未听全"
SKIPPED_NOTE = "客户打断，后面的声明未说"

PITCH_RESPONSES = frozenset({*DISCLOSURES, "utter_ask_consent", "utter_readback"})
IDENTITY_QUESTIONS = frozenset({"utter_ask_identity", "utter_ask_family_authority"})
PERMISSION_QUESTIONS = frozenset({"utter_ask_permission_marketing",
                                  "utter_ask_permission_confirm"})
SORRY_RESPONSES = frozenset({"utter_sorry_repeat"})
YES = frozenset({"affirm", "agree"})
# asking about the price or how to cancel when asked for a minute is consent to hear it
# (actions/flow.py, _on_permission)
PERMISSION_ANSWERS = YES | {"ask_price", "ask_cancel"}
# What the bot says or records when it acts on a complaint or a do-not-call request.
ACTED_RESPONSES = {"complain": frozenset({"utter_confirm_complaint", "utter_complaint_transfer",
                                          "utter_transfer"}),
                   "do_not_call": frozenset({"utter_confirm_dnc", "utter_dnc_confirm"})}
ACTED_OUTCOMES = {"complain": frozenset({"complaint", "escalated"}),
                  "do_not_call": frozenset({"do_not_call", "complaint"})}
ACTED_RECORDS = {"complain": "complaint", "do_not_call": "do_not_call"}

LABELS: dict[str, tuple[str, str]] = {
    "disclosure_cut_short": ("声明被打断", "disclosure cut short"),
    "disclosure_missing": ("缺少必要声明", "disclosure missing"),
    "consent_unclear": ("同意识别不可靠", "consent on an unclear utterance"),
    "pitch_before_right_person": ("未确认本人即推介", "pitch before the right person was "
                                  "confirmed"),
    "pitch_before_permission": ("未获许可即推介", "pitch before permission"),
    "pitch_after_not_understood": ("多次没听清后仍推介", "pitch after repeated 'not heard'"),
    "outside_window": ("非外呼时段", "call outside the calling window"),
    "control_word_ignored": ("投诉/勿扰未处理", "complaint or do-not-call not acted on"),
    "long_silence": ("长时间静默", "long silence"),
    "sale_without_consent": ("成交无同意记录", "sale recorded, no consent in the ledger"),
}


@dataclass(frozen=True)
class Turn:
    """One transcript turn; ``response``: the domain response a bot turn says (None when
    not recognised); ``asr_snapped`` None where the channel did not record it."""

    seq: int
    speaker: str  # bot | customer | system | agent
    text: str
    start_ms: int
    end_ms: int | None = None
    response: str | None = None
    intent: str | None = None
    input_mode: str | None = None
    asr_confidence: float | None = None
    asr_snapped: bool | None = None
    unheard_disclosures: tuple[str, ...] = ()  # a note of disclosures not heard in full

    def notes(self, note: str) -> bool:
        return self.speaker == "system" and self.text.startswith(note)


@dataclass(frozen=True)
class ConsentMark:
    """A consent in the ledger: where it is in the call and how it was heard."""

    start_ms: int
    input_mode: str | None
    asr_confidence: float | None
    disclosures: tuple[str, ...] = ()
    asr_snapped: bool | None = None


@dataclass(frozen=True)
class CallView:
    call_id: str
    started_at: datetime
    turns: tuple[Turn, ...]
    consents: tuple[ConsentMark, ...] = ()
    outcome: str | None = None
    required_disclosures: frozenset[str] = frozenset()
    min_asr_confidence: float = 0.75
    definition: CampaignDefinition | None = None  # its calling windows; None: not checked
    acted_on: frozenset[str] = frozenset()  # "complaint", "do_not_call": the records show it
    verified: bool | None = None
    dispositions: tuple[str, ...] = ()  # what the agents who took the call recorded


@dataclass(frozen=True)
class Flag:
    kind: str
    at_ms: int
    detail: str = ""

    @property
    def label_zh(self) -> str:
        return LABELS[self.kind][0]

    @property
    def label_en(self) -> str:
        return LABELS[self.kind][1]

    def as_json(self) -> dict[str, object]:
        return {"kind": self.kind, "at_ms": self.at_ms, "label_zh": self.label_zh,
                "label_en": self.label_en, "detail": self.detail}


def _cut_off(turn: Turn) -> bool:
    return turn.text.endswith(CUT_OFF_SUFFIX)


def disclosure_cut_short(call: CallView) -> Iterator[Flag]:
    for i, turn in enumerate(call.turns):
        if turn.notes(TALKED_OVER_NOTE):
            said = next((j for j in range(i + 1, len(call.turns))
                         if call.turns[j].speaker == "bot"), None)
            if said is not None and said + 1 < len(call.turns) \
                    and call.turns[said + 1].notes(TALKED_OVER_TWICE_NOTE):
                continue  # the repeat was talked over too: that note's flag says so
            what = (DISCLOSURES.get(call.turns[said].response or "", ())
                    if said is not None else ())
            yield Flag("disclosure_cut_short", turn.start_ms,
                       "talked over and repeated: " + (",".join(what) or "?"))
        elif turn.notes(TALKED_OVER_TWICE_NOTE):
            yield Flag("disclosure_cut_short", turn.start_ms,
                       "talked over twice: " + ",".join(turn.unheard_disclosures))
        elif turn.notes(SKIPPED_NOTE):
            yield Flag("disclosure_cut_short", turn.start_ms,
                       "never said after a barge-in: " + ",".join(turn.unheard_disclosures))
        elif turn.speaker == "bot" and turn.response in DISCLOSURES and _cut_off(turn):
            yield Flag("disclosure_cut_short", turn.start_ms,
                       "cut off: " + ",".join(DISCLOSURES[turn.response or ""]))


def _heard_in_full(call: CallView) -> set[str]:
    """The disclosures the bot said to their end and the customer did not talk over twice
    (a later full repeat counts again)."""
    heard: set[str] = set()
    for turn in call.turns:
        if turn.speaker == "bot" and not _cut_off(turn):
            heard.update(DISCLOSURES.get(turn.response or "", ()))
        elif turn.notes(TALKED_OVER_TWICE_NOTE):
            heard.difference_update(turn.unheard_disclosures)
    return heard


def disclosure_missing(call: CallView) -> Iterator[Flag]:
    """A consent without every mandatory disclosure said in full (or in its ledger entry)."""
    if not call.consents and call.outcome != "consented":
        return
    said = _heard_in_full(call)
    at = call.consents[0].start_ms if call.consents else _end_ms(call)
    if missing := sorted(call.required_disclosures - said):
        yield Flag("disclosure_missing", at, "not said: " + ",".join(missing))
    for consent in call.consents:
        if ledger_missing := sorted(call.required_disclosures - set(consent.disclosures)):
            yield Flag("disclosure_missing", consent.start_ms,
                       "not in the consent's ledger entry: " + ",".join(ledger_missing))


def consent_unclear(call: CallView) -> Iterator[Flag]:
    for consent in call.consents:
        if consent.input_mode != "speech":
            continue  # keyed or typed: nothing was recognised
        if consent.asr_snapped:
            yield Flag("consent_unclear", consent.start_ms, "snapped to a hint phrase")
        elif consent.asr_confidence is None or consent.asr_confidence < call.min_asr_confidence:
            yield Flag("consent_unclear", consent.start_ms,
                       f"ASR confidence {consent.asr_confidence} < {call.min_asr_confidence}")


def _answered_yes(call: CallView, questions: frozenset[str], answers: frozenset[str],
                  before: int) -> bool:
    """A customer turn among *answers* to the last bot question of *questions*, before
    turn index *before*."""
    asked = False
    for turn in call.turns[:before]:
        if turn.speaker == "bot" and turn.response is not None:
            asked = turn.response in questions
        elif turn.speaker == "customer" and asked and turn.intent in answers:
            return True
    return False


def pitch_before_consent_to_it(call: CallView) -> Iterator[Flag]:
    first = next((i for i, t in enumerate(call.turns)
                  if t.speaker == "bot" and t.response in PITCH_RESPONSES), None)
    if first is None:
        return
    at = call.turns[first].start_ms
    if call.verified is False or not _answered_yes(call, IDENTITY_QUESTIONS, YES, first):
        yield Flag("pitch_before_right_person", at,
                   "identity not verified" if call.verified is False
                   else "no yes to the identity question before the pitch")
    if not _answered_yes(call, PERMISSION_QUESTIONS, PERMISSION_ANSWERS, first):
        yield Flag("pitch_before_permission", at, "no yes to '方便占用您一分钟吗' before the pitch")


def _repeat_request(turn: Turn) -> bool:
    return turn.intent == "not_understand" or bool(REPEAT_REQUEST.search(turn.text))


def pitch_after_not_understood(call: CallView) -> Iterator[Flag]:
    """The bot's sorry prompts ("不好意思，我再说一遍") in a row, with no customer turn it
    understood between, then a pitch: the customer may not follow (rule 2)."""
    sorry = 0
    for turn in call.turns:
        if turn.speaker == "customer" and not _repeat_request(turn) \
                and turn.intent not in ("nlu_fallback", "not_understand"):
            sorry = 0
        elif turn.speaker == "bot" and turn.response in SORRY_RESPONSES:
            sorry += 1
        elif turn.speaker == "bot" and turn.response in PITCH_RESPONSES \
                and sorry >= REPEATED_NOT_UNDERSTOOD:
            yield Flag("pitch_after_not_understood", turn.start_ms,
                       f"after {sorry} sorry prompts in a row")
            return


def outside_window(call: CallView) -> Iterator[Flag]:
    if call.definition is not None and not in_window(call.definition, call.started_at):
        local = call.started_at.astimezone(call.definition.zone)
        yield Flag("outside_window", 0, f"answered {local:%a %H:%M} {call.definition.timezone}")


def control_word_ignored(call: CallView) -> Iterator[Flag]:
    for i, turn in enumerate(call.turns):
        if turn.speaker != "customer":
            continue
        kind = next((k for k, words in CONTROL_WORDS if words.search(turn.text)), None)
        if kind not in ACTED_RESPONSES:
            continue
        assert kind is not None
        acted = (ACTED_RECORDS[kind] in call.acted_on or call.outcome in ACTED_OUTCOMES[kind]
                 or any(t.speaker == "bot" and t.response in ACTED_RESPONSES[kind]
                        for t in call.turns[i + 1:]))
        if not acted:
            yield Flag("control_word_ignored", turn.start_ms, f"{kind}: {turn.text}")


def long_silence(call: CallView, limit_ms: int = LONG_SILENCE_MS) -> Iterator[Flag]:
    """Gaps between the end of what was said and the next turn (system notes are not
    speech)."""
    spoken = sorted((t for t in call.turns if t.speaker != "system"), key=lambda t: t.start_ms)
    heard_until: int | None = None
    for turn in spoken:
        if heard_until is not None and turn.start_ms - heard_until > limit_ms:
            yield Flag("long_silence", heard_until,
                       f"{(turn.start_ms - heard_until) / 1000:.1f} s")
        end = turn.end_ms if turn.end_ms is not None else turn.start_ms
        heard_until = end if heard_until is None else max(heard_until, end)


def sale_without_consent(call: CallView) -> Iterator[Flag]:
    """An agent recorded a sale but the ledger holds no consent for the call: the agent did
    not hand the call back for the bot's read-back, or the customer did not confirm it.
    The sale has no proof; the reviewer hears how the call ended."""
    if "sale" in call.dispositions and not call.consents:
        yield Flag("sale_without_consent", _end_ms(call),
                   "the agent recorded a sale; no consent in the ledger")


def _end_ms(call: CallView) -> int:
    return max((t.end_ms or t.start_ms for t in call.turns), default=0)


RULES: tuple[Callable[[CallView], Iterator[Flag]], ...] = (
    disclosure_cut_short, disclosure_missing, consent_unclear, pitch_before_consent_to_it,
    pitch_after_not_understood, outside_window, control_word_ignored, long_silence,
    sale_without_consent)


def flags(call: CallView) -> list[Flag]:
    """Every flag of the call, in the order of the call."""
    return sorted((f for rule in RULES for f in rule(call)), key=lambda f: (f.at_ms, f.kind))
