"""`waihu import` and `waihu report` as an operator runs them, on hostile files: a zip bomb
and an entity-expansion workbook are refused with a clear message and exit code 2, nothing
imported; formula-like values come out of the XLSX report as text."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from bot.store import Database
from bot.store.models import Contact
from tests.hostile_files import BILLION_LAUGHS, FORMULAS, HEADER, entity_sheet, zip_bomb

REPO = Path(__file__).resolve().parents[2]
WAIHU = Path(sys.executable).with_name("waihu")  # the installed command


def waihu(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(WAIHU), *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO)


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'waihu.db'}"
    done = waihu("--database", url, "campaign", "create",
                 str(REPO / "examples" / "campaigns" / "marketing.yml"))
    assert done.returncode == 0, done.stderr
    return url


def contacts(url: str) -> int:
    database = Database(url)
    try:
        with database.session() as session:
            return session.scalar(select(func.count()).select_from(Contact)) or 0
    finally:
        database.dispose()


@pytest.mark.parametrize("kind", ["zip-bomb", "billion-laughs"])
def test_import_refuses_a_hostile_workbook(url: str, tmp_path: Path, kind: str) -> None:
    if kind == "zip-bomb":
        path, said = zip_bomb(tmp_path / "list.xlsx", megabytes=200), "zip bomb, refused"
    else:
        path = entity_sheet(tmp_path / "list.xlsx", BILLION_LAUGHS, "&lol9;")
        said = "XML entity or DTD declarations are refused"
    done = waihu("--database", url, "import", "vas-call-alert", str(path))
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.strip().splitlines()  # one clear line, no traceback
    assert line.startswith("waihu import: list.xlsx") and said in line
    assert contacts(url) == 0
    assert not (tmp_path / "list.rejects.csv").exists()


def test_formulas_from_a_list_come_out_of_the_xlsx_report_as_text(url: str,
                                                                  tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    with path.open("w", encoding="utf-8", newline="") as stream:
        csv.writer(stream).writerows(
            [HEADER, *([f"1381234{i:04d}", "张伟", "", "", f, "", "", ""]
                       for i, f in enumerate(FORMULAS))])
    done = waihu("--database", url, "import", "vas-call-alert", str(path))
    assert done.returncode == 0, done.stderr
    report = tmp_path / "report.xlsx"
    done = waihu("--database", url, "report", "vas-call-alert", "--format", "xlsx",
                 "--output", str(report))
    assert done.returncode == 0, done.stderr
    book = load_workbook(report)
    cells = [c for ws in book for row in ws.iter_rows() for c in row if c.value is not None]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    regions = {c.value for c in cells if c.quotePrefix}
    assert regions == {f.strip() for f in FORMULAS}
