"""What the customers say, and what the gateway listens for when they say it.

A persona file lists its replies in order but not the question each answers (the dialogue
decides that at run time).  The bench finds it from the reply itself, without the audio:
the first reply answers the identity question every campaign opens with; each later one
answers the first question of its campaign type (``QUESTIONS``, in flow order from the last
one answered) whose hints it snaps to as written.  The side questions come only after the
reply that leads to them: a control phrase (别再打了, 转人工, 我要投诉) to its confirmation,
a relative (我是他爸爸) to whether they may decide.  A reply that fits no list (a free answer:
明天上午十点吧, 师傅迟到了两个小时) is heard with the campaign's global list: every phrase of
its questions plus the control phrases, ``yes_no`` — the hardest case for false snaps.

The hints are the gateway's: domain.yml's ``listen`` payload through ``Hints.from_listen``
and ``with_control(SessionConfig.control_phrases)``, as ``voice.session`` builds them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.asrbench import REPO
from bot.personas import load_personas
from bot.textnorm import digits_in, parse_score
from voice.asr.base import Hints
from voice.asr.snap import interpret, normalize
from voice.session import SessionConfig

CONTROL = SessionConfig().control_phrases  # asked for at any question
GLOBAL = "global"  # the question name of a reply whose question is not known

# The questions each campaign type asks, in flow order; then those asked anywhere.
QUESTIONS: dict[str, tuple[str, ...]] = {
    "marketing": ("utter_ask_identity", "utter_ask_family_authority",
                  "utter_ask_permission_marketing", "utter_ask_consent", "utter_ask_explicit",
                  "utter_readback", "utter_ask_keyed_confirm", "utter_ask_decline_reason",
                  "utter_ask_callback_time"),
    "notification": ("utter_ask_identity", "utter_ask_family_authority",
                     "utter_ask_notice_heard", "utter_ask_callback_time"),
    "second_confirmation": ("utter_ask_identity", "utter_ask_family_authority",
                            "utter_ask_id_last4", "utter_id_retry",
                            "utter_ask_permission_confirm", "utter_ask_keep",
                            "utter_readback_keep", "utter_ask_keyed_confirm",
                            "utter_ask_callback_time"),
    "survey": ("utter_ask_identity", "utter_ask_family_authority",
               "utter_ask_permission_survey", "utter_survey_question",
               "utter_ask_survey_reason", "utter_survey_open", "utter_ask_callback_time"),
}
ANYWHERE = ("utter_confirm_dnc", "utter_confirm_human", "utter_confirm_complaint")
FIRST = "utter_ask_identity"
FAMILY_CUE = "我是他"  # 我是他爸爸 at the identity question: may they decide for the customer?
# Asked only after a particular reply (below), never as the next step of the flow.
SIDE = (*ANYWHERE, "utter_ask_family_authority")
# A control phrase heard: the bot asks this next.
CONTROL_CONFIRMS = {"别再打了": "utter_confirm_dnc", "转人工": "utter_confirm_human",
                    "人工客服": "utter_confirm_human", "我要投诉": "utter_confirm_complaint"}


@dataclass(frozen=True)
class Question:
    name: str
    hints: Hints


@dataclass(frozen=True)
class Utterance:
    text: str  # as the persona file says it (what is synthesised)
    question: str  # the response it answers, or GLOBAL
    hints: Hints
    personas: tuple[str, ...]  # who says it there (campaign/persona id)

    @property
    def key(self) -> tuple[str, str]:
        return self.text, self.question


def listens(domain: Path = REPO / "domain.yml") -> dict[str, dict[str, Any]]:
    """Each response of the domain that listens → its ``listen`` payload."""
    data = yaml.safe_load(domain.read_text(encoding="utf-8"))
    out: dict[str, dict[str, Any]] = {}
    for name, variants in (data.get("responses") or {}).items():
        for variant in variants or []:
            listen = (variant.get("custom") or {}).get("listen")
            if listen:
                out[name] = dict(listen)
                break
    return out


def gateway_hints(listen: Mapping[str, Any],
                  control: tuple[str, ...] = CONTROL) -> Hints:
    """The hints a call listens with after the bot sent ``listen`` (voice.call.events)."""
    return Hints.from_listen(dict(listen)).with_control(control)


def campaign_questions(kind: str, payloads: Mapping[str, Mapping[str, Any]]
                       ) -> list[Question]:
    """The questions of campaign type ``kind`` in flow order, then those asked anywhere."""
    return [Question(name, gateway_hints(payloads[name]))
            for name in (*QUESTIONS[kind], *ANYWHERE) if name in payloads]


def global_hints(questions: Iterable[Question],
                 control: tuple[str, ...] = CONTROL) -> Hints:
    """Every listed phrase of the campaign's questions plus the control phrases."""
    phrases: list[str] = []
    for question in questions:
        phrases += [p for p in question.hints.phrases if p not in phrases]
    return Hints("yes_no", tuple(phrases)).with_control(control)


def fits(text: str, hints: Hints) -> bool:
    """``text`` as written is an answer this question's hints expect."""
    if hints.expect == "digits":
        return bool(digits_in(normalize(text)))
    if hints.expect == "score":
        return parse_score(normalize(text)) is not None or intended(text, hints) is not None
    if hints.expect == "yes_no":
        return intended(text, hints) is not None
    return False  # a free answer could answer anything


def intended(text: str, hints: Hints) -> str | None:
    """The hint phrase ``text`` means as written, or None (out of the list)."""
    if not hints.phrases or hints.expect not in ("yes_no", "score"):
        return None
    meaning = interpret(text, hints)
    return meaning.text if meaning.text in hints.phrases else None


def assign(says: Iterable[str], questions: list[Question]) -> list[tuple[str, Question | None]]:
    """Each reply of one persona with the question it answers (None: not known)."""
    flow = [q for q in questions if q.name not in SIDE]
    by_name = {q.name: q for q in questions}
    at = 0
    preferred: str | None = FIRST
    out: list[tuple[str, Question | None]] = []
    for n, text in enumerate(says):
        if n == 0 and FIRST in by_name:  # every campaign opens by asking who answered
            question: Question | None = by_name[FIRST]
        else:
            order = ([by_name[preferred]] if preferred in by_name else []) + flow[at:] + \
                flow[:at]
            question = next((q for q in order if fits(text, q.hints)), None)
        out.append((text, question))
        if question is not None and question in flow:
            at = flow.index(question) + 1
        phrase = intended(text, question.hints) if question else None
        preferred = CONTROL_CONFIRMS.get(phrase or "")
        if question is not None and question.name == FIRST and FAMILY_CUE in text:
            preferred = "utter_ask_family_authority"
    return out


def utterances(folders: Iterable[Path], payloads: Mapping[str, Mapping[str, Any]] | None = None
               ) -> list[Utterance]:
    """The spoken replies (``say`` and ``barge_in`` turns) of every persona in ``folders``
    (each named after its campaign type), one per reply text and question."""
    payloads = payloads if payloads is not None else listens()
    found: dict[tuple[str, str], Utterance] = {}
    for folder in folders:
        kind = folder.name
        questions = campaign_questions(kind, payloads)
        fallback = global_hints(questions)
        for persona in load_personas(folder):
            says = [str(t.value) for t in persona.turns if t.kind in ("say", "barge_in")]
            for text, question in assign(says, questions):
                name = question.name if question else f"{GLOBAL}:{kind}"
                hints = question.hints if question else fallback
                who = f"{kind}/{persona.id}"
                earlier = found.get((text, name))
                found[(text, name)] = Utterance(
                    text, name, hints, (*earlier.personas, who) if earlier else (who,))
    return list(found.values())
