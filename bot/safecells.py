"""Text from outside written into spreadsheets (CSV, XLSX) so that no formula runs.

A contact list is written by someone else; its names, regions and free fields come back out
in the reports and the rejects file, which people open in Excel or WPS.  A cell that starts
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is taken as a formula there
(``=HYPERLINK(...)`` leaks data, ``=cmd|' /C calc'!A0`` asks to run a program: "CSV
injection", OWASP).  The full-width forms ``＝ ＋ － ＠`` are included too: East Asian input
methods and some spreadsheet versions turn them into their ASCII forms, and a list from a
Chinese call centre is exactly where they appear.

The rule lives here and every writer calls it, for *text* only: a number the project
computed (a negative amount, a rate) is written as a number, never quoted.

- CSV: :func:`neutralise` puts a single quote in front, as OWASP advises; spreadsheet
  programs show the text, and a program reading the CSV sees the quote (the lesser harm).
- XLSX: :func:`put_text` stores the text unchanged as a *string* cell with Excel's own
  quote-prefix flag (what Excel stores when a user types ``'=1+1``).  openpyxl would store a
  ``str`` starting with ``=`` as a formula; here it never does, and editing the cell in Excel
  keeps it text.  Control characters that XLSX cannot hold (openpyxl refuses them) become
  U+FFFD instead of making the whole export fail.

``defusedcsv`` was looked at and not used: it quotes every field it is given (our formatted
numbers too), rewrites ``|`` and knows neither the tab/CR nor the full-width forms, nor XLSX.
"""

from __future__ import annotations

import re
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")

# What openpyxl refuses in a cell (openpyxl.cell.cell.ILLEGAL_CHARACTERS_RE, copied so that
# importing this module does not import openpyxl).
_XLSX_ILLEGAL = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")


def starts_like_formula(text: str) -> bool:
    """Whether a spreadsheet program could take *text* for a formula."""
    return text.startswith(FORMULA_STARTS)


def neutralise(text: str) -> str:
    """*text* made safe for a CSV cell: a leading single quote when it starts like a
    formula, else unchanged."""
    return "'" + text if starts_like_formula(text) else text


def csv_cell(value: Any) -> Any:
    """A value for ``csv.writer``: text from outside neutralised; numbers, None as they are."""
    return neutralise(value) if isinstance(value, str) else value


def put_text(cell: Any, text: str) -> None:
    """Store *text* in the openpyxl *cell* as text, never as a formula."""
    cell.value = _XLSX_ILLEGAL.sub("\ufffd", text)
    if starts_like_formula(text):
        cell.data_type = "s"  # openpyxl made it "f" for a leading "="
        cell.quotePrefix = True
