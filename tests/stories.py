"""The conversation tests (tests/test_stories.yml) and the tools around them.

    python -m tests.stories   # rewrite tests/test_stories.yml from CONVERSATIONS

Each conversation is a campaign, a name, and the customer's turns as (what the phone ASR
returns, the intent it must be understood as). The file is checked twice:
- `rasa test --e2e --fail-on-prediction-errors` (NLU on the text, then Rasa's rules must say
  exactly the responses of each turn), and
- tests/unit/test_stories_flow.py replays the intents through the call flow
  (actions/flow.py), which must choose the same lead and question as written in the file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

STORIES_FILE = Path(__file__).resolve().parent / "test_stories.yml"

# entities: name -> value said as is, or name -> (span said, normalised value)
Turn = tuple[str, str] | tuple[str, str, dict[str, str | tuple[str, str]]]

CONVERSATIONS: list[tuple[str, str, list[Turn]]] = [
    # --- marketing --------------------------------------------------------------------
    ("marketing", "consent spoken then confirmed", [
        ("嗯是我", "affirm"), ("可以你说吧", "affirm"), ("好的我同意", "agree"),
        ("确认", "agree")]),
    ("marketing", "consent keyed", [
        ("是的", "affirm"), ("方便", "affirm"), ("/dtmf", "dtmf", {"digits": "1"}),
        ("/dtmf", "dtmf", {"digits": "1"})]),
    ("marketing", "price question then consent", [
        ("对是我", "affirm"), ("你说", "affirm"), ("那个多少钱一个月", "ask_price"),
        ("行那我同意开通", "agree"), ("我确认", "agree")]),
    ("marketing", "how to cancel then consent", [
        ("是我", "affirm"), ("可以", "affirm"), ("以后怎么取消啊", "ask_cancel"),
        ("我同意", "agree"), ("确认开通", "agree")]),
    ("marketing", "only en is never consent", [
        ("是我", "affirm"), ("嗯", "affirm"), ("嗯", "affirm"), ("嗯嗯", "affirm"),
        ("嗯", "affirm")]),
    ("marketing", "agrees then only en at confirmation", [
        ("是我", "affirm"), ("可以", "affirm"), ("我同意", "agree"), ("嗯", "affirm"),
        ("嗯", "affirm"), ("嗯", "affirm")]),
    ("marketing", "maybe later is no consent", [
        ("是我", "affirm"), ("说吧", "affirm"), ("再说吧", "undecided")]),
    ("marketing", "too expensive twice", [
        ("是我", "affirm"), ("你说", "affirm"), ("太贵了", "too_expensive"),
        ("还是太贵了", "too_expensive")]),
    ("marketing", "distrust twice", [
        ("是我", "affirm"), ("可以", "affirm"), ("你们是不是骗子", "distrust"),
        ("我不相信你们", "distrust")]),
    ("marketing", "not needed", [
        ("是我", "affirm"), ("方便", "affirm"), ("我不需要", "not_needed")]),
    ("marketing", "declines and gives a reason", [
        ("是我", "affirm"), ("好", "affirm"), ("不要", "deny"), ("太贵了", "too_expensive")]),
    ("marketing", "who is calling then consent", [
        ("你是谁啊", "ask_who"), ("哦是我", "affirm"), ("可以", "affirm"),
        ("我同意", "agree"), ("确认", "agree")]),
    ("marketing", "no permission to talk", [
        ("是我", "affirm"), ("不方便", "deny")]),
    ("marketing", "wrong person", [("你打错了", "wrong_person")]),
    # issue 16: the boundaries between refusals, and a yes that looks like a control request
    ("marketing", "no interest when asked who is speaking is a decline",
     [("没兴趣", "not_needed")]),
    ("marketing", "not convenient now is a call back", [
        ("是我", "affirm"), ("现在不方便", "busy_call_later"), ("后天下午", "nlu_fallback")]),
    ("marketing", "a bit expensive let me think is the price objection", [
        ("是我", "affirm"), ("可以你说", "affirm"), ("有点贵我考虑一下", "too_expensive"),
        ("我不感兴趣", "not_needed")]),
    ("marketing", "a yes heard as could I tell you goes on to the pitch", [
        ("是我", "affirm"), ("可以跟你说", "affirm"), ("好的我同意", "agree"), ("确定", "agree")]),
    ("marketing", "a friend answers", [("我是他朋友", "wrong_person")]),
    ("marketing", "family member who can decide", [
        ("我是他老婆", "family_member"), ("可以", "affirm"), ("可以", "affirm"),
        ("我同意", "agree"), ("/dtmf", "dtmf", {"digits": "1"})]),
    ("marketing", "family member who cannot decide", [
        ("我是他妈妈", "family_member"), ("不行", "deny")]),
    ("marketing", "not understood three times", [
        ("是我", "affirm"), ("可以", "affirm"), ("你说什么", "not_understand"),
        ("听不清", "not_understand"), ("再说一遍", "not_understand")]),
    ("marketing", "silent twice", [("/silence_timeout", "silence_timeout"),
                                   ("/silence_timeout", "silence_timeout")]),
    ("marketing", "asr could not hear then consent", [
        ("是我", "affirm"), ("/asr_unclear", "asr_unclear"), ("可以", "affirm"),
        ("我同意", "agree"), ("确认", "agree")]),
    ("marketing", "do not call during the pitch", [
        ("是我", "affirm"), ("可以", "affirm"), ("别再打了", "do_not_call")]),
    ("marketing", "request a human", [("是我", "affirm"), ("转人工", "request_human")]),
    ("marketing", "complaint", [("是我", "affirm"), ("我要投诉你们", "complain")]),
    ("marketing", "busy with a time", [("我在开车你明天上午十点再打", "busy_call_later")]),
    ("marketing", "busy then a time", [
        ("在开会呢晚点", "busy_call_later"), ("后天下午", "nlu_fallback")]),
    ("marketing", "goodbye after the pitch", [
        ("是我", "affirm"), ("可以", "affirm"), ("好了再见", "goodbye")]),
    # --- notification -----------------------------------------------------------------
    ("notification", "acknowledged", [("是我", "affirm"), ("好的知道了", "affirm")]),
    ("notification", "repeated on request", [
        ("对", "affirm"), ("没听清", "not_understand"), ("听清楚了", "affirm")]),
    ("notification", "who are you", [
        ("你哪位", "ask_who"), ("是我", "affirm"), ("明白了", "affirm")]),
    ("notification", "family member takes the notice", [
        ("我是他爸爸", "family_member"), ("可以", "affirm"), ("收到", "affirm")]),
    # --- survey -----------------------------------------------------------------------
    ("survey", "all questions answered", [
        ("是我", "affirm"), ("可以", "affirm"),
        ("满意", "inform_score", {"score": ("满意", "4")}),
        ("五分", "inform_score", {"score": ("五分", "5")}),
        ("给四分吧", "inform_score", {"score": ("四分", "4")}),
        ("没有了挺好的", "nlu_fallback")]),
    ("survey", "dissatisfied with a reason", [
        ("是的", "affirm"), ("你问吧", "affirm"),
        ("不满意", "inform_score", {"score": ("不满意", "2")}),
        ("师傅迟到了两个小时", "nlu_fallback"), ("/dtmf", "dtmf", {"digits": "3"}),
        ("二分", "inform_score", {"score": ("二分", "2")}), ("网速太慢了", "nlu_fallback"),
        ("希望提高网速", "nlu_fallback")]),
    ("survey", "no time for the survey", [("是我", "affirm"), ("不方便", "deny")]),
    # --- second confirmation ----------------------------------------------------------
    ("second_confirmation", "keeps the product", [
        ("是我", "affirm"), ("幺二三四", "inform_digits", {"digits": "幺二三四"}),
        ("可以", "affirm"), ("我同意", "agree"), ("确认", "agree")]),
    ("second_confirmation", "cancels by key", [
        ("是我", "affirm"), ("/dtmf", "dtmf", {"digits": "1234"}), ("方便", "affirm"),
        ("/dtmf", "dtmf", {"digits": "2"})]),
    ("second_confirmation", "cancels by saying cancel", [
        ("是我", "affirm"), ("一二三四", "inform_digits", {"digits": "一二三四"}),
        ("方便", "affirm"), ("嗯那帮我取消了吧", "deny")]),
    ("second_confirmation", "cancels not needed", [
        ("是我", "affirm"), ("一二三四", "inform_digits", {"digits": "一二三四"}),
        ("你说", "affirm"), ("不需要了", "not_needed")]),
    ("second_confirmation", "undecided is told how to cancel", [
        ("是我", "affirm"), ("一二三四", "inform_digits", {"digits": "一二三四"}),
        ("可以", "affirm"), ("我再考虑考虑", "undecided")]),
    ("second_confirmation", "wrong id twice", [
        ("是我", "affirm"), ("五五五五", "inform_digits", {"digits": "五五五五"}),
        ("六六六六", "inform_digits", {"digits": "六六六六"})]),
]

_ACTION_FOR = {"request_human": "action_escalate", "complain": "action_escalate",
               "do_not_call": "action_do_not_call"}


def action_for(intent: str) -> str:
    return _ACTION_FOR.get(intent, "action_dialogue")


def _move_lines(action: str, lead: str, question: str) -> list[str]:
    from actions.flow import LEADS, QUESTIONS

    lines = [f"      - action: {action}", "      - slot_was_set:", f"        - lead: {lead}"]
    lines += [f"      - action: {r}" for r in LEADS[lead]]
    lines += ["      - action: action_ask", "      - slot_was_set:",
              f"        - question: {question}"]
    if QUESTIONS[question]:
        lines.append(f"      - action: {QUESTIONS[question]}")
    return lines


def _user_lines(text: str, intent: str, entities: dict[str, Any]) -> list[str]:
    # Free answers (a reason, a time, an opinion) are whatever the customer says: their
    # classification does not matter to the flow, so the story gives only the intent.
    if text.startswith("/") or intent == "nlu_fallback":
        return [f"      - intent: {intent}"] + (
            ["        entities:"] + [f'        - {k}: "{v}"' for k, v in entities.items()]
            if entities else [])
    annotated = text
    for entity, value in entities.items():
        span, normalised = value if isinstance(value, tuple) else (value, value)
        label = (f"({entity})" if span == normalised else
                 json.dumps({"entity": entity, "value": normalised}, ensure_ascii=False))
        annotated = annotated.replace(span, f"[{span}]{label}", 1)
    return [f"      - user: |-\n          {annotated}", f"        intent: {intent}"]


def _values(entities: dict[str, Any]) -> dict[str, str]:
    return {k: v[1] if isinstance(v, tuple) else v for k, v in entities.items()}


def render() -> str:
    from tests.flow_replay import replay

    out = ["# GENERATED by `python -m tests.stories` (tests/stories.py); each turn's lead and",
           "# question come from the call flow. Run by `make test` with",
           "# rasa test --e2e --fail-on-prediction-errors, and replayed through the flow by",
           "# tests/unit/test_stories_flow.py.", 'version: "3.1"', "stories:"]
    for campaign, name, turns in CONVERSATIONS:
        moves = replay(campaign, [(t[1], t[0], _values(t[2]) if len(t) > 2 else {})
                                  for t in turns])
        out += [f"  - story: {campaign} - {name}", "    steps:",
                "      - intent: call_started"]
        out += _move_lines("action_start_call", *moves[0])
        for turn, (lead, question) in zip(turns, moves[1:], strict=True):
            text, intent = turn[0], turn[1]
            entities: dict[str, Any] = turn[2] if len(turn) > 2 else {}  # type: ignore[misc]
            out += _user_lines(text, intent, entities)
            out += _move_lines(action_for(intent), lead, question)
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    STORIES_FILE.write_text(render(), encoding="utf-8")
    sys.exit(0)
