"""Contact list import (``waihu import CAMPAIGN FILE``): a CSV or XLSX list into the contacts
of one campaign.

- Columns are found by their header: the standard ones under their usual Chinese or English
  names (:data:`STANDARD_HEADERS`) plus the campaign template's ``headers``; custom and order
  fields under their ``header`` (or key), typed.  A required column missing from the header
  row stops the import before anything is written.
- A row with a problem (bad phone, missing required value, bad age/date/ID...) goes to the
  rejects file with its row number as the user sees it (the header is row 1) and the reasons;
  the good rows import.  ID numbers are reduced to a salted hash of their last 4 characters
  and never written in clear anywhere, the rejects file included.
- One phone = one contact: repeats within the file, and rows for contacts already in the
  campaign, are merged (values already known win, later non-empty values fill the blanks).
  Importing the same file twice therefore changes nothing the second time, and an import
  that was interrupted can simply be run again.
- Numbers on the do-not-call list are imported and counted (``on_dnc``): the dialer skips
  them, and they become callable again if the entry is ever removed.

Built for lists of millions of rows (a million in ~30 s on SQLite, bench/import.py): rows
stream from the file, good rows are written in batches -- bulk INSERT (COPY on PostgreSQL) of
new contacts, executemany UPDATE of known ones, one commit per batch so that other processes
can write in between -- and besides the current batch only sets of phone numbers stay in
memory.
"""

from __future__ import annotations

import codecs
import csv
import logging
import re
import time
import unicodedata
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from datetime import time as clock_time
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, insert, select, update

from bot import privacy
from bot.campaigns.definition import CampaignDefinition, CampaignFileError, parse_definition
from bot.campaigns.phones import normalize_phone
from bot.store import CampaignRepo, Database
from bot.store.base import utcnow
from bot.store.models import Contact, DncEntry

log = logging.getLogger("waihu.import")

BATCH_SIZE = 20_000
# Phones per "IN (...)" lookup: below SQLite's historical limit of 999 bound parameters.
_LOOKUP_CHUNK = 900
_ANALYZE_AFTER = 10_000  # new contacts after which PostgreSQL's statistics are refreshed

STANDARD_HEADERS: dict[str, tuple[str, ...]] = {
    # In order of preference: when a list has several of them (手机号 and 电话), the first
    # non-empty one in this order is the contact's value.
    "phone": ("手机号", "手机号码", "手机", "移动电话", "电话", "电话号码", "联系电话",
              "联系方式", "号码", "phone", "mobile", "mobile phone", "phone number", "tel",
              "telephone", "cellphone"),
    "name": ("姓名", "客户姓名", "客户名", "名字", "联系人", "name", "customer name",
             "full name"),
    "gender": ("性别", "gender", "sex"),
    "age": ("年龄", "age"),
    "region": ("地区", "省份", "城市", "区域", "所在地区", "所在地", "region", "province",
               "city", "area"),
    # A full 18-character ID number or only its last 4, in either kind of column: the value
    # tells which.
    "id_last4": ("身份证号", "身份证号码", "身份证", "证件号", "证件号码", "id number",
                 "id card", "id card number", "身份证后四位", "身份证后4位", "证件号后四位",
                 "id last4", "last4"),
}


class ContactImportError(ValueError):
    """The file as a whole cannot be imported (unknown campaign, unreadable file, a required
    column missing); nothing was written."""


@dataclass
class ImportSummary:
    """What an import did.  ``rows`` (blank rows not counted) = ``imported`` + ``updated`` +
    ``unchanged`` + ``merged`` + ``rejected``; ``on_dnc`` counts contacts of the file, new or
    not, whose number is on the do-not-call list."""

    file: str
    campaign: str
    rows: int = 0
    imported: int = 0  # new contacts
    updated: int = 0  # contacts already in the campaign whose blanks the file filled
    unchanged: int = 0  # contacts already in the campaign, nothing new for them in the file
    merged: int = 0  # rows repeating a phone seen earlier in the file, merged into it
    rejected: int = 0
    on_dnc: int = 0
    rejects_file: str | None = None  # only written when rows were rejected
    seconds: float = 0.0
    encoding: str | None = None  # of a CSV file, as detected or given
    ignored_columns: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``json.dumps(summary.as_json())``)."""
        return asdict(self)


def import_contacts(
    db: Database,
    campaign_name: str,
    path: str | Path,
    *,
    rejects_path: str | Path | None = None,
    encoding: str | None = None,
    sheet: str | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportSummary:
    """Import the contact list at *path* (CSV or XLSX) into the campaign *campaign_name*.

    Rejected rows go to *rejects_path* (default ``<stem>.rejects.csv`` beside the file).
    *encoding* overrides the CSV encoding detection (UTF-8 with or without BOM, else
    GB18030/GBK); *sheet* picks an XLSX sheet other than the first.  Raises
    :class:`ContactImportError` when the file cannot be imported at all.
    """
    started = time.perf_counter()
    path = Path(path)
    campaign_id, defn = _campaign(db, campaign_name)
    if not path.is_file():
        raise ContactImportError(f"no such file: {path}")
    rejects_file = Path(rejects_path) if rejects_path else path.with_name(
        f"{path.stem}.rejects.csv")
    if rejects_file.resolve() == path.resolve():
        raise ContactImportError("the rejects file would overwrite the list itself")
    summary = ImportSummary(file=str(path), campaign=campaign_name)
    with _open_table(path, encoding, sheet) as table:
        plan = _Plan.build(defn, table.headers)
        summary.encoding = table.encoding
        summary.ignored_columns = plan.ignored
        with _Rejects(rejects_file, table.headers, plan.masked) as rejects, \
                db.engine.connect() as connection, _bulk_settings(connection):
            sink = _Sink(connection, campaign_id, batch_size)
            for number, cells in table.rows:
                if _blank_row(cells):
                    continue
                summary.rows += 1
                phone, record, reasons = plan.parse(cells)
                if reasons or phone is None:
                    summary.rejected += 1
                    rejects.add(number, reasons, cells)
                else:
                    sink.add(phone, record)
            sink.flush()
    summary.imported, summary.merged, summary.on_dnc = sink.inserted, sink.merged, sink.on_dnc
    summary.updated = len(sink.changed)
    summary.unchanged = sink.matched - summary.updated
    summary.rejects_file = str(rejects_file) if summary.rejected else None
    summary.seconds = round(time.perf_counter() - started, 3)
    log.info("import.finished campaign=%s rows=%d imported=%d updated=%d merged=%d rejected=%d "
             "on_dnc=%d seconds=%.1f", campaign_name, summary.rows, summary.imported,
             summary.updated, summary.merged, summary.rejected, summary.on_dnc, summary.seconds)
    return summary


def _campaign(db: Database, name: str) -> tuple[int, CampaignDefinition]:
    with db.session() as session:
        campaign = CampaignRepo(session).by_name(name)
        if campaign is None:
            raise ContactImportError(
                f"no campaign named {name!r} (create it first: waihu campaign create FILE.yml)")
        try:
            return campaign.id, parse_definition(campaign.definition, f"campaign {name!r}")
        except CampaignFileError as exc:  # stored by an older version of the schema
            raise ContactImportError(" ".join(str(exc).split())) from None


# --- reading the file ------------------------------------------------------------------

Cell = object  # str from a CSV; str, int, float, bool, datetime... or None from an XLSX
Row = Sequence[Cell]


@dataclass
class _Table:
    headers: list[str]
    rows: Iterator[tuple[int, Row]]  # (row number as the user sees it, cells)
    encoding: str | None


@contextmanager
def _open_table(path: Path, encoding: str | None, sheet: str | None) -> Iterator[_Table]:
    try:
        with path.open("rb") as probe:
            magic = probe.read(8)
    except OSError as exc:
        raise ContactImportError(f"cannot read {path}: {exc.strerror or exc}") from None
    if magic.startswith(b"\xd0\xcf\x11\xe0"):
        raise ContactImportError(
            f"{path.name} is an old Excel .xls file: save it as .xlsx or CSV (UTF-8)")
    if magic.startswith(b"PK\x03\x04"):
        if encoding:
            raise ContactImportError("--encoding applies to CSV files, not XLSX")
        with _xlsx_table(path, sheet) as table:
            yield table
        return
    if sheet:
        raise ContactImportError("--sheet applies to XLSX files, not CSV")
    chosen = _csv_encoding(path, encoding, magic)
    with path.open(encoding=chosen, newline="") as stream:
        delimiter = _delimiter(stream.readline())
        stream.seek(0)  # the decoder starts again: a BOM is skipped again
        reader = csv.reader(stream, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            raise ContactImportError(f"{path.name} is empty: no header row")
        label = {"utf-8-sig": "utf-8-bom" if magic.startswith(codecs.BOM_UTF8) else "utf-8"}
        yield _Table([h.strip() for h in header], _csv_rows(reader), label.get(chosen, chosen))


def _csv_rows(reader: Any) -> Iterator[tuple[int, Row]]:
    number = 1
    try:
        for number, cells in enumerate(reader, start=2):  # noqa: B007 (read after the loop)
            yield number, cells
    except csv.Error as exc:
        raise ContactImportError(f"row {number + 1}: unreadable CSV ({exc}); the rows before "
                                 "it are imported: fix the file and import it again") from None


def _csv_encoding(path: Path, given: str | None, magic: bytes) -> str:
    """The given encoding if the whole file decodes with it; else UTF-8 (with or without a
    BOM), else GB18030 (a superset of GBK and GB2312, what Chinese Excel saves as "CSV")."""
    if given:
        try:
            codecs.lookup(given)
        except LookupError:
            raise ContactImportError(f"unknown encoding {given!r}") from None
        bad = _undecodable_at(path, given)
        if bad is not None:
            raise ContactImportError(f"{path.name} is not {given} text (byte {bad})")
        return given
    if magic.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]  # Excel's "Unicode text"
    else:
        candidates = ["utf-8-sig", "gb18030"]
    for candidate in candidates:
        if _undecodable_at(path, candidate) is None:
            return candidate
    raise ContactImportError(
        f"{path.name} is neither UTF-8 nor GBK/GB18030 text: pass --encoding")


def _undecodable_at(path: Path, encoding: str) -> int | None:
    """Offset of the first byte that does not decode, or None.  Checked over the whole file
    first, so an import never stops half-way on a bad byte."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    with path.open("rb") as stream:
        try:
            while chunk := stream.read(1 << 20):
                decoder.decode(chunk)
                offset += len(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            return offset + max(exc.start, 0)
    return None


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


@contextmanager
def _xlsx_table(path: Path, sheet: str | None) -> Iterator[_Table]:
    from openpyxl import load_workbook  # only for XLSX lists
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ContactImportError(f"{path.name} is not a readable XLSX workbook ({exc})") from None
    try:
        if sheet is None:
            worksheet = workbook.worksheets[0]
        elif sheet in workbook.sheetnames:
            worksheet = workbook[sheet]
        else:
            raise ContactImportError(f"no sheet named {sheet!r} in {path.name} (sheets: "
                                     f"{', '.join(workbook.sheetnames)})")
        rows = worksheet.iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            raise ContactImportError(f"{path.name}: the sheet is empty, no header row")
        yield _Table([_cell_text(h).strip() for h in header],
                     ((number, cells) for number, cells in enumerate(rows, start=2)), None)
    finally:
        workbook.close()


def _cell_text(value: Cell) -> str:
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


def _blank(value: Cell) -> bool:
    return value is None or (type(value) is str and not value.strip())


def _blank_row(cells: Row) -> bool:
    return all(_blank(c) for c in cells)


# --- values ------------------------------------------------------------------------------

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
    return _cell_text(value).strip() or None


def _limited(limit: int) -> Callable[[Cell], str | None]:
    """Text for a column of at most *limit* characters (PostgreSQL refuses longer ones)."""

    def convert(value: Cell) -> str | None:
        text = _text(value)
        if text is not None and len(text) > limit:
            raise ValueError(f"longer than {limit} characters")
        return text

    return convert


def _phone(value: Cell) -> str:
    return normalize_phone(_cell_text(value))


def _gender(value: Cell) -> str | None:
    text = _cell_text(value).strip().lower()
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
        text = _cell_text(value).replace(" ", "")
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
    text = privacy.normalize_id_last4(_cell_text(value))
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
    text = _cell_text(value).strip().replace(",", "")
    if not _INT.fullmatch(text):
        raise ValueError(f"{_shown(text)} is not a whole number")
    return int(text.split(".")[0])


def _date(value: Cell) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = _cell_text(value).strip()
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
        text = _cell_text(value).strip().upper().removeprefix("RMB").removeprefix("CNY")
        text = text.translate(_MONEY_NOISE)
    if not _MONEY.fullmatch(text):
        raise ValueError(f"{_shown(text)} is not an amount in yuan (like 12.50)")
    return str(Decimal(text).quantize(Decimal("0.01")))


_FIELD_TYPES: dict[str, Callable[[Cell], Any]] = {
    "text": _text, "int": _int, "date": _date, "money": _money}
_STANDARD_CONVERT: dict[str, Callable[[Cell], Any]] = {
    "phone": _phone,
    "name": _limited(100),
    "gender": _gender,
    "age": _age,
    "region": _limited(50),
    "id_last4": id_last4,
}
# Where a standard value goes in a record: [name, gender, age, region, id_last4, fields].
_SLOTS = {"name": 0, "gender": 1, "age": 2, "region": 3, "id_last4": 4}
_PHONE, _FIELD = -1, -2


def mask_id(text: str) -> str:
    return "*" * len(text)


_ID_IN_TEXT = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")


# --- which column is what ------------------------------------------------------------------

_HEADER_NOISE = re.compile(r"[\s*:_\-]")
_HEADER_NOTE = re.compile(r"\(.*\)$")


def header_key(header: str) -> str:
    """Headers compare as: NFKC, lower case, no spaces, ``*``, ``:``, ``_``, ``-`` and no
    trailing note in brackets (``"手机号码（必填）"`` == ``"手机号码"``)."""
    text = _HEADER_NOISE.sub("", unicodedata.normalize("NFKC", header).lower())
    return _HEADER_NOTE.sub("", text) or text


@dataclass(frozen=True)
class _Target:
    key: str  # standard column name or custom field key
    columns: tuple[int, ...]  # candidate columns, first non-empty wins
    convert: Callable[[Cell], Any]
    required: bool
    slot: int  # _PHONE, _FIELD or an index of _SLOTS


@dataclass
class _Plan:
    headers: list[str]
    targets: list[_Target]
    masked: set[int]  # columns holding ID numbers: never written in clear
    ignored: list[str]

    @classmethod
    def build(cls, defn: CampaignDefinition, headers: list[str]) -> _Plan:
        keys = [header_key(h) for h in headers]
        columns: dict[str, list[int]] = {}
        for index, key in enumerate(keys):
            if key:
                columns.setdefault(key, []).append(index)
        used: set[int] = set()
        targets: list[_Target] = []
        missing: list[str] = []

        template = defn.contacts
        id_keys = {header_key(a) for a in
                   (*STANDARD_HEADERS["id_last4"], *template.headers.get("id_last4", []))}
        # Custom and order fields first: the campaign named their headers itself.
        for spec in defn.list_fields:
            found = next((c for h in spec.headers for c in columns.get(header_key(h), [])
                          if c not in used), None)
            if found is None:
                if spec.required:
                    missing.append(f"{spec.header or spec.key}")
                continue
            if keys[found] in id_keys:
                raise ContactImportError(
                    f"field {spec.key!r} would keep the ID numbers of column {headers[found]!r} "
                    "in clear: ID digits go only to the standard id_last4 column (hashed)")
            used.add(found)
            targets.append(_Target(spec.key, (found,), _FIELD_TYPES[spec.type],
                                   spec.required, _FIELD))

        for name in ("phone", *template.columns):
            aliases = [*template.headers.get(name, []), *STANDARD_HEADERS[name]]
            found_all: list[int] = []
            for alias in aliases:
                for c in columns.get(header_key(alias), []):
                    if c not in used and c not in found_all:
                        found_all.append(c)
            required = name == "phone" or name in template.required
            if not found_all:
                if required:
                    missing.append(f"{name} ({'/'.join(aliases[:4])}...)")
                continue
            used.update(found_all)
            targets.append(_Target(name, tuple(found_all), _STANDARD_CONVERT[name], required,
                                   _PHONE if name == "phone" else _SLOTS[name]))

        if missing:
            shown = ", ".join(h for h in headers if h.strip()) or "(none)"
            raise ContactImportError(
                f"required column(s) missing: {'; '.join(missing)}. The header row has: "
                f"{shown}")
        masked = {i for i, key in enumerate(keys) if key in id_keys}
        masked.update(c for t in targets if t.key == "id_last4" and t.slot != _FIELD
                      for c in t.columns)
        ignored = [headers[i] for i, key in enumerate(keys) if key and i not in used]
        return cls(headers, targets, masked, ignored)

    def parse(self, cells: Row) -> tuple[str | None, list[Any], list[str]]:
        """(phone, record, reasons): a record is [name, gender, age, region, id_last4, fields]
        with None for blanks; the row is rejected when there are reasons."""
        count = len(cells)
        record: list[Any] = [None, None, None, None, None, {}]
        reasons: list[str] = []
        phone: str | None = None
        for target in self.targets:
            raw: Cell = None
            column = target.columns[0]
            for c in target.columns:
                if c < count:
                    cell = cells[c]  # inlined _blank(): this loop runs for every cell
                    if cell is not None and (type(cell) is not str or cell and not cell.isspace()):
                        raw, column = cell, c
                        break
            if raw is None:
                if target.required:
                    reasons.append(f"{self.headers[column]}: required, empty")
                continue
            try:
                value = target.convert(raw)
            except ValueError as exc:
                reasons.append(f"{self.headers[column]}: {exc}")
                continue
            if value is None:
                if target.required:
                    reasons.append(f"{self.headers[column]}: required, empty")
            elif target.slot == _PHONE:
                phone = value
            elif target.slot == _FIELD:
                record[5][target.key] = value
            else:
                record[target.slot] = value
        return phone, record, reasons


# --- the rejects file ----------------------------------------------------------------------


class _Rejects:
    """``row, reason, <the original columns>`` in UTF-8 with a BOM (so Excel opens it right),
    ID numbers masked.  Opened before the first row, so an unwritable path stops the import
    before anything is written; removed again when no row was rejected, so a rejects file
    beside a list always belongs to its last import."""

    def __init__(self, path: Path, headers: list[str], masked: set[int]) -> None:
        self.path = path
        self.headers = headers
        self.masked = masked
        self.count = 0

    def __enter__(self) -> _Rejects:
        try:
            self._stream = self.path.open("w", encoding="utf-8-sig", newline="")
        except OSError as exc:
            raise ContactImportError(f"cannot write the rejects file: {exc}") from None
        self._writer = csv.writer(self._stream)
        self._writer.writerow(["row", "reason", *self.headers])
        return self

    def add(self, number: int, reasons: list[str], cells: Row) -> None:
        texts = [_cell_text(c) for c in cells]
        texts += [""] * (len(self.headers) - len(texts))
        for i, text in enumerate(texts):
            if i in self.masked:
                texts[i] = mask_id(text)
            elif len(text) >= 18:
                texts[i] = _ID_IN_TEXT.sub(lambda m: mask_id(m[0]), text)
        self._writer.writerow([number, "; ".join(reasons) or "no phone", *texts])
        self.count += 1

    def __exit__(self, *exc: object) -> None:
        self._stream.close()
        if not self.count and self.path.is_file():  # is_file(): never a device or a pipe
            self.path.unlink()


# --- writing contacts ----------------------------------------------------------------------

_CONTACTS = cast(Table, Contact.__table__)
_c = _CONTACTS.c
_FILLABLE = ("name", "gender", "age", "region")


class _Sink:
    """Good rows, merged by phone, written in batches: new contacts by bulk INSERT, contacts
    already in the database (before or earlier in this import) by a fill-the-blanks UPDATE."""

    def __init__(self, connection: Connection, campaign_id: int, batch_size: int) -> None:
        self.connection = connection
        self.campaign_id = campaign_id
        self.batch_size = batch_size
        self.existing: set[str] = set(connection.scalars(
            select(_c.phone).where(_c.campaign_id == campaign_id)))
        self.dnc: set[str] = set(connection.scalars(
            select(DncEntry.phone).where(DncEntry.removed_at.is_(None)).distinct()))
        connection.commit()
        self.written: set[str] = set()  # phones written by this import
        self.new: dict[str, list[Any]] = {}
        self.known: dict[str, list[Any]] = {}  # phones already in the database
        self.changed: set[str] = set()  # phones of existing contacts that got new values
        self.inserted = self.merged = self.matched = self.on_dnc = 0
        self._insert = _BulkInsert(connection)
        self._update = (
            update(_CONTACTS)
            .where(_c.campaign_id == campaign_id, _c.phone == bindparam("b_phone"))
            .values({name: bindparam(f"b_{name}") for name in
                     (*_FILLABLE, "id_last4_hash", "id_salt", "fields")}))

    def add(self, phone: str, record: list[Any]) -> None:
        pending = self.new.get(phone) or self.known.get(phone)
        if pending is not None:
            _fill(pending, record)
            self.merged += 1
            return
        if phone in self.written:
            self.known[phone] = record  # repeats a contact already written: merge in the db
            self.merged += 1
        else:
            if phone in self.dnc:
                self.on_dnc += 1
            if phone in self.existing:
                self.known[phone] = record
                self.matched += 1
            else:
                self.new[phone] = record
        if len(self.new) >= self.batch_size:
            self._insert_new()
        if len(self.known) >= self.batch_size:
            self._merge_known()

    def flush(self) -> None:
        self._insert_new()
        self._merge_known()
        if self.inserted >= _ANALYZE_AFTER and self.connection.dialect.name == "postgresql":
            # Fresh statistics: until autovacuum gets to it, the planner would take the table
            # for as small as before and scan it whole for every lookup by phone (the dialer's
            # and the next import's: minutes instead of seconds for a million contacts).
            self.connection.exec_driver_sql(f"ANALYZE {_CONTACTS.name}")
            self.connection.commit()

    def _insert_new(self) -> None:
        if not self.new:
            return
        campaign_id = self.campaign_id
        created_at = self._insert.created_at(utcnow())
        as_json = self._insert.as_json
        rows = []
        # In phone order: the (campaign_id, phone) index then grows in runs, not at random.
        for phone in sorted(self.new):
            name, gender, age, region, last4, fields = self.new[phone]
            salt = hashed = None
            if last4 is not None:
                salt = privacy.new_salt()
                hashed = privacy.hash_secret(last4, salt)
            rows.append((campaign_id, phone, name, gender, age, region, hashed, salt,
                         as_json(fields), "pending", 0, 0, created_at))
        self._insert.execute(rows)
        self.connection.commit()
        self.inserted += len(rows)
        self.written.update(self.new)
        self.new = {}

    def _merge_known(self) -> None:
        if not self.known:
            return
        phones = list(self.known)
        updates: list[dict[str, Any]] = []
        for start in range(0, len(phones), _LOOKUP_CHUNK):
            chunk = phones[start:start + _LOOKUP_CHUNK]
            rows = self.connection.execute(
                select(_c.phone, _c.name, _c.gender, _c.age, _c.region, _c.id_last4_hash,
                       _c.id_salt, _c.fields)
                .where(_c.campaign_id == self.campaign_id, _c.phone.in_(chunk)))
            for row in rows:
                params = self._merged(row, self.known.pop(row.phone))
                if params is not None:
                    updates.append(params)
                    if row.phone in self.existing:
                        self.changed.add(row.phone)
                self.written.add(row.phone)
        if updates:
            self.connection.execute(self._update, updates)
        self.connection.commit()
        # Phones deleted by someone else meanwhile: insert them again.
        for phone, record in self.known.items():
            self.new[phone] = record
        self.known = {}
        self._insert_new()

    @staticmethod
    def _merged(row: Any, record: list[Any]) -> dict[str, Any] | None:
        """UPDATE parameters filling the row's blanks from *record*; None if nothing new."""
        values = {name: getattr(row, name) for name in _FILLABLE}
        changed = False
        for slot, name in enumerate(_FILLABLE):
            if values[name] in (None, "") and record[slot] is not None:
                values[name] = record[slot]
                changed = True
        hashed, salt = row.id_last4_hash, row.id_salt
        if hashed is None and record[4] is not None:
            salt = privacy.new_salt()
            hashed = privacy.hash_secret(record[4], salt)
            changed = True
        fields = dict(row.fields or {})
        for key, value in record[5].items():
            if fields.get(key) in (None, ""):
                fields[key] = value
                changed = True
        if not changed:
            return None
        params = {f"b_{name}": value for name, value in values.items()}
        params.update(b_phone=row.phone, b_id_last4_hash=hashed, b_id_salt=salt,
                      b_fields=fields)
        return params


class _BulkInsert:
    """Bulk INSERT of contacts at the driver level: ``COPY`` on PostgreSQL (psycopg),
    executemany elsewhere.  Rows are tuples in :attr:`COLUMNS` order.

    Core's executemany spends ~10 us a row building and processing parameter dicts, about as
    long as SQLite takes to store the row (~10 s for a million-row list), and psycopg's
    executemany as much again per row.  SQLAlchemy still compiles the statement for the
    connection's dialect (same SQL, placeholders and casts as Core) and the column types'
    own bind processors convert the values: the JSON ``fields`` per row, the timestamp once
    per batch.
    """

    COLUMNS = ("campaign_id", "phone", "name", "gender", "age", "region", "id_last4_hash",
               "id_salt", "fields", "status", "attempts", "priority", "created_at")

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        dialect = connection.dialect
        self.copy = dialect.name == "postgresql" and dialect.driver == "psycopg"
        # inline(): no RETURNING of the new ids (PostgreSQL would add it), nobody needs them.
        compiled = insert(_CONTACTS).inline().compile(dialect=dialect,
                                                      column_keys=list(self.COLUMNS))
        self.sql = str(compiled)
        self.positional = compiled.positional
        if self.positional and tuple(compiled.positiontup or ()) != self.COLUMNS:
            raise RuntimeError(f"contacts insert binds {compiled.positiontup}, expected "
                               f"{self.COLUMNS}")  # the model changed: update COLUMNS
        identity: Callable[[Any], Any] = lambda value: value  # noqa: E731 (a default)
        self.as_json = _c.fields.type.dialect_impl(dialect).bind_processor(dialect) or identity
        self.created_at = (_c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
                           or identity)

    def execute(self, rows: list[tuple[Any, ...]]) -> None:
        if self.copy:
            if not self.connection.in_transaction():
                self.connection.begin()  # so that the caller's commit() commits the COPY
            driver = self.connection.connection.driver_connection
            assert driver is not None
            with driver.cursor() as cursor, cursor.copy(
                    f"COPY {_CONTACTS.name} ({', '.join(self.COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        elif self.positional:
            self.connection.exec_driver_sql(self.sql, rows)
        else:
            named = [dict(zip(self.COLUMNS, row, strict=True)) for row in rows]
            self.connection.exec_driver_sql(self.sql, named)


@contextmanager
def _bulk_settings(connection: Connection) -> Iterator[None]:
    """SQLite settings for a bulk load on this connection, restored afterwards: a 64 MB page
    cache (the phone index of a million contacts does not fit the default 2 MB) and
    ``synchronous=NORMAL``, SQLite's advice for WAL databases: still never corrupt, but a
    power cut may lose the last commits -- which running the import again restores."""
    if connection.dialect.name != "sqlite":
        yield
        return
    saved = {name: int(connection.exec_driver_sql(f"PRAGMA {name}").scalar_one())
             for name in ("cache_size", "synchronous")}
    connection.exec_driver_sql("PRAGMA cache_size=-65536")
    connection.exec_driver_sql("PRAGMA synchronous=NORMAL")
    try:
        yield
    finally:
        for name, value in saved.items():
            connection.exec_driver_sql(f"PRAGMA {name}={value}")


def _fill(record: list[Any], more: list[Any]) -> None:
    """Merge a later row of the same phone: its non-empty values fill the blanks."""
    for slot in range(5):
        if record[slot] is None:
            record[slot] = more[slot]
    for key, value in more[5].items():
        record[5].setdefault(key, value)
