"""Chinese text normalisation for short phone replies: digits, scores, yes/no hints.

Pure functions; the NLU entities are a help, these are the source of truth because the
ASR can return "幺三五七", "1357", "一 三 五 七" or "后四位是一三五七" for the same thing.
"""

from __future__ import annotations

import re

DIGIT_CHARS = {
    "零": "0",
    "〇": "0",
    "洞": "0",
    "0": "0",
    "一": "1",
    "幺": "1",
    "妖": "1",
    "腰": "1",
    "1": "1",
    "二": "2",
    "两": "2",
    "俩": "2",
    "2": "2",
    "三": "3",
    "3": "3",
    "四": "4",
    "4": "4",
    "五": "5",
    "5": "5",
    "六": "6",
    "6": "6",
    "七": "7",
    "拐": "7",
    "7": "7",
    "八": "8",
    "8": "8",
    "九": "9",
    "勾": "9",
    "9": "9",
    "叉": "X",
    "x": "X",
    "X": "X",
}
# Characters a recogniser writes for a digit said over a phone line (8 kHz, the last
# syllable often clipped): 四 as 字/子/次, 幺 as 摇/遥/姚, 七 as 齐, and the financial
# numerals.  Counted only where digits are asked for (`digits_in`); none of them is a word
# a customer says around their ID digits, and the digits still have to match.
_DIGIT_SOUNDS = {
    "摇": "1", "遥": "1", "姚": "1", "瑶": "1", "壹": "1", "贰": "2", "叁": "3",
    "字": "4", "子": "4", "次": "4", "肆": "4", "伍": "5", "陆": "6", "齐": "7", "柒": "7",
    "捌": "8", "玖": "9",
}
_DIGIT_WORDS = {**_DIGIT_SOUNDS, **DIGIT_CHARS}

# Satisfaction words, most specific first ("非常不满意" before "不满意" before "满意").
SCORE_WORDS: tuple[tuple[str, int], ...] = (
    ("非常不满意", 1),
    ("很不满意", 1),
    ("特别不满意", 1),
    ("极不满意", 1),
    ("太差", 1),
    ("特别差", 1),
    ("非常差", 1),
    ("很差", 1),
    ("不太满意", 2),
    ("不怎么满意", 2),
    ("不满意", 2),
    ("不怎么样", 2),
    ("不好", 2),
    ("非常满意", 5),
    ("十分满意", 5),
    ("很满意", 5),
    ("特别满意", 5),
    ("非常好", 5),
    ("比较满意", 4),
    ("还算满意", 4),
    ("满意", 4),
    ("挺好", 4),
    ("不错", 4),
    ("还可以", 4),
    ("一般", 3),
    ("还行", 3),
    ("凑合", 3),
    ("马马虎虎", 3),
    ("过得去", 3),
)
# 分 as a recogniser may write it on a phone line: 份 (the same syllable; 只能给两分 came
# back 只能给两份 and the score was lost).
# 分 as written, or as Whisper base hears it on the line: 份, and 人 (四分吧 as 四人吧).
_SCORE_NUMBER = re.compile(r"([1-5一二两三四五])\s*[分份人]")
_BARE_SCORE = re.compile(r"^\D*?([1-5一二两三四五])\D*$")


# Words that name the digits rather than say them: the 四 of 后四位 is not a digit of the
# answer (后四位一二三 heard with one digit short would otherwise pass as "4123").
# Also as misheard: 位 as 为 (后四为).
_DIGITS_NAMED = re.compile(r"(?:最?后|末|尾)[四4][位为](?:数字|数|号码|号)?|尾号|尾数|号码")


def digits_in(text: str) -> str:
    """All digit characters of ``text`` in order, Chinese digit words converted.

    >>> digits_in("后四位是幺三五七")
    '1357'
    """
    spoken = _DIGITS_NAMED.sub("", re.sub(r"\s+", "", text))
    return "".join(_DIGIT_WORDS[ch] for ch in spoken if ch in _DIGIT_WORDS)


def last4(text: str) -> str | None:
    """The last four digits said or keyed, if the reply holds at least four."""
    digits = digits_in(text)
    return digits[-4:] if len(digits) >= 4 else None


def parse_score(text: str) -> int | None:
    """A 1–5 score from "五分", "给4分", "满意", "非常不满意", "三"; None if there is none."""
    compact = re.sub(r"\s+", "", text)
    match = _SCORE_NUMBER.search(compact)
    if match:
        return int(digits_in(match.group(1)))
    for word, score in SCORE_WORDS:
        if word in compact:
            return score
    match = _BARE_SCORE.match(compact)
    if match and len(compact) <= 4:
        return int(digits_in(match.group(1)))
    return None
