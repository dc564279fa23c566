"""Bad files do no harm (issue 13, item 4): formula-like values from a list come out of the
reports and the rejects file as text; zip bombs, entity declarations, binary and oversized
files are refused with a clear error and bounded memory; nothing is written through a link
planted where the rejects file or a report goes."""

from __future__ import annotations

import csv
import io
import os
import resource
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from bot.campaigns.definition import load_definition
from bot.campaigns.importer import ContactImportError, import_contacts
from bot.campaigns.importer.limits import ImportLimits
from bot.campaigns.importer.reading import open_table
from bot.campaigns.registry import save_campaign
from bot.cli import main
from bot.reports.document import Column, Report, Table
from bot.reports.export import export, sheet_name, write_csv, write_xlsx
from bot.reports.figures import campaign_figures
from bot.safecells import neutralise
from bot.safefiles import UnsafeOutputPath
from bot.store import CampaignRepo, Database
from bot.store.models import Contact
from tests.hostile_files import (
    BILLION_LAUGHS,
    EXTERNAL_ENTITY,
    FORMULAS,
    HEADER,
    swap_part,
    workbook,
    zip_bomb,
)
from tests.hostile_files import entity_sheet as entity_workbook

REPO = Path(__file__).resolve().parents[3]
MARKETING = REPO / "examples" / "campaigns" / "marketing.yml"
CAMPAIGN = "vas-call-alert"


@pytest.fixture
def marketing(sqlite_db: Database) -> Database:
    save_campaign(sqlite_db, load_definition(MARKETING))
    return sqlite_db


def contact_count(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(Contact)) or 0


def write_list(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as stream:
        csv.writer(stream).writerows([HEADER, *rows])
    return path


def hostile_list(path: Path) -> Path:
    """Good rows whose region and plan are formulas, and bad-phone rows whose name is one."""
    good = [[f"1381234{i:04d}", "张伟", "男", "40", f, "", f, ""] for i, f in enumerate(FORMULAS)]
    bad = [["123", f, "", "", "", "", "", ""] for f in FORMULAS]
    return write_list(path, good + bad)


# --- formula injection ---------------------------------------------------------------------


def test_the_rule() -> None:
    for formula in FORMULAS:
        assert neutralise(formula) == "'" + formula
    for text in ("张伟", "北京", "1+1", "'=1", " =1", "", "SUM(1)"):
        assert neutralise(text) == text


def test_formulas_in_a_list_come_out_of_reports_and_rejects_as_text(
        marketing: Database, tmp_path: Path) -> None:
    summary = import_contacts(marketing, CAMPAIGN, hostile_list(tmp_path / "list.csv"))
    assert (summary.imported, summary.rejected) == (len(FORMULAS), len(FORMULAS))

    # The rejects file: the raw cells, each behind a quote.
    assert summary.rejects_file is not None
    with open(summary.rejects_file, encoding="utf-8-sig", newline="") as stream:
        names = [row["姓名"] for row in csv.DictReader(stream)]
    assert names == ["'" + f for f in FORMULAS]

    with marketing.session() as session:
        campaign = CampaignRepo(session).by_name(CAMPAIGN)
        assert campaign is not None
        fig = campaign_figures(session, campaign)
    stored = {f.strip() for f in FORMULAS}  # the importer trims cells
    assert {r["group"] for r in fig["by_region"]} == stored

    # CSV report: the regions behind a quote, the counts plain numbers.
    with export(fig, "csv", tmp_path / "r.csv").open(encoding="utf-8-sig", newline="") as f:
        lines = list(csv.reader(f))
    start = lines.index(["地区 By region"]) + 2
    regions = lines[start:start + len(stored)]
    assert {r[0] for r in regions} == {"'" + s for s in stored}
    assert all(r[1] == "1" for r in regions)  # contacts: a number, unquoted

    # XLSX report: no formula anywhere; the regions are text cells with Excel's quote flag.
    book = load_workbook(export(fig, "xlsx", tmp_path / "r.xlsx"))
    assert [c.coordinate for ws in book for row in ws.iter_rows() for c in row
            if c.data_type == "f"] == []
    ws = book[sheet_name("地区 By region", set())]
    cells = [ws.cell(r, 1) for r in range(4, 4 + len(stored))]
    assert {c.value for c in cells} == stored
    assert all(c.data_type == "s" and c.quotePrefix for c in cells)
    assert all(ws.cell(r, 2).data_type == "n" for r in range(4, 4 + len(stored)))


def test_numbers_stay_numbers_and_text_is_neutralised() -> None:
    report = Report("t", "=title", "-subtitle", [("余额 Balance", -12.5, "number")], [
        Table("amounts", "金额 Amounts", [Column("名称 Name", "text"), Column("金额 Amount"),
                                        Column("比例 Rate", "rate")],
              [["-2+3", -5, -0.25], ["@SUM(1)", 7, 0.5]])])
    out = io.BytesIO()
    write_csv(report, out)
    rows = list(csv.reader(io.StringIO(out.getvalue().decode("utf-8-sig"), newline="")))
    assert rows[0] == ["'=title"] and rows[1] == ["'-subtitle"]
    assert ["余额 Balance", "-12.5"] in rows
    assert ["'-2+3", "-5", "-25.0%"] in rows and ["'@SUM(1)", "7", "50.0%"] in rows

    out = io.BytesIO()
    write_xlsx(report, out)
    book = load_workbook(io.BytesIO(out.getvalue()))
    summary = book["汇总"]
    assert (summary["A1"].value, summary["A1"].data_type) == ("=title", "s")
    assert (summary["B4"].value, summary["B4"].data_type) == (-12.5, "n")
    ws = book["金额"]
    assert [(c.value, c.data_type) for c in ws[4]] == [("-2+3", "s"), (-5, "n"), (-0.25, "n")]
    assert ws["A4"].quotePrefix and not ws["B4"].quotePrefix


def test_html_escapes_and_pdf_draws_hostile_text(marketing: Database, tmp_path: Path) -> None:
    hostile = ["<img src=x onerror=alert(1)>", r"$\frac{a}$ 元"]
    write_list(tmp_path / "list.csv",
               [[f"1391234{i:04d}", "王芳", "女", "30", h, "", "", ""]
                for i, h in enumerate(hostile)])
    import_contacts(marketing, CAMPAIGN, tmp_path / "list.csv")
    with marketing.session() as session:
        campaign = CampaignRepo(session).by_name(CAMPAIGN)
        assert campaign is not None
        fig = campaign_figures(session, campaign)
    page = export(fig, "html", tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    # Two "$" in a region started matplotlib's mathtext, which failed to parse it.
    assert export(fig, "pdf", tmp_path / "r.pdf").read_bytes().startswith(b"%PDF")


# --- XLSX limits ---------------------------------------------------------------------------


def test_a_zip_bomb_is_refused_quickly_in_bounded_memory(marketing: Database,
                                                         tmp_path: Path) -> None:
    bomb = zip_bomb(tmp_path / "bomb.xlsx", megabytes=300)
    assert bomb.stat().st_size < 2 << 20  # 300 MB of sheet in under 2 MB
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(ContactImportError, match="inflates .* times.*zip bomb"):
            import_contacts(marketing, CAMPAIGN, bomb)
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert elapsed < 5
    assert peak < 200 << 20 and grown_mb < 200
    assert contact_count(marketing) == 0


def test_parts_over_their_size_limit_are_refused(tmp_path: Path) -> None:
    path = workbook(tmp_path / "big.xlsx", [HEADER])
    noise = os.urandom(1 << 20).hex().encode()  # 2 MB that hardly compress
    swap_part(path, "xl/worksheets/sheet1.xml", [noise])
    with pytest.raises(ContactImportError, match=r"sheet1.xml is 2 MB .*limit of 1 MB "
                                                 r"\(WAIHU_IMPORT_XLSX_MAX_SHEET_MB\)"), \
            open_table(path, None, None, ImportLimits(xlsx_max_sheet_mb=1)):
        pass
    swap_part(path, "xl/sharedStrings.xml", [noise])
    with pytest.raises(ContactImportError, match="WAIHU_IMPORT_XLSX_MAX_SHARED_STRINGS_MB"), \
            open_table(path, None, None, ImportLimits(xlsx_max_shared_strings_mb=1)):
        pass
    with pytest.raises(ContactImportError, match="WAIHU_IMPORT_MAX_FILE_MB"), \
            open_table(path, None, None, ImportLimits(max_file_mb=1)):
        pass


@pytest.mark.parametrize(("doctype", "reference"), [(BILLION_LAUGHS, "&lol9;"),
                                                    (EXTERNAL_ENTITY, "&xxe;")],
                         ids=["billion-laughs", "external-entity"])
def test_entity_declarations_are_refused(marketing: Database, tmp_path: Path, doctype: str,
                                         reference: str) -> None:
    path = entity_workbook(tmp_path / "lol.xlsx", doctype, reference)
    with pytest.raises(ContactImportError, match="XML entity or DTD declarations are refused"):
        import_contacts(marketing, CAMPAIGN, path)
    assert contact_count(marketing) == 0


def test_entities_in_the_workbook_part_are_refused(marketing: Database, tmp_path: Path) -> None:
    path = workbook(tmp_path / "lol.xlsx", [HEADER])
    with zipfile.ZipFile(path) as archive:
        xml = archive.read("xl/workbook.xml").decode()
    if xml.startswith("<?xml"):
        xml = xml.split("?>", 1)[1]
    swap_part(path, "xl/workbook.xml", [(BILLION_LAUGHS + xml).encode()])
    with pytest.raises(ContactImportError, match="XML entity or DTD declarations are refused"):
        import_contacts(marketing, CAMPAIGN, path)


def test_xlsx_rows_cells_and_columns_within_limits(marketing: Database, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [HEADER] + [[f"1381234{i:04d}", "张伟", "", "", "", "", "", ""]
                                           for i in range(5)]
    path = workbook(tmp_path / "list.xlsx", rows)
    monkeypatch.setenv("WAIHU_IMPORT_MAX_ROWS", "3")
    with pytest.raises(ContactImportError, match="5 rows, more than the limit of 3"):
        import_contacts(marketing, CAMPAIGN, path)
    assert contact_count(marketing) == 0
    monkeypatch.delenv("WAIHU_IMPORT_MAX_ROWS")
    workbook(path, [HEADER, ["13812340000", "张" * 60, "", "", "", "", "", ""]])
    monkeypatch.setenv("WAIHU_IMPORT_MAX_CELL_CHARS", "50")
    with pytest.raises(ContactImportError, match="row 2, column 2: a cell of 60 characters"):
        import_contacts(marketing, CAMPAIGN, path)


def test_a_sheet_declaring_every_column_and_a_million_rows_imports_quickly(
        marketing: Database, tmp_path: Path) -> None:
    path = workbook(tmp_path / "wide.xlsx",
                    [HEADER, ["13812340000", "张伟", "", "", "", "", "", ""]])
    with zipfile.ZipFile(path) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode()
    xml = xml.replace('<dimension ref="A1:H2"', '<dimension ref="A1:XFD1000000"')
    assert "XFD1000000" in xml
    swap_part(path, "xl/worksheets/sheet1.xml", [xml.encode()])
    started = time.monotonic()
    assert import_contacts(marketing, CAMPAIGN, path).imported == 1
    assert time.monotonic() - started < 10


# --- CSV limits ----------------------------------------------------------------------------


def test_a_binary_file_is_not_csv(marketing: Database, tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 64)
    with pytest.raises(ContactImportError, match=r"list.csv is a binary file, not CSV text "
                                                 r"\(a NUL byte at byte 7\)"):
        import_contacts(marketing, CAMPAIGN, path)
    # UTF-16 text without a BOM has NUL bytes too: with its encoding named, it imports.
    path.write_bytes(("手机号,姓名\n13812345678,张伟\n").encode("utf-16-le"))
    with pytest.raises(ContactImportError, match="pass --encoding utf-16-le"):
        import_contacts(marketing, CAMPAIGN, path)
    assert import_contacts(marketing, CAMPAIGN, path, encoding="utf-16-le").imported == 1


def test_csv_lines_rows_and_cells_within_limits(marketing: Database, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "list.csv"
    path.write_text(",".join(HEADER) + "\n" + "x" * 3000, encoding="utf-8")
    monkeypatch.setenv("WAIHU_IMPORT_MAX_LINE_KB", "2")
    with pytest.raises(ContactImportError, match="a line longer than 2 KB"):
        import_contacts(marketing, CAMPAIGN, path)
    monkeypatch.delenv("WAIHU_IMPORT_MAX_LINE_KB")

    write_list(path, [[f"1381234{i:04d}", "张伟", "", "", "", "", "", ""] for i in range(5)])
    monkeypatch.setenv("WAIHU_IMPORT_MAX_ROWS", "3")
    with pytest.raises(ContactImportError, match="6 lines, more than the limit of 3 rows"):
        import_contacts(marketing, CAMPAIGN, path)
    assert contact_count(marketing) == 0
    monkeypatch.delenv("WAIHU_IMPORT_MAX_ROWS")

    write_list(path, [["13812340000", "张" * 60, "", "", "", "", "", ""]])
    monkeypatch.setenv("WAIHU_IMPORT_MAX_CELL_CHARS", "50")
    with pytest.raises(ContactImportError, match="row 2, column 2: a cell of 60 characters"):
        import_contacts(marketing, CAMPAIGN, path)
    monkeypatch.setenv("WAIHU_IMPORT_MAX_CELL_CHARS", "many")
    with pytest.raises(ContactImportError, match="WAIHU_IMPORT_MAX_CELL_CHARS='many' is not"):
        import_contacts(marketing, CAMPAIGN, path)


def test_dnc_import_refuses_a_binary_file(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "dnc.csv"
    path.write_bytes(b"phone\n" + b"\0" * 100_000)
    url = f"sqlite:///{tmp_path / 'dnc.db'}"
    assert main(["--database", url, "dnc", "import", str(path), "--by", "ops"]) == 2
    assert "dnc.csv is a binary file, not CSV text" in capsys.readouterr().err


# --- no writing through a planted link -----------------------------------------------------


def test_a_link_planted_at_the_rejects_file_is_refused(marketing: Database,
                                                       tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    listing = hostile_list(tmp_path / "list.csv")
    (tmp_path / "list.rejects.csv").symlink_to(victim)
    with pytest.raises(ContactImportError, match="list.rejects.csv is a symbolic link: not "
                                                 "writing through it"):
        import_contacts(marketing, CAMPAIGN, listing)
    assert victim.read_text() == "precious\n"
    assert contact_count(marketing) == 0  # refused before the first row
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_a_hard_link_at_the_rejects_file_is_replaced_not_written_into(
        marketing: Database, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    rejects = tmp_path / "list.rejects.csv"
    os.link(victim, rejects)
    summary = import_contacts(marketing, CAMPAIGN, hostile_list(tmp_path / "list.csv"))
    assert summary.rejected == len(FORMULAS)
    assert victim.read_text() == "precious\n"
    assert rejects.read_text(encoding="utf-8-sig").startswith("row,reason,")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_a_link_planted_at_a_report_is_refused(marketing: Database, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    with marketing.session() as session:
        campaign = CampaignRepo(session).by_name(CAMPAIGN)
        assert campaign is not None
        fig = campaign_figures(session, campaign)
    for fmt in ("csv", "xlsx", "json"):
        link = tmp_path / f"report.{fmt}"
        link.symlink_to(victim)
        with pytest.raises(UnsafeOutputPath, match="is a symbolic link"):
            export(fig, fmt, link)
    link = tmp_path / "report.html"
    link.symlink_to(victim)
    assert main(["--database", str(marketing.url), "report", CAMPAIGN, "--format", "html",
                 "--output", str(link)]) == 2
    assert "report.html is a symbolic link" in capsys.readouterr().err
    assert victim.read_text() == "precious\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
