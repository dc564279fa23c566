"""Phone numbers of mainland China customers, as they arrive in contact lists.

:func:`normalize_phone` turns what people and spreadsheets write (``+86 138-1234-5678``,
``(020) 8888 6666``, full-width digits, ``13812345678.0`` from an Excel numeric cell) into the
digits the store keeps and the trunk dials: an 11-digit mobile number, or a landline with its
area code and leading 0 (``02088886666``).  Anything it cannot read for certain is refused
with the reason, never guessed: a wrong number is a call to a stranger.
"""

from __future__ import annotations

import re
import unicodedata

_MOBILE = re.compile(r"1[3-9]\d{9}")
_SCIENTIFIC = re.compile(r"[+-]?\d+(?:\.\d+)?[eE][+-]?\d+")
_EXCEL_FLOAT = re.compile(r"(\d+)\.0+")
# Separators people put between digit groups; NFKC has already turned the full-width forms
# (－ （ ） ．and the ideographic space) into these.
_SEPARATORS = str.maketrans("", "", " \t-.()/\u2010\u2011\u2012\u2013\u2014\u2212\u00a0")


def normalize_phone(text: str) -> str:
    """The canonical digits of a mainland mobile or landline number; ``ValueError`` with the
    reason when *text* is not one.

    Mobile: 11 digits ``1[3-9]xxxxxxxxx`` (also written with ``+86``/``0086``/``86`` before
    it, or a long-distance ``0`` before it).  Landline: area code with its 0, then the local
    number: ``010`` and ``02x`` take 8 digits, the 3-digit codes ``0[3-9]xx`` take 7 or 8;
    ``+86 20 8888 6666`` (international form, no 0) is read as ``02088886666``.  Refused:
    400/800 service numbers, numbers outside mainland China, landlines without area code,
    Excel's scientific notation (its digits are already lost).
    """
    raw = unicodedata.normalize("NFKC", text).strip()
    if _MOBILE.fullmatch(raw):  # the common case, fast
        return raw
    if not raw:
        raise ValueError("empty")
    if _SCIENTIFIC.fullmatch(raw):
        raise ValueError(
            "scientific notation: Excel has already dropped digits; format the column as text "
            "and export again")
    excel = _EXCEL_FLOAT.fullmatch(raw)
    if excel:
        raw = excel[1]
    digits = raw.translate(_SEPARATORS)
    international = False
    if digits.startswith("+"):
        if not digits.startswith("+86"):
            raise ValueError("number outside mainland China (country code is not +86)")
        digits, international = digits[3:], True
    elif digits.startswith("0086"):
        digits, international = digits[4:], True
    elif digits.startswith("00"):
        raise ValueError("number outside mainland China (international prefix 00, not 0086)")
    if not digits.isascii() or not digits.isdigit():
        bad = next((ch for ch in digits if not (ch.isascii() and ch.isdigit())), "")
        raise ValueError(f"unexpected character {bad!r}" if bad else "no digits")
    if international:
        return _after_country_code(digits)
    if len(digits) == 13 and digits.startswith("86") and _MOBILE.fullmatch(digits[2:]):
        return digits[2:]
    return _national(digits)


def _after_country_code(digits: str) -> str:
    """The number after +86: a mobile, or a landline whose area code lost (or kept) its 0."""
    if _MOBILE.fullmatch(digits):
        return digits
    if digits.startswith("1") and not digits.startswith("10"):
        return _mobile(digits)
    return _landline(digits if digits.startswith("0") else "0" + digits)


def _national(digits: str) -> str:
    if len(digits) < 7:
        raise ValueError(f"too short for a customer's number ({len(digits)} digits)")
    if digits.startswith("400") or digits.startswith("800"):
        raise ValueError("400/800 service number, not a customer number")
    if digits.startswith("0"):
        if len(digits) == 12 and _MOBILE.fullmatch(digits[1:]):
            return digits[1:]  # long-distance 0 dialled before a mobile from another city
        return _landline(digits)
    if digits.startswith("1"):
        return _mobile(digits)
    if len(digits) in (7, 8):
        raise ValueError("landline without area code (write it as 0XX-XXXXXXXX)")
    try:
        _landline("0" + digits)
    except ValueError:
        raise ValueError(f"not a mainland phone number ({len(digits)} digits)") from None
    raise ValueError("a landline without the 0 of its area code (Excel drops leading zeros "
                     "of numbers: format the column as text)")


def _mobile(digits: str) -> str:
    if len(digits) != 11:
        raise ValueError(f"mobile numbers have 11 digits, got {len(digits)}")
    if not _MOBILE.fullmatch(digits):
        raise ValueError(f"no mobile numbers start with {digits[:2]}")
    return digits


def _landline(digits: str) -> str:
    """``digits`` starts with the 0 of the area code."""
    if digits.startswith("0400") or digits.startswith("0800"):
        raise ValueError("400/800 service number, not a customer number")
    second = digits[1:2]
    lengths: tuple[int, ...]
    if second == "1":
        if not digits.startswith("010"):
            raise ValueError(f"no area code {digits[:3]} (01x: only 010, Beijing)")
        code, lengths = 3, (8,)
    elif second == "2":
        code, lengths = 3, (8,)
    elif second and second in "3456789":
        code, lengths = 4, (7, 8)
    else:
        raise ValueError("not a mainland phone number (area code starts with 00)")
    local = digits[code:]
    if len(local) not in lengths:
        want = " or ".join(str(n) for n in lengths)
        raise ValueError(f"area code {digits[:code]} takes {want}-digit numbers, got "
                         f"{len(local)} digits after it")
    if local[0] in "01":
        raise ValueError(f"local numbers do not start with {local[0]}")
    return digits
