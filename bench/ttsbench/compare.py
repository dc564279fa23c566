"""How a prompt and what the judge heard are compared: the same normalisation on both sides.

What does not count as an error, and why (each is a way of *writing* what was said, not a
different sound or value):

- script and form: traditional or simplified (opencc, through ``snap.normalize``), full-width
  or half-width (NFKC), upper or lower case;
- punctuation and spaces (Whisper's commas follow its own pauses, not the script's);
- how a number is written: Arabic or Chinese numerals, digit by digit or with units, 幺 or 一,
  两 or 二, 〇 or 零, thousands separators: every number is compared **by value**, as digits
  (2026年 = 二零二六年 = 2026, 10010 = 幺零零幺零 = 一万零一十, 两点 = 2点).  A number heard
  as another value (10010 as 1010) stays an error, one edit per wrong digit;
- a price in 块 or 元: 5块 = 五块钱 = 5元, 九块九 = 9.9元;
- the particles 的/地/得 (all de) and the pronouns 他/她/它 (all tā), written for one another.

A decoder loop at the end of a transcript (Whisper saying its last words again) is dropped
by ``snap.normalize`` as the gateway drops it; everything else the judge wrote differently
counts, homophones included (势力 for 示例): the syllable error rate of ``bench/tts.py``
shows how much of the CER is that.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from voice.asr.snap import normalize
from voice.tts.frontend import to_speakable

_DIGIT_GROUPS = re.compile(r"\d+(?:[\s,，、-]+\d+)+")
_ISO_DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}")


def _one_number(match: re.Match[str]) -> str:
    groups = match.group()
    return groups if _ISO_DATE.fullmatch(groups) else re.sub(r"[\s,，、-]+", "", groups)


def spoken(text: str) -> str:
    """The words as said, simplified, no punctuation: digits read as the front end reads
    them before the punctuation goes (5.5元 is 五点五元); digit groups split by spaces,
    commas or hyphens are one number (400 800 1234, 400、8000、1234), but for a date
    (2026-12-01); 幺 as 一."""
    text = _DIGIT_GROUPS.sub(_one_number, unicodedata.normalize("NFKC", text))
    return normalize(to_speakable(text)).replace("幺", "一").lower()


_VALUES = {"零": 0, "〇": 0, "一": 1, "幺": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
           "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000}
_BIG_UNITS = {"万": 10**4, "亿": 10**8}
_NUMERALS = "".join([*_VALUES, *_UNITS, *_BIG_UNITS])
_RUN = re.compile(rf"[{_NUMERALS}]+(?:点[{_NUMERALS}]+)*")
# After a lone numeral, the word that makes it a number (一日, 五元, 按一) rather than part
# of a word (一下, 一项, 统一).
_MEASURES = "元块角年月日号点分秒天周次位个岁折"
_DATE, _PRICE = "年月日号", "元块角"


def _cardinal(run: str) -> int:
    total = section = 0
    digit: int | None = None
    for ch in run:
        if ch in _VALUES:
            digit = _VALUES[ch]
        elif ch in _UNITS:
            section += (1 if digit is None else digit) * _UNITS[ch]
            digit = None
        elif ch in _BIG_UNITS:
            total += (section + (digit or 0)) * _BIG_UNITS[ch]
            section, digit = 0, None
    return total + section + (digit or 0)


def number_value(run: str) -> str:
    """A number as said → its digits: 一零零一零 / 幺零零幺零 → 10010 (digit by digit),
    一万零一十 → 10010, 二零二六 → 2026, 两 → 2, 五十八点五 → 58.5."""
    def part(text: str) -> str:
        if any(ch in _UNITS or ch in _BIG_UNITS for ch in text):
            return str(_cardinal(text))
        return "".join(str(_VALUES[ch]) for ch in text if ch in _VALUES)
    whole, *fractions = run.split("点")
    return ".".join([part(whole), *(part(f) for f in fractions)])


@dataclass(frozen=True)
class Number:
    """A number of a compared text: where its digits are, and what it is."""

    start: int
    end: int
    kind: str  # date, price, time, score, key, phone or count


def _kind(value: str, before: str, after: str) -> str:
    """What a number is, from the word around it (``after``: the two characters after)."""
    if after[:1] and after[:1] in _DATE:
        return "date"
    if after[:1] and after[:1] in _PRICE:
        return "price"
    if before == "按":
        return "key"
    if after[:1] in ("点", "秒") or after == "分钟" or ("." in value and after[:1] == "分"):
        return "time"  # 9点, 9.30分 (九点三十分: the 点 of a time reads as a decimal point)
    if after[:1] == "分":
        return "score"
    return "phone" if len(value) >= 5 and "." not in value else "count"


_BLOCK_PRICE = (re.compile(r"(\d+)块(\d)(?![\d.])"), r"\1.\2元")  # 九块九 = 9.9元
_BLOCK = (re.compile(r"(\d+(?:\.\d+)?)(?:块钱|块|元钱)"), r"\1元")  # 五块钱 = 5元


def with_values(text: str) -> tuple[str, list[Number]]:
    """``text`` as spoken with every numeral run as its value, and where the numbers are (a
    run of two or more numerals, or one before a measure word or 到, after 按 or 第).  Every run
    is written as digits, a word's numeral too (一下 → 1下), so that both sides are
    treated alike whatever the judge wrote around it."""
    said = spoken(text)
    for pattern, replace in (_BLOCK_PRICE, _BLOCK):
        said = pattern.sub(replace, _RUN.sub(lambda m: number_value(m.group()), said))
    out: list[str] = []
    numbers: list[Number] = []
    at = 0
    for match in re.finditer(r"\d+(?:\.\d+)*", said):
        out.append(said[at:match.start()])
        at = match.end()
        start = sum(map(len, out))
        value = match.group()
        before, after = said[match.start() - 1:match.start()], said[at:at + 2]
        out.append(value)
        if (len(value) >= 2 or (after[:1] and after[:1] in _MEASURES) or before in ("按", "第")
                or after[:1] == "到"):  # 1到5分
            numbers.append(Number(start, start + len(value), _kind(value, before, after)))
    out.append(said[at:])
    return "".join(out), numbers


def compared(text: str) -> str:
    """``text`` as it is compared: spoken, numbers by value."""
    return with_values(text)[0]


# Written for one another with the same sound: not an error.
_SAME_SOUND = ({"的", "地", "得"}, {"他", "她", "它"})


def _same(a: str, b: str) -> bool:
    return a == b or any(a in group and b in group for group in _SAME_SOUND)


def alignment(reference: str, hypothesis: str) -> list[tuple[str, str]]:
    """A least-edit alignment, character by character: (said, heard) pairs, "" for a
    character missing on that side; 的/地/得 and 他/她/它 align as one character."""
    rows = [list(range(len(hypothesis) + 1))]
    for i, ref_char in enumerate(reference, 1):
        row = [i]
        for j, hyp_char in enumerate(hypothesis, 1):
            row.append(min(rows[-1][j] + 1, row[j - 1] + 1,
                           rows[-1][j - 1] + (0 if _same(ref_char, hyp_char) else 1)))
        rows.append(row)
    pairs: list[tuple[str, str]] = []
    i, j = len(reference), len(hypothesis)
    while i or j:
        if i and j and rows[i][j] == rows[i - 1][j - 1] + (
                0 if _same(reference[i - 1], hypothesis[j - 1]) else 1):
            pairs.append((reference[i - 1], hypothesis[j - 1]))
            i, j = i - 1, j - 1
        elif i and rows[i][j] == rows[i - 1][j] + 1:
            pairs.append((reference[i - 1], ""))
            i -= 1
        else:
            pairs.append(("", hypothesis[j - 1]))
            j -= 1
    return pairs[::-1]


def edits(reference: str, hypothesis: str) -> int:
    """Levenshtein distance in characters, with 的/地/得 and 他/她/它 as one character."""
    return sum(1 for said, heard in alignment(reference, hypothesis)
               if not (said and heard and _same(said, heard)))


def _readings(text: str) -> list[str]:
    """Tone-numbered pinyin of each character of ``text``, read in its context (a digit or
    letter stands for itself)."""
    from pypinyin import Style, pinyin

    def each(other: str) -> Any:  # pypinyin takes a list too (one entry per character)
        return list(other)

    readings = [r[0] for r in pinyin(text, style=Style.TONE3, neutral_tone_with_five=True,
                                     errors=each)]
    return readings if len(readings) == len(text) else list(text)


def error_causes(reference: str, hypothesis: str) -> dict[str, int]:
    """The character errors of one prompt by what they are (both sides as ``compared``):

    - ``same_sound``: another character for the same syllable and tone (势力 for 示例,
      克服 for 客服): the judge's choice of writing, the voice said it right;
    - ``tone``: the same syllable in another tone (使用 for 试用): the voice's tone, or the
      judge's ear on 8 kHz;
    - ``other_sound``: another syllable, digit or letter;
    - ``missing`` / ``added``: a character the judge did not write, or wrote in excess.
    """
    ref, hyp = compared(reference), compared(hypothesis)
    ref_readings, hyp_readings = iter(_readings(ref)), iter(_readings(hyp))
    causes = {"same_sound": 0, "tone": 0, "other_sound": 0, "missing": 0, "added": 0}
    for said, heard in alignment(ref, hyp):
        said_as = next(ref_readings) if said else ""
        heard_as = next(hyp_readings) if heard else ""
        if said and heard and _same(said, heard):
            continue
        if not heard:
            causes["missing"] += 1
        elif not said:
            causes["added"] += 1
        elif said_as == heard_as:
            causes["same_sound"] += 1
        elif said_as[:-1].isalpha() and said_as[:-1] == heard_as[:-1]:  # pinyin, tone apart
            causes["tone"] += 1
        else:
            causes["other_sound"] += 1
    return causes


def cer_counts(reference: str, hypothesis: str) -> tuple[int, int]:
    """(character edits, reference characters), both sides as ``compared``."""
    ref, hyp = compared(reference), compared(hypothesis)
    return edits(ref, hyp), len(ref)


def number_errors(reference: str, hypothesis: str) -> list[dict[str, str]]:
    """The numbers, dates, times, prices and keys of ``reference`` that did not come back
    with the same value.  Each number is compared with the digits the transcript has in its
    place (aligned character by character); the measure word after it may be misheard (后四为
    still says 4), a digit missing, added or changed may not (10010 as 1010)."""
    ref, numbers = with_values(reference)
    hyp = compared(hypothesis)
    opcodes = difflib.SequenceMatcher(None, ref, hyp, autojunk=False).get_opcodes()
    wrong = []
    for number in numbers:
        start, end = number.start, number.end
        heard = ""
        for op, i1, i2, j1, j2 in opcodes:
            if op == "insert" and start <= i1 <= end:
                heard += hyp[j1:j2]  # said next to it: part of the number as heard
            elif op == "equal" and i1 < end and i2 > start:
                heard += hyp[j1 + max(0, start - i1): j2 - max(0, i2 - end)]
            elif op != "insert" and i1 < end and i2 > start:
                heard += hyp[j1:j2]
        heard = "".join(re.findall(r"\d+(?:\.\d+)*", heard))
        if heard != ref[start:end]:
            wrong.append({"said": ref[start:end], "heard": heard or "-", "kind": number.kind})
    return wrong
