"""Report files: csv, xlsx, html, pdf of the seeded figures; the Chinese chart font; and
`waihu report` through ``bot.cli.main``."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from matplotlib import rc_context
from openpyxl import load_workbook

from bot.cli import main
from bot.reports import charts, command
from bot.reports.export import FORMATS, export, sheet_name
from bot.reports.figures import campaign_figures
from bot.reports.period import period_bounds, period_figures
from bot.store import CampaignRepo, Database

from .seeding import DAY, Seeded, seed

LABELS = ("不信任来电", "价格太高", "不需要", "其他")


@pytest.fixture(scope="module")
def seeded_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One seeded SQLite file for the module: exports only read it."""
    url = f"sqlite:///{tmp_path_factory.mktemp('reports') / 'seeded.db'}"
    database = Database(url)
    database.upgrade()
    seed(database)
    database.dispose()
    yield url


@pytest.fixture(scope="module")
def campaign_fig(seeded_url: str) -> dict[str, Any]:
    database = Database(seeded_url)
    with database.session() as session:
        campaign = CampaignRepo(session).by_name(Seeded.marketing)
        assert campaign is not None
        fig = campaign_figures(session, campaign)
    database.dispose()
    return fig


@pytest.fixture(scope="module")
def weekly_fig(seeded_url: str) -> dict[str, Any]:
    database = Database(seeded_url)
    start, end = period_bounds("weekly", DAY)
    with database.session() as session:
        fig = period_figures(session, start=start, end=end, tz="Asia/Shanghai")
    database.dispose()
    return fig


def csv_sections(path: Path) -> dict[str, list[list[str]]]:
    """Title of each section -> its rows (header first)."""
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "Excel needs the UTF-8 BOM"
    sections: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for row in csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")):
        if not row:
            current = None
        elif current is None:
            current = sections.setdefault(row[0], [])
        else:
            current.append(row)
    return sections


# --- csv ----------------------------------------------------------------------------------


def test_csv(tmp_path: Path, campaign_fig: dict[str, Any]) -> None:
    sections = csv_sections(export(campaign_fig, "csv", tmp_path / "r.csv"))
    assert sections["拒绝原因 Decline reasons"] == [
        ["原因 Reason", "代码 Code", "次数 Count", "占比 Share"],
        ["不信任来电", "distrust", "1", "16.7%"], ["价格太高", "too_expensive", "3", "50.0%"],
        ["不需要", "not_needed", "1", "16.7%"], ["其他", "other", "1", "16.7%"]]
    summary = dict(row for row in sections["汇总 Summary"][1:])
    assert summary["拨打 Dialled"] == "25" and summary["接通率 Connect rate"] == "60.0%"
    assert sections["转化漏斗 Funnel"][-1] == ["同意 consented", "3", "12.0%"]
    assert sections["地区 By region"][1][:5] == ["广州", "8", "10", "6", "3"]
    assert "二次确认 Second confirmation" not in sections  # not a second-confirmation campaign


def test_csv_of_a_week(tmp_path: Path, weekly_fig: dict[str, Any]) -> None:
    sections = csv_sections(export(weekly_fig, "csv", tmp_path / "w.csv"))
    days = sections["按日 By day"]
    assert len(days) == 1 + 7
    assert days[3][:6] == ["2026-11-18", "26", "17", "65.4%", "2", "11.8%"]
    assert [r[0] for r in sections["按活动 By campaign"][1:]] == [
        "seed-confirm", "seed-marketing", "seed-survey"]


# --- xlsx ---------------------------------------------------------------------------------


def test_xlsx(tmp_path: Path, campaign_fig: dict[str, Any]) -> None:
    book = load_workbook(export(campaign_fig, "xlsx", tmp_path / "r.xlsx"))
    assert book.sheetnames == ["汇总", "拒绝原因", "转化漏斗", "拨打结果", "通话结果",
                               "意向等级", "分时接通率", "年龄段", "地区", "投诉与转人工",
                               "坐席处理结果", "图表"]
    summary = book["汇总"]
    assert (summary["A4"].value, summary["B4"].value) == ("拨打 Dialled", 25)
    assert (summary["B7"].value, summary["B7"].number_format) == (0.6, "0.0%")
    assert len(summary._images) == 1  # the decline-reason pie
    assert len(book["图表"]._images) == 4
    reasons = book["拒绝原因"]
    assert [c.value for c in reasons[5]] == ["价格太高", "too_expensive", 3, 0.5]
    hours = book["分时接通率"]
    assert [c.value for c in hours[4]] == ["00:00", 1, 0, 0.0]


def test_xlsx_of_a_week(tmp_path: Path, weekly_fig: dict[str, Any]) -> None:
    book = load_workbook(export(weekly_fig, "xlsx", tmp_path / "w.xlsx"))
    assert book.sheetnames == ["汇总", "按日", "按活动", "图表"]
    assert [c.value for c in book["按活动"][5]][:4] == ["seed-marketing", 24, 15, 0.625]


def test_sheet_names_are_valid_and_unique() -> None:
    taken = {"汇总"}
    assert sheet_name("汇总 Summary", taken) == "汇总2"
    assert sheet_name("a/b:c? long " + "x" * 40, taken) == "abc"
    assert len(sheet_name("长" * 40 + " x", taken)) <= 31


# --- html ---------------------------------------------------------------------------------


def test_html_is_one_self_contained_file(tmp_path: Path, campaign_fig: dict[str, Any]) -> None:
    text = export(campaign_fig, "html", tmp_path / "r.html").read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and '<html lang="zh-CN">' in text
    for label in LABELS:
        assert label in text
    assert text.count("<svg") == 4 and "<style>" in text
    assert "<link" not in text and "<script" not in text and 'src="http' not in text
    assert 'href="http' not in text.replace('xmlns:xlink="http', "")
    assert "<td>价格太高</td><td>too_expensive</td>" in text


# --- pdf ----------------------------------------------------------------------------------


def pdftotext(path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (Debian poppler-utils) is not installed")
    done = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                          text=True, check=True)
    assert "Mismatch" not in done.stderr, done.stderr  # a font poppler cannot read as embedded
    return done.stdout


def test_pdf_has_the_chinese_labels_as_text(tmp_path: Path,
                                            campaign_fig: dict[str, Any]) -> None:
    path = export(campaign_fig, "pdf", tmp_path / "r.pdf")
    assert path.read_bytes().startswith(b"%PDF")
    text = pdftotext(path)
    for label in (*LABELS, "外呼活动报表 seed-marketing", "转化漏斗", "核实身份", "广州"):
        assert label in text, label
    assert "3 次 (50.0%)" in text  # the pie's label of 价格太高


def test_pdf_of_a_week(tmp_path: Path, weekly_fig: dict[str, Any]) -> None:
    text = pdftotext(export(weekly_fig, "pdf", tmp_path / "w.pdf"))
    assert "外呼周报 2026-W47" in text and "seed-marketing" in text and "有效成交" in text


# --- the chart font -----------------------------------------------------------------------


def test_pie_chart_png_has_every_chinese_glyph(campaign_fig: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)"
        png = charts.render_png(lambda ax: charts.decline_pie(ax, campaign_fig["decline_reasons"]))
    assert png.startswith(b"\x89PNG")


def test_the_glyph_check_would_catch_a_latin_font() -> None:
    """The test above means something: without the CJK font, matplotlib does warn."""
    from matplotlib.figure import Figure

    figure = Figure()
    with rc_context({"font.family": ["DejaVu Sans"]}):
        figure.add_subplot().set_title("价格太高")
        with pytest.warns(UserWarning, match="missing from font"):
            figure.savefig(io.BytesIO(), format="png")


def test_the_pdf_font_is_truetype() -> None:
    font = charts.find_cjk_font(require_truetype=True)
    assert font.truetype and Path(font.path).exists()


@pytest.fixture
def no_font_cache() -> Iterator[None]:
    charts.find_cjk_font.cache_clear()
    yield
    charts.find_cjk_font.cache_clear()


def test_no_chinese_font_is_explained(monkeypatch: pytest.MonkeyPatch,
                                      no_font_cache: None) -> None:
    monkeypatch.setattr(charts, "_fontconfig_candidates", lambda: [])
    monkeypatch.setattr(charts, "_matplotlib_candidates", lambda: [])
    with pytest.raises(charts.NoCjkFont, match="fonts-wqy-microhei"):
        charts.find_cjk_font()


def test_cff_fonts_are_refused_for_pdf(monkeypatch: pytest.MonkeyPatch,
                                       no_font_cache: None) -> None:
    cff = [(p, 2) for p in ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",)
           if Path(p).exists()]
    if not cff:
        pytest.skip("Noto Sans CJK (Debian fonts-noto-cjk) is not installed")
    monkeypatch.setattr(charts, "_fontconfig_candidates", lambda: cff)
    assert charts.find_cjk_font().family == "Noto Sans CJK SC"  # fine for PNG and SVG
    with pytest.raises(charts.NoCjkFont, match="CFF outlines"):
        charts.find_cjk_font(require_truetype=True)


# --- waihu report ----------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> tuple[int, str, str]:
    code = main(["--database", url, "report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_campaign_json_and_text(seeded_url: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, seeded_url, "seed-marketing", "--format", "json")
    fig = json.loads(out)
    assert code == 0 and (fig["dialled"], fig["connected"], fig["consents"]) == (25, 15, 3)
    code, out, _ = run(capsys, seeded_url, "seed-marketing")
    assert code == 0 and "接通率 60.0%" in out


def test_cli_daily_and_weekly(seeded_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, seeded_url, "seed-marketing", "--period", "daily",
                       "--date", "2026-11-19", "--format", "json")
    fig = json.loads(out)
    assert code == 0 and (fig["label"], fig["totals"]["calls"]) == ("2026-11-19", 3)
    code, out, _ = run(capsys, seeded_url, "--all", "--period", "weekly", "--date",
                       "2026-11-18", "--format", "json")
    fig = json.loads(out)
    assert code == 0 and (fig["label"], fig["campaign"], fig["totals"]["calls"]) == (
        "2026-W47", None, 32)
    code, out, _ = run(capsys, seeded_url, "--all", "--period", "daily", "--date",
                       "2026-11-18")
    assert code == 0 and out.startswith("日报 2026-11-18")


def test_cli_daily_defaults_to_today_in_the_campaign_zone(
        seeded_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, seeded_url, "seed-marketing", "--period", "daily",
                       "--format", "json")
    assert code == 0
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    assert json.loads(out)["start"] in (today.isoformat(), date.today().isoformat())


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f not in ("json", "text")])
def test_cli_writes_files_to_var_reports(fmt: str, seeded_url: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(command, "REPORTS_DIR", tmp_path / "reports")
    code, out, _ = run(capsys, seeded_url, "seed-marketing", "--format", fmt)
    assert code == 0
    path = Path(out.strip())
    assert path == tmp_path / "reports" / f"seed-marketing-campaign.{fmt}"
    assert path.stat().st_size > 1000


def test_cli_output_path(seeded_url: str, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out" / "week.xlsx"
    code, out, _ = run(capsys, seeded_url, "--all", "--period", "weekly", "--date",
                       "2026-11-20", "--format", "xlsx", "--output", str(target))
    assert code == 0 and out.strip() == str(target)
    # --period weekly is the weekly client summary (bot/reports/weekly.py, test_weekly.py)
    assert load_workbook(target).sheetnames == ["汇总", "质检结果（按规则）", "拒绝原因",
                                                "投诉与处理", "坐席业绩（全部活动）", "按日",
                                                "按活动", "图表"]
    code, out, _ = run(capsys, seeded_url, "seed-survey", "--format", "json",
                       "--output", str(tmp_path / "s.json"))
    assert code == 0 and out.strip() == str(tmp_path / "s.json")
    assert json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))["survey"][0]["n"] == 4


def test_cli_default_file_names_of_periods(seeded_url: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(command, "REPORTS_DIR", tmp_path)
    _, out, _ = run(capsys, seeded_url, "--all", "--period", "weekly", "--date", "2026-11-18",
                    "--format", "csv")
    assert Path(out.strip()).name == "all-weekly-2026-W47.csv"
    _, out, _ = run(capsys, seeded_url, "seed-survey", "--period", "daily", "--date",
                    "2026-11-18", "--format", "csv")
    assert Path(out.strip()).name == "seed-survey-daily-2026-11-18.csv"


@pytest.mark.parametrize(("args", "message"), [
    ([], "name one campaign, or use --all"),
    (["seed-marketing", "--all", "--period", "daily"], "name one campaign, or use --all"),
    (["--all"], "--all needs --period daily or --period weekly"),
    (["seed-marketing", "--date", "2026-11-18"], "--date and --tz apply to"),
    (["nope"], "no campaign named 'nope'"),
    (["seed-marketing", "--period", "daily", "--tz", "Mars/Base"], "unknown time zone"),
])
def test_cli_errors(args: list[str], message: str, seeded_url: str,
                    capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, seeded_url, *args)
    assert code == 2 and message in err


def test_cli_without_a_chinese_font(seeded_url: str, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    def missing(require_truetype: bool = False) -> charts.CjkFont:
        raise charts.NoCjkFont("no installed font has the Chinese characters; install …")

    monkeypatch.setattr(charts, "find_cjk_font", missing)
    code, _, err = run(capsys, seeded_url, "seed-marketing", "--format", "pdf", "--output",
                       str(tmp_path / "r.pdf"))
    assert code == 2 and "cannot draw the charts: no installed font" in err
