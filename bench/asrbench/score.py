"""The figures of one engine under one condition.

- exact: the transcript as spoken (bench/tts.py's ``spoken``: simplified, no punctuation,
  digits as words, 幺 as 一) equals the reply as written;
- snap accuracy, over the replies that are in their question's list: what the engine gave
  the bot (``Transcript.text``, after snapping) is the phrase the reply means as written;
- meaning accuracy, over all replies: what the bot got equals what it would have got from
  the written reply (``interpret``: the phrase, the digits, the score or the text itself,
  compared as spoken);
- CER: character edits over reference characters of the raw transcript, both sides as
  bench/tts.py compares them (``bench.ttsbench.compare``: numbers by value);
- false snaps: a reply that is in no phrase of its list came out as one of them (not
  one the reply says within more words: 好的我同意 → 我同意 is what was said).  Those
  to a consent phrase and to a do-not-call phrase are counted apart: a consent or a
  do-not-call entry must never come from words the customer did not say;
- time per utterance: wall time of open + feed + finish, p50 and p95.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.asrbench.corpus import intended
from bench.tts import cer_counts, pct, spoken
from voice.asr.base import Hints
from voice.asr.snap import interpret, normalize

CONSENT_PHRASES = frozenset({"我同意", "确认", "我确认"})
DNC_PHRASES = frozenset({"别再打了"})
# At "您是说以后不要再给您打这类电话了，对吗？" a yes is the do-not-call entry.
DNC_CONFIRMATION = "utter_confirm_dnc"
YES_PHRASES = frozenset({"是的", "对", "嗯", "是"})


@dataclass(frozen=True)
class Heard:
    """One decode: the reply, its question and hints, and what the engine gave the bot."""

    reference: str
    question: str
    hints: Hints
    raw: str
    text: str
    unclear: bool
    seconds: float


def false_snap(heard: Heard) -> str | None:
    """``consent``, ``do_not_call`` or ``other`` when an out-of-list reply came out as one of
    the list's phrases (or a score); None otherwise."""
    hints = heard.hints
    if hints.expect not in ("yes_no", "score") or not hints.phrases:
        return None  # nothing to snap to
    if intended(heard.reference, hints) is not None:
        return None  # in the list: a wrong phrase there is a misrecognition, counted apart
    if hints.expect == "score" and interpret(heard.reference, hints).text:
        return None  # a score said in words of its own (给四分吧)
    listed = heard.text in hints.phrases or (hints.expect == "score" and heard.text.isdigit())
    if heard.unclear or not listed:
        return None
    if normalize(heard.text) in normalize(heard.reference):
        return None  # the customer said the phrase, inside more words (好的我同意 → 我同意)
    if heard.text in CONSENT_PHRASES:
        return "consent"
    if heard.text in DNC_PHRASES or (heard.question == DNC_CONFIRMATION
                                     and heard.text in YES_PHRASES):
        return "do_not_call"
    return "other"


def understood(heard: Heard) -> bool:
    """The bot got what the written reply would have given it (text compared as spoken:
    明天上午10点吧 is 明天上午十点吧)."""
    meant = interpret(heard.reference, heard.hints).text
    return not heard.unclear and (heard.text == meant or spoken(heard.text) == spoken(meant))


def cer(rows: list[Heard]) -> float:
    edits = chars = 0
    for row in rows:
        wrong, length = cer_counts(row.reference, row.raw)
        edits, chars = edits + wrong, chars + length
    return round(edits / chars, 4) if chars else 0.0


def summarise(rows: list[Heard]) -> dict[str, Any]:
    in_list = [r for r in rows if intended(r.reference, r.hints) is not None]
    snapped_right = [r for r in in_list if not r.unclear
                     and r.text == intended(r.reference, r.hints)]
    meant = [r for r in rows if understood(r)]
    kinds = [(r, false_snap(r)) for r in rows]
    false = [(r, kind) for r, kind in kinds if kind]
    out_of_list = [r for r in rows if r.hints.expect in ("yes_no", "score") and r.hints.phrases
                   and intended(r.reference, r.hints) is None]
    millis = [r.seconds * 1000 for r in rows]
    return {
        "utterances": len(rows),
        "exact_rate": _rate(sum(spoken(r.raw) == spoken(r.reference) for r in rows), len(rows)),
        "snap_accuracy": _rate(len(snapped_right), len(in_list)),
        "in_list": len(in_list),
        "meaning_accuracy": _rate(len(meant), len(rows)),
        "cer": cer(rows),
        "unclear": sum(r.unclear for r in rows),
        "false_snaps": {
            "out_of_list": len(out_of_list),
            "consent": sum(kind == "consent" for _, kind in false),
            "do_not_call": sum(kind == "do_not_call" for _, kind in false),
            "other": sum(kind == "other" for _, kind in false),
            "cases": [{"said": r.reference, "question": r.question, "heard": r.raw,
                       "snapped_to": r.text, "kind": kind} for r, kind in false],
        },
        "time_ms": {"p50": _ms(pct(millis, 0.5)), "p95": _ms(pct(millis, 0.95)),
                    "max": _ms(max(millis, default=0.0))},
    }


def _rate(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def _ms(value: float) -> float:
    return round(value, 1)
