"""The PDF export: matplotlib pages (``PdfPages``) of a report's tables and charts, with the
fonts embedded as TrueType so the Chinese text is real text that can be searched and copied.
Text is drawn without mathtext (a region with two ``$`` in it is not a formula)."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any, BinaryIO


def display_width(text: str) -> int:
    """Display width: CJK characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)



PAGE_W, PAGE_H = 8.27, 11.69  # A4 portrait, inches
MARGIN = 0.6
ROW_H = 0.24


class _PdfFlow:
    """Stacks blocks down A4 pages, starting a new page when the next one does not fit."""

    def __init__(self, pdf: Any) -> None:
        self.pdf = pdf
        self.figure: Any = None
        self.y = 0.0  # inches from the bottom of the page, where the next block ends above
        self.pages = 0

    def room(self, height: float) -> None:
        if self.figure is None or self.y - height < MARGIN:
            self.flush()
            from matplotlib.figure import Figure

            self.figure = Figure(figsize=(PAGE_W, PAGE_H))
            self.pages += 1
            self.figure.text(1 - MARGIN / PAGE_W, 0.4 / PAGE_H, f"{self.pages}",
                             ha="right", fontsize=8, color="#888888")
            self.y = PAGE_H - MARGIN

    def axes(self, height: float, width: float = PAGE_W - 2 * MARGIN,
             left: float = MARGIN) -> Any:
        self.room(height)
        ax = self.figure.add_axes((left / PAGE_W, (self.y - height) / PAGE_H,
                                   width / PAGE_W, height / PAGE_H))
        self.y -= height
        return ax

    def text(self, text: str, size: float, height: float, **style: Any) -> None:
        self.room(height)
        self.figure.text(MARGIN / PAGE_W, (self.y - height * 0.75) / PAGE_H, text,
                         fontsize=size, **style)
        self.y -= height

    def gap(self, height: float) -> None:
        self.y -= height

    def flush(self) -> None:
        if self.figure is not None:
            self.pdf.savefig(self.figure)
            self.figure = None


def _wrap_header(title: str, width: int = 12) -> str:
    """Chinese part on the first line, the English words below, about *width* per line."""
    head, _, rest = title.partition(" ")
    lines = [head]
    for word in rest.split():
        if len(lines) > 1 and display_width(lines[-1]) + 1 + display_width(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "\n".join(lines)


CHAR_W = 0.062  # inches per display column (half a CJK character) at 8 pt
CELL_PAD = 0.14  # inches of padding per cell


def _table_block(flow: _PdfFlow, title: str, headers: Sequence[str],
                 rows: Sequence[Sequence[str]], numeric: Sequence[bool]) -> None:
    """A table under its title, split over pages when long (the header is repeated).

    Columns are as wide as their longest line; a table too wide for the page gets a
    smaller font (down to 5.5 pt) rather than cut text.
    """
    wrapped = [_wrap_header(h) for h in headers]
    header_h = ROW_H * 0.85 * max(h.count("\n") + 1 for h in wrapped)
    widths = [max([display_width(line) for line in wrapped[i].split("\n")]
                  + [display_width(r[i]) for r in rows] + [3]) for i in range(len(headers))]
    room = PAGE_W - 2 * MARGIN
    need = CHAR_W * sum(widths) + CELL_PAD * len(widths)
    scale = min(1.0, max(5.5 / 8, (room - CELL_PAD * len(widths)) / (CHAR_W * sum(widths))))
    inches = [CHAR_W * scale * w + CELL_PAD for w in widths]
    table_w = min(room, sum(inches)) if need > room else sum(inches)
    fractions = [w / sum(inches) for w in inches]
    remaining = list(rows) or [["-"] * len(headers)]
    first = True
    while remaining:
        flow.room(0.35 + header_h + ROW_H * min(len(remaining), 3))
        flow.text(title if first else f"{title}（续）", 11, 0.35)
        fit = max(1, int((flow.y - MARGIN - header_h) / ROW_H))
        chunk, remaining = remaining[:fit], remaining[fit:]
        height = header_h + ROW_H * len(chunk)
        ax = flow.axes(height, width=table_w)
        ax.set_axis_off()
        table = ax.table(cellText=[list(r) for r in chunk], colLabels=wrapped,
                         colWidths=fractions, bbox=(0, 0, 1, 1), cellLoc="left")
        table.auto_set_font_size(False)
        table.set_fontsize(8 * scale)
        for (r, c), cell in table.get_celld().items():
            cell.set_edgecolor("#bbbbbb")
            cell.set_linewidth(0.5)
            cell.PAD = CELL_PAD / 2 / inches[c]
            cell.set_height((header_h if r == 0 else ROW_H) / height)
            if r == 0:
                cell.set_facecolor("#eef4fa")
            elif numeric[c]:
                cell.get_text().set_horizontalalignment("right")
        flow.gap(0.25)
        first = False


def write_pdf(report: Any, stream: BinaryIO) -> None:
    from matplotlib.backends.backend_pdf import PdfPages

    from bot.reports import charts
    from bot.reports.document import format_value

    with charts.chart_style(for_pdf=True), PdfPages(stream, metadata={
            "Title": report.title, "Creator": "waihu", "Subject": report.subtitle}) as pdf:
        flow = _PdfFlow(pdf)
        flow.text(report.title, 16, 0.45)
        flow.text(report.subtitle, 10, 0.3, color="#555555")
        flow.gap(0.15)
        _table_block(flow, "汇总 Summary", ["指标 Figure", "值 Value"],
                     [[label, format_value(value, kind)] for label, value, kind in report.summary],
                     [False, True])
        for chart in report.charts:
            # Room on the left and below the axes for tick labels; the title stays with it.
            height = chart.size[1] * 0.75
            flow.room(0.35 + 0.3 + height + 0.5)
            flow.text(chart.title, 11, 0.35)
            flow.gap(0.3)  # the chart's own title goes here
            chart.draw(flow.axes(height, width=PAGE_W - 2 * MARGIN - 1.6, left=MARGIN + 0.9))
            flow.gap(0.5)
        for table in report.tables:
            _table_block(flow, table.title, [c.title for c in table.columns],
                         [[format_value(v, c.kind) for v, c in zip(row, table.columns,
                                                                   strict=True)]
                          for row in table.rows],
                         [c.kind != "text" for c in table.columns])
        flow.flush()
