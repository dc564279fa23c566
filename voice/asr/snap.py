"""From an engine's raw words to what the bot may act on: normalise, then snap or extract.

Pure functions shared by every engine (FINDINGS.md, "ASR"):

- ``normalize``: traditional → simplified (Whisper often answers in traditional script),
  full-width → ASCII, punctuation and spaces removed, runs of a repeated clause collapsed
  (a short encoder window sometimes loops: "三分，三分，三分").
- ``snap``: the hint phrase nearest by toneless pinyin edit distance, normalised by the
  longer string; above ``threshold``, or more than one syllable in three away, there is no
  match.  Pinyin rather than characters,
  because the engine's errors are mostly homophones and near-homophones (是/事, 需/虚).
  A reply and a phrase that disagree on negation (不/没/别…) never match.
- ``interpret``: what one utterance means under the bot's ``Hints``: digits for
  ``digits``, "1".."5" for ``score``, the snapped phrase for ``yes_no`` with hints, the
  text itself for ``free``; ``unclear`` when nothing usable is left.

A snapped transcript is a guess steered by the prompt: ``Interpretation.distance`` says how
far it was, and the engines lower their confidence with it.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.textnorm import SCORE_WORDS, digits_in, parse_score
from voice.asr.base import Hints

SNAP_THRESHOLD = 0.4
"""Normalised pinyin distance above which a reply matches no hint (FINDINGS: 0 of 5
out-of-list phrases accepted at 0.4, 13 of 15 in-list phrases right)."""

_CLAUSE_SPLIT = re.compile(r"[\s,.;:!?，。；：！？、…·\"'“”‘’()（）\[\]【】<>《》~～-]+")
# Hanzi, ASCII letters and digits; Hangul too, for the Korean model that tests the Vosk engine.
_KEEP = re.compile(r"[^0-9A-Za-z\u3400-\u9fff\uac00-\ud7af]")
# A reply and a phrase that disagree on negation never snap together, however close they
# sound: "我不同意" is 0.41 from "好的我同意", and a consent must not come from a "不".
_NEGATIONS = frozenset("不没别甭勿")
# Sentence-final particles: they colour a reply without changing it ("转人工啊" is
# "转人工"), so they do not count as wrong syllables.  Not 吗, which makes a question.
_PARTICLES = "啊吧呢呀嘛哦啦哈喔"
# Hums and interjections before an answer (嗯是我本人, 哦那是我, 啊对): the same, at the start.
# Whisper keeps the 嗯 and then mishears a syllable of the answer (嗯是我本人啊 came back
# as 嗯是我的人啊): counted as a wrong syllable, the hum alone used up the one allowed.
_LEADING_HUMS = "嗯呃额哦噢啊诶欸哎"


@functools.cache
def _t2s() -> object:
    from opencc import OpenCC  # imported lazily: it reads its dictionaries on first use

    return OpenCC("t2s")


def to_simplified(text: str) -> str:
    converter = _t2s()
    return str(converter.convert(text))  # type: ignore[attr-defined]  # opencc has no stubs


def clauses(text: str) -> list[str]:
    """``text`` split at punctuation and spaces, consecutive repeats dropped."""
    out: list[str] = []
    for clause in _CLAUSE_SPLIT.split(text):
        if clause and (not out or out[-1] != clause):
            out.append(clause)
    return out


def normalize(text: str) -> str:
    """Simplified script, ASCII digits, no punctuation or spaces, repeats collapsed.

    >>> normalize("好的，我同意。")
    '好的我同意'
    """
    text = to_simplified(unicodedata.normalize("NFKC", text))
    return without_restart(_KEEP.sub("", "".join(clauses(loop_digit_as_break(text)))))


_LONE_DIGIT = re.compile(r"(?<=[\u3400-\u9fff])[0-9](?=[\u3400-\u9fff])")
_LOOP_OVERLAP = 3  # characters after the digit that must repeat earlier words
_DIGIT_WORDS = frozenset("零〇一二两三四五六七八九十幺")  # an ID said twice is not a loop of words


def loop_digit_as_break(text: str) -> str:
    """``text`` with a lone digit that joins a decoder loop to what it repeats read as a
    clause break.  Whisper base wrote 现在骗子这么多谁知道你们是真是假 as
    "…是真是假１现在骗子这么多…": the digit, not a comma, between the answer and its loop
    kept the loop (normalize drops repeated clauses) and put a digit in a refusal, which
    the classifier then took for inform_digits.  A digit said between words is left: what
    follows it repeats nothing (按1确认).

    >>> loop_digit_as_break("不用了1不用了"), loop_digit_as_break("我按1确认")
    ('不用了，不用了', '我按1确认')
    """
    out, last = [], 0
    for found in _LONE_DIGIT.finditer(text):
        after = text[found.end():found.end() + _LOOP_OVERLAP]
        if (len(after) == _LOOP_OVERLAP and after in text[:found.start()]
                and not any(ch in _DIGIT_WORDS for ch in after)):
            out += [text[last:found.start()], "，"]
            last = found.end()
    return "".join(out) + text[last:]


def without_restart(text: str) -> str:
    """``text`` without a decoder's loop at its end: Whisper, given a short answer and the
    rest of its window, often says it again ("是我呀是我呀", "不用了我已经有类似的了不用了",
    "对我就是我就是") until its token budget runs out.  A tail of two characters or more
    that repeats the text's start, or the characters right before it, is dropped.  Digit
    runs are left alone: an ID's last four may well repeat themselves (1212).

    >>> without_restart("你说的没事你说")
    '你说的没事'
    """
    for size in range(len(text) // 2, 1, -1):
        tail = text[-size:]
        if any(c.isdigit() for c in tail):
            continue
        doubled = text[-2 * size:-size] == tail
        # Two characters back at the start only after a longer answer: "同意我同意" is
        # 同意，我同意, not 同意我 and a loop.
        restarted = text.startswith(tail) and (size > 2 or len(text) - size >= 4)
        if doubled or restarted:
            return text[:-size]
    return text


# A hum before a short answer (嗯是我本人, 嗯对) comes out of Whisper on a phone line as 你
# (你是我本人, 你对本人, 你本人了): the nasal onset with nothing to anchor it.  Nobody says
# 你 to the caller right before 是我 / 我 / 对 / 本人, so there it is the hum; 你是谁,
# 你说, 你打错了 and the like keep their 你.
_HUM_HEARD_AS_NI = re.compile(r"^你(?=是我|我|对|本人|是本人)")


def without_hum(text: str) -> str:
    """A yes/no answer with the 你 Whisper writes for a leading hum given back as 嗯.

    >>> without_hum("你是我本人"), without_hum("你是谁")
    ('嗯是我本人', '你是谁')
    """
    return _HUM_HEARD_AS_NI.sub("嗯", text)


@functools.lru_cache(maxsize=4096)
def pinyin_key(text: str) -> str:
    """Toneless pinyin, syllables separated by one space: 是的我是 → "shi de wo shi"."""
    from pypinyin import Style, lazy_pinyin

    syllables = lazy_pinyin(normalize(text), style=Style.NORMAL, errors="default")
    return " ".join(s.strip().lower() for s in syllables if s.strip())


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance (insert, delete, substitute: cost 1 each), of characters or
    of any sequences (syllables)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def pinyin_distance(a: str, b: str) -> float:
    """0 (same reading) … 1 (nothing in common), by edit distance over toneless pinyin."""
    ka, kb = pinyin_key(a), pinyin_key(b)
    if not ka and not kb:
        return 0.0
    return edit_distance(ka, kb) / max(len(ka), len(kb))


def negates(text: str) -> bool:
    return any(ch in _NEGATIONS for ch in normalize(text))


@dataclass(frozen=True)
class Snap:
    phrase: str | None  # None: nothing within the threshold
    distance: float  # to the nearest phrase (1.0 when there are no phrases)
    nearest: str | None = None  # the nearest phrase even when it was too far


def strip_particles(text: str) -> str:
    """``text`` without the sentence-final particles at its end and the hums before it
    (unless that leaves nothing)."""
    text = normalize(text)
    return text.rstrip(_PARTICLES).lstrip(_LEADING_HUMS) or text


def syllable_edits(a: str, b: str) -> int:
    """Whole syllables inserted, deleted or replaced between the readings of ``a`` and ``b``,
    final particles and leading hums left out (Whisper heard 转人工 as 拽人拱啊: one wrong
    syllable, not two)."""
    return edit_distance(pinyin_key(strip_particles(a)).split(),
                         pinyin_key(strip_particles(b)).split())


def max_syllable_edits(phrase: str) -> int:
    """How many syllables a reply may get wrong and still be taken for ``phrase``: one per
    three (at least one).  The pinyin distance alone let a long shared opening carry a
    different ending: 我是他老婆 is 0.35 from 我是他朋友, two of five syllables apart."""
    return max(1, len(pinyin_key(phrase).split()) // 3)


def snap(text: str, phrases: Sequence[str], threshold: float = SNAP_THRESHOLD) -> Snap:
    """The phrase of ``phrases`` nearest to ``text``, if within ``threshold`` and no more
    than ``max_syllable_edits`` syllables away."""
    nearest: tuple[float, str] | None = None
    best: tuple[float, str] | None = None
    negated = negates(text)
    for phrase in phrases:
        distance = pinyin_distance(text, phrase)
        if negates(phrase) != negated:
            distance = 1.0
        if nearest is None or distance < nearest[0]:
            nearest = (distance, phrase)
        if (distance <= threshold and (best is None or distance < best[0])
                and syllable_edits(text, phrase) <= max_syllable_edits(phrase)):
            best = (distance, phrase)
    if nearest is None or not normalize(text):
        return Snap(None, 1.0, nearest[1] if nearest else None)
    if best is None:
        return Snap(None, nearest[0], nearest[1])
    return Snap(best[1], best[0], best[1])


# Sounds Whisper base mixes up on a phone line, as southern speakers do: the retroflex and
# dental sibilants, n/l, the front and back nasal finals (凑合 came back 抽合 / 抽和).
_FUZZY_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("l", "n"))
_FUZZY_FINALS = (("ang", "an"), ("eng", "en"), ("ing", "in"))
_HANZI_ONLY = re.compile(r"^[\u3400-\u9fff]+$")


def fuzzy_syllable(syllable: str) -> str:
    """A toneless syllable with the confusable initial and final merged: chou → cou."""
    for heard, merged in _FUZZY_INITIALS:
        if syllable.startswith(heard):
            syllable = merged + syllable[len(heard):]
            break
    for heard, merged in _FUZZY_FINALS:
        if syllable.endswith(heard):
            return syllable[: -len(heard)] + merged
    return syllable


def score_by_sound(text: str) -> int | None:
    """The score of a scale word (bot/textnorm's 凑合, 一般, 满意…) heard with those sounds
    mixed up, syllable for syllable: 抽合码就 → 凑合 → 3.  Only for a score question: a
    score is neither a consent nor a do-not-call request, and a scale word and what was
    heard must agree on negation (布满意 is neither 不满意 nor 满意: no score)."""
    text = normalize(text)
    if not _HANZI_ONLY.match(text):
        return None
    heard = [fuzzy_syllable(s) for s in pinyin_key(text).split()]
    if len(heard) != len(text):
        return None
    for word, score in SCORE_WORDS:
        wanted = [fuzzy_syllable(s) for s in pinyin_key(word).split()]
        if len(wanted) < 2:
            continue
        for i in range(len(heard) - len(wanted) + 1):
            if heard[i:i + len(wanted)] == wanted:
                # The table lists 不满意 before 满意: a 布满意 stops here, not at 满意 (4).
                return score if negates(text[i:i + len(wanted)]) == negates(word) else None
    return None


@dataclass(frozen=True)
class Interpretation:
    text: str  # what the bot gets ("" when unclear)
    normalized: str  # the engine's text after normalize()
    unclear: bool
    snapped: bool = False
    distance: float = 0.0  # snap distance (0 when not snapped)
    repaired: bool = False  # homophones put right (voice/asr/lexicon.py); snapped too


def interpret(raw: str, hints: Hints, threshold: float = SNAP_THRESHOLD,
              repair: Callable[[str], str] | None = None) -> Interpretation:
    """What an utterance means for the bot, given what the bot expected.  *repair* puts
    misheard customer phrases right in words that snap to no hint (the engines pass
    `voice.asr.lexicon.repair`); what it changed counts as snapped."""
    text = normalize(raw)
    if not text:
        return Interpretation("", "", unclear=True)
    if hints.expect == "digits":
        digits = digits_in(text)
        return Interpretation(digits, text, unclear=not digits)
    if hints.expect == "score":
        score = parse_score(text)
        if score is None and hints.phrases:
            near = snap(text, hints.phrases, threshold)
            if near.phrase is not None:
                # A scale word, or a request the bot listens for at every question (转人工).
                score = parse_score(near.phrase)
                return Interpretation(str(score) if score else near.phrase, text,
                                      unclear=False, snapped=near.phrase != text,
                                      distance=near.distance)
        if score is None and (by_sound := score_by_sound(text)) is not None:
            return Interpretation(str(by_sound), text, unclear=False, snapped=True)
        return Interpretation(str(score) if score else "", text, unclear=score is None)
    if hints.expect == "free" or not hints.phrases:
        return _repaired(text, text, repair)
    heard, text = text, without_hum(text)
    near = snap(text, hints.phrases, threshold)
    if near.phrase is None:
        # The hints bias the decoder; they are not the only answers a caller may give
        # ("方便" to "现在方便吗？").  Far from every hint, the words go through as heard
        # (misheard customer phrases put right), and the engine's acoustic confidence
        # decides whether they are usable.
        return _repaired(text, heard, repair)
    return Interpretation(near.phrase, heard, unclear=False, snapped=near.phrase != text,
                          distance=near.distance)


def _repaired(text: str, heard: str, repair: Callable[[str], str] | None) -> Interpretation:
    fixed = text if repair is None else repair(text)
    changed = fixed != text
    return Interpretation(fixed, heard, unclear=False, snapped=changed, repaired=changed)
