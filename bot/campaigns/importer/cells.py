"""Cell values of a contact list: a cell as the user reads it, blank cells and rows, and the
typed parsers that turn one cell into one contact value (phone, gender, age, ID last 4, and a
custom field's text, int, date or money).

The parsers are pure: they know nothing of headers, campaigns or the database, and refuse a
value by raising ``ValueError`` with a reason fit for the rejects file (never repeating ID
digits).  Which parser serves which column is decided in :mod:`.columns`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date, datetime
from datetime import time as clock_time
from decimal import Decimal
from typing import Any

from bot import privacy
from bot.campaigns.phones import normalize_phone

Cell = object  # str from a CSV; str, int, float, bool, datetime... or None from an XLSX
Row = Sequence[Cell]


def cell_text(value: Cell) -> str:
    """A cell as the user reads it (XLSX values arrive typed)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        # Beyond 15 significant digits Excel has already lost some: keep that visible
        # (1.10105199001011e+17), so ID and phone checks refuse it instead of inventing digits.
        return repr(value)
    if isinstance(value, datetime):
        return (value.date().isoformat() if value.time() == clock_time()
                else value.isoformat(sep=" "))
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def is_blank(value: Cell) -> bool:
    return value is None or (type(value) is str and not value.strip())


def is_blank_row(cells: Row) -> bool:
    return all(is_blank(c) for c in cells)


# --- typed values --------------------------------------------------------------------------

_SCIENTIFIC = re.compile(r"[+-]?\d+(?:\.\d+)?[eE][+-]?\d+")
_AGE = re.compile(r"(\d{1,3})(?:\.0+)?岁?")
_INT = re.compile(r"[+-]?\d+(?:\.0+)?")
_MONEY = re.compile(r"[+-]?\d+(?:\.\d{1,2})?")
_MONEY_NOISE = str.maketrans("", "", "¥￥,，元 ")
_DATE = re.compile(
    r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?")
_COMPACT_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_ID18 = re.compile(r"\d{17}[\dX]")
_LAST4 = re.compile(r"\d{3}[\dX]")
_ID_CHECK = "10X98765432"
_GENDERS = {"男": "male", "男性": "male", "先生": "male", "m": "male", "male": "male",
            "女": "female", "女性": "female", "女士": "female", "f": "female", "female": "female"}
_NO_GENDER = {"未知", "不详", "保密", "其他", "-", "--", "/", "unknown", "n/a", "na", "null"}


def _shown(text: str) -> str:
    """A (non-secret) value quoted in a reason, kept short."""
    return repr(text if len(text) <= 20 else text[:20] + "…")


def _text(value: Cell) -> str | None:
    return cell_text(value).strip() or None


def _limited(limit: int) -> Callable[[Cell], str | None]:
    """Text for a column of at most *limit* characters (PostgreSQL refuses longer ones)."""

    def convert(value: Cell) -> str | None:
        text = _text(value)
        if text is not None and len(text) > limit:
            raise ValueError(f"longer than {limit} characters")
        return text

    return convert


def _phone(value: Cell) -> str:
    return normalize_phone(cell_text(value))


def _gender(value: Cell) -> str | None:
    text = cell_text(value).strip().lower()
    if text in _GENDERS:
        return _GENDERS[text]
    if text in _NO_GENDER:
        return None
    raise ValueError(f"{_shown(text)} is not 男/女 (M/F)")


def _age(value: Cell) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not float(value).is_integer():
            raise ValueError(f"{value} is not a whole number of years")
        years = int(value)
    else:
        text = cell_text(value).replace(" ", "")
        match = _AGE.fullmatch(text)
        if not match:
            raise ValueError(f"{_shown(text)} is not a whole number of years")
        years = int(match[1])
    if not 0 <= years <= 120:
        raise ValueError(f"{years} is outside 0-120")
    return years


def id_last4(value: Cell) -> str:
    """The last 4 characters of a Chinese ID number, from the full 18-character number
    (checked: format, check digit, birth date) or from the 4 characters alone.  Reasons never
    repeat the digits."""
    text = privacy.normalize_id_last4(cell_text(value))
    if len(text) == 18 and _ID18.fullmatch(text):
        _check_id18(text)
        return text[-4:]
    if len(text) == 4 and _LAST4.fullmatch(text):
        return text
    if _SCIENTIFIC.fullmatch(text):
        raise ValueError("stored as a number, Excel has already dropped digits: format the "
                         "column as text")
    if len(text) == 4:
        raise ValueError("the last 4 of an ID number are 3 digits then a digit or X")
    if len(text) == 18:
        raise ValueError("an 18-character ID number is 17 digits then a digit or X")
    if len(text) == 15 and text.isdigit():
        raise ValueError("15-digit first-generation ID number: give the 18-character number "
                         "or its last 4")
    if text.isdigit() and len(text) < 4:
        raise ValueError(f"{len(text)} digits where 4 are needed (Excel drops leading zeros of "
                         "numbers: format the column as text)")
    raise ValueError(f"not an ID number or its last 4 ({len(text)} characters)")


def _check_id18(text: str) -> None:
    """Check digit (GB 11643: sum of digit * 2^(17-i) mod 11) and birth date."""
    # The weights 7, 9, 10, 5... are 2^17, 2^16... mod 11, and 13 = 2 mod 11: reading the 17
    # digits as a base-13 number gives the weighted sum halved, mod 11, in one C call (this
    # runs for every row of a million-row list).
    if _ID_CHECK[2 * int(text[:17], 13) % 11] != text[17]:
        raise ValueError("ID number check digit does not match (a typo?)")
    try:
        born = date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        raise ValueError("ID number holds no valid birth date") from None
    if born.year < 1900 or (born.year >= 2000 and born > date.today()):
        raise ValueError("ID number holds no valid birth date")


def _int(value: Cell) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = cell_text(value).strip().replace(",", "")
    if not _INT.fullmatch(text):
        raise ValueError(f"{_shown(text)} is not a whole number")
    return int(text.split(".")[0])


def _date(value: Cell) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = cell_text(value).strip()
    match = _DATE.fullmatch(text) or _COMPACT_DATE.fullmatch(text)
    if not match:
        raise ValueError(f"{_shown(text)} is not a date (YYYY-MM-DD)")
    try:
        return date(int(match[1]), int(match[2]), int(match[3])).isoformat()
    except ValueError:
        raise ValueError(f"{_shown(text)}: no such date") from None


def _money(value: Cell) -> str:
    """An amount in yuan as a decimal string with 2 places (``"5.00"``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, float):
        text = repr(value)
    else:
        text = cell_text(value).strip().upper().removeprefix("RMB").removeprefix("CNY")
        text = text.translate(_MONEY_NOISE)
    if not _MONEY.fullmatch(text):
        raise ValueError(f"{_shown(text)} is not an amount in yuan (like 12.50)")
    return str(Decimal(text).quantize(Decimal("0.01")))


# Parsers by the type of a campaign's custom field, and by standard column.
FIELD_TYPE_PARSERS: dict[str, Callable[[Cell], Any]] = {
    "text": _text, "int": _int, "date": _date, "money": _money}
STANDARD_COLUMN_PARSERS: dict[str, Callable[[Cell], Any]] = {
    "phone": _phone,
    "name": _limited(100),
    "gender": _gender,
    "age": _age,
    "region": _limited(50),
    "id_last4": id_last4,
}
