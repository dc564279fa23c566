"""Reading a contact list file: CSV (encoding and delimiter detected) or XLSX, as a header
row and an iterator of numbered rows (:class:`Table`).

Rows stream from the file, so a list of millions of rows never sits in memory; a CSV file is
checked to decode as a whole before its first row is read, so an import never stops half-way
on a bad byte.  Old ``.xls`` files, and options that do not fit the file's kind, are refused
up front.
"""

from __future__ import annotations

import codecs
import csv
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.campaigns.importer.cells import Row, cell_text
from bot.campaigns.importer.errors import ContactImportError


@dataclass
class Table:
    """An open list: its header row, its rows, and the encoding of a CSV file as detected or
    given (None for XLSX)."""

    headers: list[str]
    rows: Iterator[tuple[int, Row]]  # (row number as the user sees it, cells)
    encoding: str | None


@contextmanager
def open_table(path: Path, encoding: str | None, sheet: str | None) -> Iterator[Table]:
    """The list at *path*, XLSX or CSV as its first bytes tell (not its name)."""
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
        yield Table([h.strip() for h in header], _csv_rows(reader), label.get(chosen, chosen))


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
def _xlsx_table(path: Path, sheet: str | None) -> Iterator[Table]:
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
        yield Table([cell_text(h).strip() for h in header],
                     ((number, cells) for number, cells in enumerate(rows, start=2)), None)
    finally:
        workbook.close()


