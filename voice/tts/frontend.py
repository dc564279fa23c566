"""Chinese TTS front end: written text → words as spoken → tone-numbered pinyin for espeak-ng.

Debian's espeak-ng reads many hanzi badly (FINDINGS.md), so every prompt goes through
``to_pinyin`` and is spoken with the ``cmn-latn-pinyin`` voice.

Reading rules (``to_speakable``), applied in this order:

- Dates: ``2026-12-05`` / ``2026/12/5`` → 二零二六年十二月五日; a four-digit year before 年 is read
  digit by digit (二零二六年); month and day as numbers (十二月五日).
- Times: ``10:30`` → 十点三十分, ``9:05`` → 九点零五分, ``10:00`` → 十点整.
- Money: ``¥58.50`` / ``￥58.5`` → 五十八点五元; ``58.00元`` → 五十八元.
- Percentages: ``15%`` → 百分之十五, ``2.5%`` → 百分之二点五.
- Phone numbers and hotlines are read digit by digit with **幺** for 1, as Chinese agents say them
  (clearer on the phone than 一, which sounds like 七): mobile numbers (11 digits, starting 1),
  400/800 numbers, 5-digit service numbers starting 1 or 9 (10010, 12315, 95588), numbers
  starting with 0 of 7+ digits, and groups joined by hyphens (010-12345678).  A long number is
  said in groups with a short pause between them, as agents do (138，1234，5678; 400，800，
  1234; 010，1234，5678): run together, Whisper heard the neural voice's 四零零八零零幺二三四
  as 408001234, in groups it heard every digit.
- A key to press (按1, 请按2。) is said with 键: 按一键, 按二键, as IVRs say it.
- Other digit strings of 5+ digits not followed by a measure word (order numbers, codes), and
  any digits after 尾号/后四位/验证码/编号/工号, are read digit by digit with **一**.
- Everything else is a number: ``58.5`` → 五十八点五, ``30天`` → 三十天, ``10000元`` → 一万元.
  A lone 2 before a measure word is 两 (两个, 两天, 两元, 两点); elsewhere 二 (二月, 第二次, 二百).

Fixed readings (``reading_spans``): words and surnames whose reading pypinyin gets wrong, as
both engines read it (espeak through ``to_pinyin``, Kokoro through misaki's G2P, which reads
word by word with pypinyin after jieba's cut): 还款 is huán kuǎn, not hái; 重置 chóng zhì;
长按 cháng àn; 调整为 …wéi; a surname before 先生/女士 as a surname (曾 Zēng, 单 Shàn, 解
Xiè …).  Each was read wrong before (tests/unit/voice/test_tts_frontend.py lists them).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pypinyin import Style, lazy_pinyin

_DIGITS = "零一二三四五六七八九"
_SMALL_UNITS = ("", "十", "百", "千")
_BIG_UNITS = ("", "万", "亿", "万亿")
_FULLWIDTH = str.maketrans("０１２３４５６７８９％：．", "0123456789%:.")

# Measure words after which a number is a quantity, never a code or a phone number.
_MEASURE = "元块角分个天日号月年周次位岁人张条种倍小时分钟秒期件台户折"
# Words after which digits are read one by one (ID tails, codes, staff numbers).
_DIGIT_CONTEXT = r"(?:尾号|后四位|后六位|验证码|编号|工号|单号|卡号|号码)(?:是|为)?[:：]?\s*"


def cardinal(n: int) -> str:
    """A whole number the Chinese way: 0 → 零, 10 → 十, 1001 → 一千零一, 100010 → 十万零一十."""
    if n < 0:
        return "负" + cardinal(-n)
    if n == 0:
        return _DIGITS[0]
    if n >= 10**16:
        return digits(str(n))
    sections: list[int] = []
    while n:
        sections.append(n % 10000)
        n //= 10000
    out = ""
    pending_zero = False
    for index in range(len(sections) - 1, -1, -1):
        section = sections[index]
        if section == 0:
            pending_zero = bool(out)
            continue
        if out and (pending_zero or section < 1000):
            out += _DIGITS[0]
        out += _section(section) + _BIG_UNITS[index]
        pending_zero = False
    return out[1:] if out.startswith("一十") else out


def _section(n: int) -> str:
    out = ""
    zero = False
    for pos in range(3, -1, -1):
        digit = n // 10**pos % 10
        if digit == 0:
            zero = bool(out)
            continue
        if zero:
            out += _DIGITS[0]
        out += _DIGITS[digit] + _SMALL_UNITS[pos]
        zero = False
    return out


def digits(text: str, *, yao: bool = False) -> str:
    """Digit by digit: "10010" → 一零零一零, or 幺零零幺零 with ``yao`` (phone numbers)."""
    out = "".join(_DIGITS[int(ch)] for ch in text if ch.isdigit())
    return out.replace("一", "幺") if yao else out


def decimal(text: str) -> str:
    """"58.5" → 五十八点五; "3.0" → 三点零; "58" → 五十八."""
    whole, _, frac = text.partition(".")
    spoken = cardinal(int(whole or "0"))
    return spoken + "点" + digits(frac) if frac else spoken


def _money(amount: str) -> str:
    whole, _, frac = amount.partition(".")
    frac = frac.rstrip("0")
    return decimal(f"{whole}.{frac}" if frac else whole) + "元"


def phone_groups(number: str) -> list[str]:
    """How a phone number is said in groups: 3-4-4 for a mobile number, 3-3-4 for a 400/800
    number, the area code (3 digits for 010 and 02x, else 4) and then fours for a number
    starting with 0; a short service number (10010) is one group."""
    n = len(number)
    if n == 11 and number.startswith("1"):
        heads = [3, 4]
    elif n == 10 and number[:3] in ("400", "800"):
        heads = [3, 3]
    elif n >= 7 and number.startswith("0"):
        heads = [3 if number[1] in "12" else 4]
    else:
        heads = []
    groups, rest = [], number
    for size in heads:
        groups.append(rest[:size])
        rest = rest[size:]
    while len(rest) > 4 and n > 5:
        groups.append(rest[:4])
        rest = rest[4:]
    return [g for g in [*groups, rest] if g]


def _is_phone(number: str) -> bool:
    n = len(number)
    return (
        (n == 11 and number.startswith("1"))
        or (n == 10 and number[:3] in ("400", "800"))
        or (n == 5 and number[0] in "19")
        or (n >= 7 and number.startswith("0"))
    )


def _number(match: re.Match[str]) -> str:
    number, after = match.group(1), match.group(2)
    if "." in number:
        return decimal(number) + after
    if after:
        ordinal = match.start() > 0 and match.string[match.start() - 1] == "第"
        if number == "2" and not ordinal and not after.startswith(("月", "日", "号")):
            return "两" + after
        return cardinal(int(number)) + after
    if _is_phone(number):
        return "，".join(digits(group, yao=True) for group in phone_groups(number))
    if len(number) >= 5:
        return digits(number)
    return cardinal(int(number))


# A key to press: 按1 → 按一键, as an IVR says it.  A bare digit after 按 is short and
# unstressed, at the end of a sentence most of all: Whisper heard both bot voices' 按二。 as
# 案案 / 按啊 and 按一。 as 按议 (docs/benchmarks.md, 2026-12-05); with 键 after it, 4 of 16
# keys in a probe came back wrong instead of 9.  Not a quantity or a range (按5元, 按3折, 按1到5
# 分打分), nor a key already named (按1键, 按0号键), nor the start of a longer number.
_KEY = re.compile(rf"(?<=按)(\d)(?![\d.．%％键号{_MEASURE}到至~～\-－、/或和与比:：])")

_RULES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    # 1,000 → 1000 (thousands separators only between digit groups of three).
    (re.compile(r"(?<=\d),(?=\d{3}(?!\d))"), lambda m: ""),
    (
        re.compile(r"(?<!\d)(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?!\d)"),
        lambda m: f"{digits(m[1])}年{cardinal(int(m[2]))}月{cardinal(int(m[3]))}日",
    ),
    (re.compile(r"(?<!\d)(\d{4})(?=年)"), lambda m: digits(m[1])),
    (
        re.compile(r"(?<!\d)(\d{1,2})[:：](\d{2})(?!\d)"),
        lambda m: _clock(int(m[1]), int(m[2])),
    ),
    (re.compile(r"[¥￥]\s*(\d+(?:\.\d+)?)元?"), lambda m: _money(m[1])),
    (re.compile(r"(\d+\.\d+)(?=元)"), lambda m: _money(m[1])[:-1]),
    (
        re.compile(rf"(\d+)\s*[-~～]\s*(\d+)(?=[{_MEASURE}])"),
        lambda m: f"{cardinal(int(m[1]))}到{cardinal(int(m[2]))}",
    ),
    (re.compile(r"(\d+(?:\.\d+)?)\s*[%％]"), lambda m: "百分之" + decimal(m[1])),
    (
        re.compile(r"(?<!\d)(\d{2,4}(?:-\d{3,8})+)(?![\d-])"),
        lambda m: "，".join(digits(group, yao=True) for part in m[1].split("-")
                           for group in (phone_groups(part) if len(part) > 4 else [part])),
    ),
    (_KEY, lambda m: _DIGITS[int(m[1])] + "键"),
    (re.compile(rf"({_DIGIT_CONTEXT})(\d+)"),
     lambda m: m[1] + ("，".join(digits(g, yao=True) for g in phone_groups(m[2]))
                       if _is_phone(m[2]) else digits(m[2]))),
    (re.compile(rf"(\d+(?:\.\d+)?)([{_MEASURE}]?)"), _number),
)


def _clock(hour: int, minute: int) -> str:
    spoken_hour = "两" if hour == 2 else cardinal(hour)
    if minute == 0:
        return f"{spoken_hour}点整"
    spoken_minute = cardinal(minute) if minute >= 10 else "零" + cardinal(minute)
    return f"{spoken_hour}点{spoken_minute}分"


def to_speakable(text: str) -> str:
    """``text`` with every number, date, time, amount and phone number written as spoken words."""
    text = text.translate(_FULLWIDTH)
    for pattern, replace in _RULES:
        text = pattern.sub(replace, text)
    return text


# Words pypinyin reads wrong on its own or in jieba's cut (请长按 is cut 请长/按, 长 zhǎng):
# a call centre's sentences about repayments, resets and changed tariffs.
READINGS: dict[str, str] = {
    **{f"{before}还{after}": f"{head} huan2 {tail}".strip()
       for before, head in (("", ""), ("应", "ying1"), ("已", "yi3"), ("未", "wei4"),
                            ("待", "dai4"), ("按时", "an4 shi2"), ("提前", "ti2 qian2"))
       for after, tail in (("款", "kuan3"), ("钱", "qian2"))},
    "应还": "ying1 huan2", "已还": "yi3 huan2", "未还": "wei4 huan2", "待还": "dai4 huan2",
    "重置": "chong2 zhi4", "重设": "chong2 she4", "重拨": "chong2 bo1", "重发": "chong2 fa1",
    "重输": "chong2 shu1", "重来": "chong2 lai2", "长按": "chang2 an4",
    "调高": "tiao2 gao1", "调低": "tiao2 di1", "上调": "shang4 tiao2",
    # Changed *to*: wéi, where pypinyin says wèi (for).
    "调整为": "tiao2 zheng3 wei2", "变更为": "bian4 geng1 wei2", "更改为": "geng1 gai3 wei2",
    "修改为": "xiu1 gai3 wei2", "设置为": "she4 zhi4 wei2", "设为": "she4 wei2",
    "升级为": "sheng1 ji2 wei2", "降为": "jiang4 wei2", "提升为": "ti2 sheng1 wei2",
    "下调为": "xia4 tiao2 wei2", "上调为": "shang4 tiao2 wei2", "视为": "shi4 wei2",
    "为准": "wei2 zhun3",
}
# Surnames read otherwise than the character alone, before a form of address (曾先生).
SURNAMES: dict[str, str] = {
    "曾": "zeng1", "单": "shan4", "解": "xie4", "查": "zha1", "区": "ou1", "仇": "qiu2",
    "朴": "piao2", "盖": "ge3", "缪": "miao4", "翟": "zhai2", "覃": "qin2", "乐": "yue4",
    "任": "ren2", "华": "hua4",
}
_ADDRESS = "先生|女士|小姐|老师|经理|总"
# Where a name starts in the prompts: the text's start, after punctuation, or after 是/替/
# 系 (联系)/的/位/给/找/叫/和/与; not inside a word (了解先生, 调查女士, 简单地区).
_NAME_START = r"(?:(?<=^)|(?<=[^\u3400-\u9fff])|(?<=[是替系的位给找叫和与]))"
_FIXED = re.compile(
    "|".join(sorted(map(re.escape, READINGS), key=len, reverse=True))
    + rf"|{_NAME_START}[{''.join(SURNAMES)}](?={_ADDRESS})")


def reading_spans(text: str) -> list[tuple[str, str | None]]:
    """``text`` in pieces, each with its fixed tone-numbered pinyin, or None where the
    engine's own G2P reads it: 请您尽快还款。 → [(请您尽快, None), (还款, huan2 kuan3),
    (。, None)].  A surname is fixed only where a name starts (``_NAME_START``)."""
    spans: list[tuple[str, str | None]] = []
    at = 0
    for match in _FIXED.finditer(text):
        if match.start() > at:
            spans.append((text[at:match.start()], None))
        word = match.group()
        spans.append((word, READINGS.get(word) or SURNAMES[word]))
        at = match.end()
    if at < len(text):
        spans.append((text[at:], None))
    return spans


# English letter names as Mandarin speakers say them, in tone-numbered pinyin.
_LETTERS = {
    "A": "ei1", "B": "bi4", "C": "xi1", "D": "di4", "E": "yi4", "F": "ai2 fu5",
    "G": "ji4", "H": "ai2 qi1", "I": "ai4", "J": "zhei4", "K": "kai4", "L": "ai2 le5",
    "M": "ai2 mu5", "N": "en1", "O": "ou1", "P": "pi4", "Q": "kiu1", "R": "a1 er5",
    "S": "ai2 si1", "T": "ti4", "U": "you1", "V": "wei1", "W": "da2 bu5 liu5",
    "X": "ai2 ke4 si1", "Y": "wai4", "Z": "zei4",
}
# Sentence ends become a full stop, everything else that marks a break a comma: espeak pauses
# longer on "." than on ",".
_STOPS = "。！？!?；;…"
_BREAKS = "，,、：:（）()《》“”\"'‘’—-～~/·"
_TOKEN = re.compile(r"[\u3400-\u9fff]+|[A-Za-z]+|\s+|.", re.DOTALL)


def to_pinyin(text: str) -> str:
    """Tone-numbered pinyin (neutral tone 5) for the ``cmn-latn-pinyin`` espeak-ng voice.

    >>> to_pinyin("您好，每月5元。")
    'nin2 hao3, mei3 yue4 wu3 yuan2.'
    """
    words: list[str] = []
    for token in _TOKEN.findall(to_speakable(text)):
        if token.isspace():
            continue
        if "\u3400" <= token[0] <= "\u9fff":
            for piece, reading in reading_spans(token):
                words.extend(reading.split() if reading else lazy_pinyin(
                    piece, style=Style.TONE3, neutral_tone_with_five=True, tone_sandhi=True))
        elif token.isascii() and token.isalpha():
            words.extend(_LETTERS[ch] for ch in token.upper())
        elif token in _STOPS or token in _BREAKS:
            mark = "." if token in _STOPS else ","
            if words and words[-1] not in (",", "."):
                words.append(mark)
            elif words and mark == ".":
                words[-1] = "."
    out = " ".join(words).replace(" ,", ",").replace(" .", ".")
    return out.rstrip(",").strip()
