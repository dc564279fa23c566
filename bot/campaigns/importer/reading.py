"""Reading a contact list file: CSV (encoding and delimiter detected) or XLSX, as a header
row and an iterator of numbered rows (:class:`Table`).

Rows stream from the file, so a list of millions of rows never sits in memory; a CSV file is
checked to decode as a whole before its first row is read, so an import never stops half-way
on a bad byte.  Old ``.xls`` files, and options that do not fit the file's kind, are refused
up front.

A list comes from outside, so it is read within limits (:class:`.limits.ImportLimits`): the
file's size; for CSV, no NUL byte (a binary file) and no line longer than the limit, checked
over the whole file before the first row; for XLSX, the archive's table of contents is
checked before openpyxl opens it (a part too big or inflating too much -- a zip bomb -- is
refused), and its XML is parsed through defusedxml (openpyxl uses it when installed), which
refuses entity declarations (the "billion laughs").  The number of rows and the length of a
cell are checked as the rows are read.
"""

from __future__ import annotations

import codecs
import csv
import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError

from bot.campaigns.importer.cells import Row, cell_text
from bot.campaigns.importer.errors import ContactImportError
from bot.campaigns.importer.limits import MB, ImportLimits


@dataclass
class Table:
    """An open list: its header row, its rows, and the encoding of a CSV file as detected or
    given (None for XLSX)."""

    headers: list[str]
    rows: Iterator[tuple[int, Row]]  # (row number as the user sees it, cells)
    encoding: str | None


@contextmanager
def open_table(path: Path, encoding: str | None, sheet: str | None,
               limits: ImportLimits | None = None) -> Iterator[Table]:
    """The list at *path*, XLSX or CSV as its first bytes tell (not its name), read within
    *limits* (default: :meth:`ImportLimits.from_env`)."""
    limits = limits or ImportLimits.from_env()
    magic = _first_bytes(path, limits)
    if magic.startswith(b"\xd0\xcf\x11\xe0"):
        raise ContactImportError(
            f"{path.name} is an old Excel .xls file: save it as .xlsx or CSV (UTF-8)")
    if magic.startswith(b"PK\x03\x04"):
        if encoding:
            raise ContactImportError("--encoding applies to CSV files, not XLSX")
        with _xlsx_table(path, sheet, limits) as table:
            yield table
        return
    if sheet:
        raise ContactImportError("--sheet applies to XLSX files, not CSV")
    _check_csv_bytes(path, magic, limits, encoding)
    chosen = _csv_encoding(path, encoding, magic)
    with path.open(encoding=chosen, newline="") as stream:
        delimiter = _delimiter(stream.readline())
        stream.seek(0)  # the decoder starts again: a BOM is skipped again
        reader = csv.reader(stream, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            raise ContactImportError(f"{path.name} is empty: no header row")
        label = {"utf-8-sig": "utf-8-bom" if magic.startswith(codecs.BOM_UTF8) else "utf-8"}
        _check_cells(1, header, limits)
        yield Table([h.strip() for h in header], _csv_rows(reader, limits),
                    label.get(chosen, chosen))


def _csv_rows(reader: Any, limits: ImportLimits) -> Iterator[tuple[int, Row]]:
    number = 1
    try:
        for number, cells in enumerate(reader, start=2):  # noqa: B007 (read after the loop)
            if len(cells) > limits.max_columns or (
                    cells and max(map(len, cells)) > limits.max_cell_chars):
                _check_cells(number, cells, limits)
            yield number, cells
    except csv.Error as exc:
        raise ContactImportError(f"row {number + 1}: unreadable CSV ({exc}); the rows before "
                                 "it are imported: fix the file and import it again") from None


def check_csv_file(path: Path, limits: ImportLimits | None = None) -> None:
    """The size and byte checks of a CSV file, for other readers of CSV files (``waihu dnc
    import``); raises :class:`ContactImportError`."""
    limits = limits or ImportLimits.from_env()
    if not path.is_file():  # a pipe or a device would never end (or block the open)
        raise ContactImportError(f"{path} is not a regular file")
    magic = _first_bytes(path, limits)
    _check_csv_bytes(path, magic, limits)


def _check_size(path: Path, size: int, limits: ImportLimits) -> None:
    if size > limits.max_file_mb * MB:
        raise ContactImportError(f"{path.name} is {size / MB:.0f} MB, more than the limit of "
                                 f"{limits.max_file_mb} MB (WAIHU_IMPORT_MAX_FILE_MB)")


def _check_cells(number: int, cells: Row, limits: ImportLimits) -> None:
    """Refuse a row with too many cells or a cell longer than the limit (no spreadsheet
    program writes one)."""
    if len(cells) > limits.max_columns:
        raise ContactImportError(
            f"row {number} has {len(cells)} columns, more than the limit of "
            f"{limits.max_columns} (WAIHU_IMPORT_MAX_COLUMNS); the rows before it are imported")
    for column, cell in enumerate(cells, start=1):
        if isinstance(cell, str) and len(cell) > limits.max_cell_chars:
            raise ContactImportError(
                f"row {number}, column {column}: a cell of {len(cell)} characters, more than "
                f"the limit of {limits.max_cell_chars} (WAIHU_IMPORT_MAX_CELL_CHARS); the rows "
                "before it are imported")


def _check_csv_bytes(path: Path, magic: bytes, limits: ImportLimits,
                     encoding: str | None = None) -> None:
    """Before the first row: no NUL byte (text never has one, outside UTF-16), no line
    longer than the limit (the CSV reader holds a whole line), not more lines than rows
    allowed (a line count is at least the record count)."""
    utf16 = magic.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or (
        encoding is not None and encoding.lower().replace("_", "-").startswith(("utf-16",
                                                                                "utf-32")))
    longest = run = lines = 0
    offset = 0
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            nul = -1 if utf16 else chunk.find(b"\0")
            if nul >= 0:
                raise ContactImportError(
                    f"{path.name} is a binary file, not CSV text (a NUL byte at byte "
                    f"{offset + nul}): save the list as CSV or XLSX (UTF-16 text without a "
                    "BOM: pass --encoding utf-16-le)")
            parts = chunk.splitlines()  # \n, \r\n and \r, as the CSV reader splits
            if chunk.endswith((b"\n", b"\r")):
                parts.append(b"")
            run += len(parts[0])
            if len(parts) > 1:
                longest = max(longest, run, *map(len, parts[1:-1]))
                run = len(parts[-1])
                lines += len(parts) - 1
            offset += len(chunk)
            if max(longest, run) > limits.max_line_kb * 1024:
                raise ContactImportError(
                    f"{path.name} has a line longer than {limits.max_line_kb} KB "
                    "(WAIHU_IMPORT_MAX_LINE_KB): not a contact list, or not CSV text")
    if lines > limits.max_rows + 1:  # + the header
        raise ContactImportError(
            f"{path.name} has {lines} lines, more than the limit of {limits.max_rows} rows "
            "(WAIHU_IMPORT_MAX_ROWS): split the list")


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


MAX_PARTS = 10_000  # parts in one workbook; a list has about ten
RATIO_FROM = MB  # parts smaller than this are not checked for their compression ratio


def _check_xlsx_archive(path: Path, limits: ImportLimits) -> None:
    """The archive's table of contents, before openpyxl reads a byte of it: every part
    within its size limit and compression ratio (a zip bomb is refused here, in
    milliseconds).  The sizes are the declared ones; Python's zipfile never inflates a part
    beyond its declared size (it stops with a CRC error), so they bound what is read."""
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ContactImportError(f"{path.name} is not a readable XLSX workbook ({exc})") from None
    if len(parts) > MAX_PARTS:
        raise ContactImportError(f"{path.name} has {len(parts)} parts, more than any workbook "
                                 f"({MAX_PARTS}): refused")
    for part in parts:
        name = part.filename
        if name.startswith("xl/worksheets/") and name.endswith(".xml"):
            limit, setting = limits.xlsx_max_sheet_mb, "XLSX_MAX_SHEET_MB"
        elif name.endswith("sharedStrings.xml"):
            limit, setting = limits.xlsx_max_shared_strings_mb, "XLSX_MAX_SHARED_STRINGS_MB"
        elif name.endswith((".xml", ".rels")):
            limit, setting = limits.xlsx_max_part_mb, "XLSX_MAX_PART_MB"
        else:
            limit, setting = None, ""  # pictures and the like: openpyxl does not read them here
        if limit is not None and part.file_size > limit * MB:
            raise ContactImportError(
                f"{path.name}: the part {name} is {part.file_size / MB:.0f} MB uncompressed, "
                f"more than the limit of {limit} MB (WAIHU_IMPORT_{setting})")
        ratio = part.file_size / max(part.compress_size, 1)
        if part.file_size > RATIO_FROM and ratio > limits.xlsx_max_ratio:
            raise ContactImportError(
                f"{path.name}: the part {name} inflates {ratio:.0f} times "
                f"({part.compress_size} bytes to {part.file_size}), more than the limit of "
                f"{limits.xlsx_max_ratio} (WAIHU_IMPORT_XLSX_MAX_RATIO): a zip bomb, refused")


def _xml_refused(path: Path, exc: Exception) -> ContactImportError:
    """The error for XML that defusedxml or the parser refused."""
    from defusedxml import DefusedXmlException

    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, DefusedXmlException):
        cause = cause.__cause__  # openpyxl wraps what it cannot read in a ValueError
    if cause is not None:
        return ContactImportError(
            f"{path.name}: XML entity or DTD declarations are refused ({cause!r}); a workbook "
            "saved by a spreadsheet program has none")
    return ContactImportError(f"{path.name} is not a readable XLSX workbook ({exc})")


@contextmanager
def _xlsx_table(path: Path, sheet: str | None, limits: ImportLimits) -> Iterator[Table]:
    import openpyxl  # only for XLSX lists
    from openpyxl.utils.exceptions import InvalidFileException

    if not openpyxl.DEFUSEDXML:
        raise ContactImportError("XLSX lists are read through defusedxml, which is not "
                                 "installed or is turned off (OPENPYXL_DEFUSEDXML)")
    _check_xlsx_archive(path, limits)
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError,
            ParseError) as exc:
        raise _xml_refused(path, exc) from None
    try:
        if sheet is None:
            worksheet = workbook.worksheets[0]
        elif sheet in workbook.sheetnames:
            worksheet = workbook[sheet]
        else:
            raise ContactImportError(f"no sheet named {sheet!r} in {path.name} (sheets: "
                                     f"{', '.join(workbook.sheetnames)})")
        declared = worksheet.max_row  # the sheet's <dimension>, if it has one
        if declared is not None and declared > limits.max_rows + 1:
            raise ContactImportError(
                f"{path.name} has {declared - 1} rows, more than the limit of "
                f"{limits.max_rows} (WAIHU_IMPORT_MAX_ROWS): split the list")
        # Without this openpyxl pads every row to the declared width: a sheet declaring
        # 16,384 columns would cost that much per row.
        worksheet.reset_dimensions()  # type: ignore[union-attr]
        rows = _xlsx_rows(path, worksheet.iter_rows(values_only=True), limits)
        first = next(rows, None)
        if first is None:
            raise ContactImportError(f"{path.name}: the sheet is empty, no header row")
        yield Table([cell_text(h).strip() for h in first[1]], rows, None)
    finally:
        workbook.close()


def _xlsx_rows(path: Path, rows: Iterator[tuple[Any, ...]],
               limits: ImportLimits) -> Iterator[tuple[int, Row]]:
    """Numbered rows, the header first, within the limits; the sheet's XML is parsed as the
    rows are read, so what defusedxml refuses in it shows up here."""
    number = 0
    try:
        for number, cells in enumerate(rows, start=1):  # noqa: B007 (read after the loop)
            if number > limits.max_rows + 1:
                raise ContactImportError(
                    f"{path.name} has more than {limits.max_rows} rows (WAIHU_IMPORT_MAX_ROWS); "
                    "the rows before are imported: split the list")
            _check_cells(number, cells, limits)
            yield number, cells
    except (ValueError, ParseError, zipfile.BadZipFile) as exc:
        if isinstance(exc, ContactImportError):
            raise
        raise _xml_refused(path, exc) from None


def _first_bytes(path: Path, limits: ImportLimits) -> bytes:
    """The file's first 8 bytes (what it is), once its size is within *limits*."""
    try:
        with path.open("rb") as probe:
            magic = probe.read(8)
            size = os.fstat(probe.fileno()).st_size
    except OSError as exc:
        raise ContactImportError(f"cannot read {path}: {exc.strerror or exc}") from None
    _check_size(path, size, limits)
    return magic
