"""Report exports: json, text, csv, xlsx, html and pdf of campaign or period figures.

``json`` and ``text`` are strings for the terminal; the other formats are files rendered
from one :class:`~bot.reports.document.Report`, so they carry the same tables and charts:

- csv: UTF-8 with BOM (Excel opens it as UTF-8), one section per table, rates as ``62.5%``;
- xlsx: a summary sheet with the decline-reason pie, one sheet per table, a chart sheet;
- html: one self-contained file (inline CSS, charts as inline SVG);
- pdf: matplotlib pages (:mod:`bot.reports.pdf`): tables and charts with the fonts embedded as
  TrueType, so the Chinese text is real text that can be searched and copied.

Text in a report can come from outside (a contact list's regions, a campaign's names): the
CSV and XLSX writers store text through :mod:`bot.safecells`, so nothing in them runs as a
formula, while numbers stay numbers; HTML escapes it; the PDF draws it without mathtext.
Every file is written under a temporary name and renamed (:mod:`bot.safefiles`): a link
planted at the report's name is refused, never written through.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from bot.reports.figures import format_figures
from bot.reports.pdf import display_width, write_pdf
from bot.reports.period import format_period
from bot.safecells import csv_cell, put_text
from bot.safefiles import replacing

FORMATS = ("json", "text", "csv", "xlsx", "html", "pdf")
FILE_FORMATS = ("csv", "xlsx", "html", "pdf")
WEEKLY = "weekly_summary"  # fig["report"] of bot.reports.weekly (not imported: matplotlib)


def render_json(fig: dict[str, Any], indent: int | None = None) -> str:
    return json.dumps(fig, ensure_ascii=False, indent=indent, default=str)


def render_text(fig: dict[str, Any]) -> str:
    if fig.get("report") == WEEKLY:
        from bot.reports.weekly import format_weekly

        return format_weekly(fig)
    return format_period(fig) if "days" in fig else format_figures(fig)


def report_for(fig: dict[str, Any]) -> Any:
    """The :class:`Report` of campaign figures, period figures or the weekly summary."""
    from bot.reports.document import campaign_report, period_report

    if fig.get("report") == WEEKLY:
        from bot.reports.weekly_document import weekly_report

        return weekly_report(fig)
    return period_report(fig) if "days" in fig else campaign_report(fig)


def export(fig: dict[str, Any], fmt: str, path: Path) -> Path:
    """Write *fig* in format *fmt* to *path* (folders are created); returns the path.
    Raises :class:`bot.safefiles.UnsafeOutputPath` when *path* is a symbolic link or not a
    regular file (nothing is written)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as out:
        if fmt == "json":
            out.write((render_json(fig, indent=2) + "\n").encode("utf-8"))
        elif fmt == "text":
            out.write((render_text(fig) + "\n").encode("utf-8"))
        else:
            writers: dict[str, Callable[[Any, BinaryIO], None]] = {
                "csv": write_csv, "xlsx": write_xlsx, "html": write_html, "pdf": write_pdf}
            writers[fmt](report_for(fig), out)
    return path


# --- csv ----------------------------------------------------------------------------------


def _csv_value(value: Any, kind: Any) -> Any:
    """Text as text from outside (neutralised); a number printed for its kind, unquoted."""
    from bot.reports.document import format_value

    return csv_cell(value) if isinstance(value, str) else format_value(value, kind)


def write_csv(report: Any, stream: BinaryIO) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def row(cells: Sequence[Any]) -> None:
        writer.writerow([csv_cell(c) for c in cells])

    row([report.title])
    row([report.subtitle])
    row([])
    row(["汇总 Summary"])
    row(["指标 Figure", "值 Value"])
    for label, value, kind in report.summary:
        writer.writerow([csv_cell(label), _csv_value(value, kind)])
    for table in report.tables:
        row([])
        row([table.title])
        row([c.title for c in table.columns])
        for values in table.rows:
            writer.writerow([_csv_value(v, c.kind) for v, c in zip(values, table.columns,
                                                                   strict=True)])
    # The BOM tells Excel the file is UTF-8 (it assumes the ANSI code page otherwise).
    stream.write(buffer.getvalue().encode("utf-8-sig"))


# --- xlsx ---------------------------------------------------------------------------------


def sheet_name(title: str, taken: set[str]) -> str:
    """The Chinese part of a table title, cut to Excel's 31 characters, made unique."""
    base = "".join(ch for ch in title.split(" ")[0] if ch not in "[]:*?/\\")[:28] or "Sheet"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}{n}", n + 1
    taken.add(name)
    return name


def write_xlsx(report: Any, stream: BinaryIO) -> None:
    from openpyxl import Workbook
    from openpyxl.drawing.image import Image
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.worksheet.worksheet import Worksheet

    from bot.reports import charts

    bold = Font(bold=True)
    header_fill = PatternFill("solid", fgColor="DDEBF7")
    formats = {"rate": "0.0%", "int": "0", "number": "0.0##"}

    def fit(ws: Worksheet, widths: dict[int, int]) -> None:
        for col, width in widths.items():
            ws.column_dimensions[ws.cell(1, col).column_letter].width = min(60, width + 2)

    def put(ws: Worksheet, row: int, col: int, value: Any, kind: str,
            widths: dict[int, int]) -> None:
        cell = ws.cell(row, col)
        if isinstance(value, str):
            put_text(cell, value)  # never a formula
        else:
            cell.value = value
        if kind in formats and isinstance(value, int | float):
            cell.number_format = formats[kind]
        shown = str(value if value is not None else "")
        widths[col] = max(widths.get(col, 0), display_width(shown))

    book = Workbook()
    summary = book.active
    assert summary is not None  # a new workbook has its first sheet
    summary.title = "汇总"
    put_text(summary["A1"], report.title)
    summary["A1"].font = Font(bold=True, size=14)
    put_text(summary["A2"], report.subtitle)
    widths: dict[int, int] = {1: 20}
    for i, (label, value, kind) in enumerate(report.summary, start=4):
        put(summary, i, 1, label, "text", widths)
        put(summary, i, 2, value, kind, widths)
    fit(summary, widths)
    pictures = {chart.key: charts.render_png(chart.draw, chart.size) for chart in report.charts}
    if report.charts:
        first = report.charts[0]  # the decline-reason pie (campaign) or the days (period)
        image = Image(io.BytesIO(pictures[first.key]))
        image.width, image.height = image.width * 0.5, image.height * 0.5
        summary.add_image(image, "D4")

    taken = {"汇总", "图表"}
    for table in report.tables:
        ws = book.create_sheet(sheet_name(table.title, taken))
        put_text(ws["A1"], table.title)
        ws["A1"].font = Font(bold=True, size=12)
        widths = {}
        for col, column in enumerate(table.columns, start=1):
            put(ws, 3, col, column.title, "text", widths)
            ws.cell(3, col).font = bold
            ws.cell(3, col).fill = header_fill
            ws.cell(3, col).alignment = Alignment(wrap_text=True, vertical="center")
        for r, row in enumerate(table.rows, start=4):
            for col, (value, column) in enumerate(zip(row, table.columns, strict=True),
                                                  start=1):
                put(ws, r, col, value, column.kind, widths)
        ws.freeze_panes = "A4"
        fit(ws, widths)

    if report.charts:
        ws = book.create_sheet("图表")
        row = 1
        for chart in report.charts:
            put_text(ws.cell(row, 1), chart.title)
            ws.cell(row, 1).font = bold
            image = Image(io.BytesIO(pictures[chart.key]))
            image.width, image.height = image.width * 0.5, image.height * 0.5
            ws.add_image(image, f"A{row + 1}")
            row += int(image.height / 20) + 3  # default rows are 20 px high
    book.properties.title = report.title
    book.properties.creator = "waihu"
    book.save(stream)


# --- html ---------------------------------------------------------------------------------

_CSS = """
body { font-family: "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "WenQuanYi Micro Hei",
       sans-serif; margin: 2em auto; max-width: 1000px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
.subtitle { color: #666; margin-top: 0; }
.summary { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr));
           gap: 0.6em; margin: 1.5em 0; }
.summary div { border: 1px solid #ddd; border-radius: 6px; padding: 0.5em 0.8em; }
.summary .label { color: #666; font-size: 0.85em; display: block; }
.summary .value { font-size: 1.3em; font-weight: 600; }
figure { margin: 1.5em 0; } figure svg { max-width: 100%; height: auto; }
figcaption { color: #666; font-size: 0.9em; }
table { border-collapse: collapse; margin: 1.5em 0; min-width: 50%; }
caption { text-align: left; font-weight: 600; font-size: 1.1em; padding-bottom: 0.4em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; }
th { background: #eef4fa; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
footer { color: #999; font-size: 0.8em; margin-top: 3em; }
"""


def write_html(report: Any, stream: BinaryIO) -> None:
    from bot.reports import charts
    from bot.reports.document import format_value

    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(report.title)}</h1>", f'<p class="subtitle">{e(report.subtitle)}</p>',
        '<section class="summary">',
    ]
    parts += [f'<div><span class="label">{e(label)}</span>'
              f'<span class="value">{e(format_value(value, kind))}</span></div>'
              for label, value, kind in report.summary]
    parts.append("</section>")
    for chart in report.charts:
        svg = charts.render_svg(chart.draw, chart.size, salt=chart.key)
        parts.append(f'<figure id="chart-{e(chart.key)}" role="img" aria-label="'
                     f'{e(chart.title)}">{svg}<figcaption>{e(chart.title)}</figcaption></figure>')
    for table in report.tables:
        parts.append(f'<table id="{e(table.key)}"><caption>{e(table.title)}</caption><thead><tr>')
        parts += [f"<th>{e(c.title)}</th>" for c in table.columns]
        parts.append("</tr></thead><tbody>")
        for row in table.rows:
            cells = [("<td>" if c.kind == "text" else '<td class="num">')
                     + f"{e(format_value(v, c.kind))}</td>"
                     for v, c in zip(row, table.columns, strict=True)]
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</tbody></table>")
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts.append(f"<footer>waihu report · {made}</footer></body></html>")
    stream.write("\n".join(parts).encode("utf-8"))
