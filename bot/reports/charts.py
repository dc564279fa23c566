"""Report charts (matplotlib, no pyplot) with Chinese labels, and the font that draws them.

The font is looked up at run time through fontconfig (``fc-list :lang=zh``), falling back to
the fonts matplotlib knows, and checked with fontTools: it must have a glyph for every
Chinese character the charts print.  TrueType-outline fonts (``glyf``, e.g. WenQuanYi Micro
Hei from Debian ``fonts-wqy-microhei``) are preferred: matplotlib embeds them in PDF as
real, extractable text.  CFF-outline fonts (Noto CJK) draw fine in PNG and SVG, but
matplotlib writes them into PDF as a TrueType font that is not one (matplotlib issue
#20870; poppler warns "Mismatch between font type and embedded font file"), so PDF output
requires a TrueType one.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from matplotlib import font_manager, rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bot.reports.figures import DECLINE_LABELS, FUNNEL_LABELS, UNGRADED

# Every Chinese character a chart may print must be in the font.
PROBE = "".join(DECLINE_LABELS.values()) + "".join(FUNNEL_LABELS.values()) + \
    "拒绝原因共次暂无数据转化漏斗占分时接通率小时拨打意向等级未评级通数每日与有效成交日期"
INSTALL_HINT = ("install a TrueType Chinese font, e.g. Debian `fonts-wqy-microhei` "
                "(scripts/setup.sh does)")
COLORS = ["#d9534f", "#f0ad4e", "#5bc0de", "#999999", "#5cb85c", "#337ab7"]


class NoCjkFont(RuntimeError):
    """No installed font can draw the Chinese labels (in the format asked for)."""


@dataclass(frozen=True)
class CjkFont:
    path: str
    index: int  # face in a .ttc collection
    family: str
    truetype: bool  # glyf outlines, embeddable in PDF


def _fontconfig_candidates() -> list[tuple[str, int]]:
    if shutil.which("fc-list") is None:
        return []
    try:
        out = subprocess.run(["fc-list", ":lang=zh", "-f", "%{file}\t%{index}\n"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    found = []
    for line in out.splitlines():
        path, _, index = line.partition("\t")
        if path:
            found.append((path, int(index or 0)))
    return found


def _matplotlib_candidates() -> list[tuple[str, int]]:
    return [(entry.fname, getattr(entry, "index", 0))
            for entry in font_manager.fontManager.ttflist]


def _inspect(path: str, index: int) -> CjkFont | None:
    """The font if it covers :data:`PROBE`, else None (also for unreadable files)."""
    from fontTools.ttLib import TTFont, TTLibError

    try:
        with TTFont(path, fontNumber=index, lazy=True) as font:
            cmap = font.getBestCmap() or {}
            if not all(ord(ch) in cmap for ch in PROBE):
                return None
            family = font["name"].getBestFamilyName() or Path(path).stem
            return CjkFont(path, index, family, "glyf" in font)
    except (OSError, TTLibError, KeyError, ValueError, AssertionError):
        return None


def _preference(font: CjkFont) -> tuple[bool, bool, bool, str]:
    name = font.family.lower()
    sans = any(word in name for word in ("sans", "hei", "gothic"))
    return (not font.truetype, "mono" in name, not sans, font.path)


@lru_cache(maxsize=2)
def find_cjk_font(require_truetype: bool = False) -> CjkFont:
    """The best installed Chinese font; raise :class:`NoCjkFont` with what to install."""
    candidates = _fontconfig_candidates()
    checked = [f for f in (_inspect(p, i) for p, i in dict.fromkeys(candidates)) if f]
    if not checked:  # no fontconfig, or it knows no Chinese font: ask matplotlib's list
        checked = [f for f in (_inspect(p, i) for p, i in dict.fromkeys(
            _matplotlib_candidates())) if f]
    usable = [f for f in checked if f.truetype or not require_truetype]
    if not usable:
        if checked:
            raise NoCjkFont(
                f"the Chinese fonts installed ({', '.join(sorted({f.family for f in checked}))})"
                f" have CFF outlines, which matplotlib cannot embed in PDF; {INSTALL_HINT}")
        raise NoCjkFont(f"no installed font has the Chinese characters of the report charts; "
                        f"{INSTALL_HINT}")
    return sorted(usable, key=_preference)[0]


_registered: set[str] = set()


def _matplotlib_family(font: CjkFont) -> str:
    """Register the font file with matplotlib (once) and return the family it knows it by."""
    if font.path not in _registered:
        known = {entry.fname for entry in font_manager.fontManager.ttflist}
        if font.path not in known:
            font_manager.fontManager.addfont(font.path)
        _registered.add(font.path)
    for entry in font_manager.fontManager.ttflist:
        if entry.fname == font.path and getattr(entry, "index", 0) == font.index:
            return str(entry.name)
    return font.family


@contextmanager
def chart_style(*, for_pdf: bool = False) -> Iterator[CjkFont]:
    """Matplotlib settings for report charts: the Chinese font, real text in PDF and SVG.

    Create *and* save figures inside it: text objects take the font family when created.
    """
    font = find_cjk_font(require_truetype=for_pdf)
    with rc_context({
        "font.family": [_matplotlib_family(font)],
        "font.size": 9,
        "axes.unicode_minus": False,  # the CJK font may lack U+2212
        # Table cells and labels carry text from outside (a list's regions): a "$" in it
        # must print as a dollar sign, not start mathtext that fails to parse.
        "text.parse_math": False,
        "pdf.fonttype": 42,  # embedded TrueType: extractable, searchable text
        "svg.fonttype": "path",  # self-contained: the glyphs travel with the SVG
        "axes.spines.top": False,
        "axes.spines.right": False,
    }):
        yield font


# --- the charts: each draws into an Axes it is given --------------------------------------


def no_data(ax: Axes, title: str) -> None:
    ax.set_title(title)
    ax.text(0.5, 0.5, "暂无数据", ha="center", va="center", fontsize=12, color="#777777",
            transform=ax.transAxes)
    ax.set_axis_off()


def decline_pie(ax: Axes, reasons: dict[str, int]) -> None:
    """Pie of the decline reasons, labelled 不信任来电/价格太高/不需要/其他 with count and %."""
    title = "拒绝原因"
    total = sum(reasons.values())
    if not total:
        no_data(ax, title)
        return
    shown = [(r, n) for r, n in reasons.items() if n]
    ax.pie([n for _, n in shown], startangle=90, counterclock=False,
           colors=[COLORS[list(reasons).index(r) % len(COLORS)] for r, _ in shown],
           labels=[f"{DECLINE_LABELS[r]}\n{n} 次 ({n / total:.1%})" for r, n in shown],
           wedgeprops={"linewidth": 1, "edgecolor": "white"})
    ax.set_title(f"{title} (共 {total} 次)")
    ax.set_aspect("equal")


def funnel_bars(ax: Axes, funnel: Sequence[dict[str, Any]]) -> None:
    """Horizontal bars dialled → consented, each with its count and rate over dialled."""
    labels = [s["label"] for s in funnel]
    counts = [s["count"] for s in funnel]
    ax.barh(range(len(funnel)), counts, color=COLORS[4])
    ax.set_yticks(range(len(funnel)), labels)
    ax.invert_yaxis()
    top = max(counts) or 1
    for i, s in enumerate(funnel):
        ax.text(s["count"] + top * 0.01, i, f"{s['count']} ({s['rate']:.1%})", va="center")
    ax.set_xlim(0, top * 1.25)
    ax.set_title("转化漏斗 (占拨打)")


def hourly_connect(ax: Axes, hours: Sequence[dict[str, Any]], timezone: str) -> None:
    """Connect rate per local hour that had attempts; the number of attempts above each bar."""
    title = f"分时接通率 ({timezone})"
    if not hours:
        no_data(ax, title)
        return
    ax.bar([h["hour"] for h in hours], [h["rate"] * 100 for h in hours], color=COLORS[5])
    for h in hours:
        ax.text(h["hour"], h["rate"] * 100 + 2, f"{h['connected']}/{h['attempts']}",
                ha="center", fontsize=7)
    ax.set_xlim(-0.5, 23.5)
    ax.set_xticks(range(0, 24, 2))
    ax.set_ylim(0, 115)
    ax.set_xlabel("小时")
    ax.set_ylabel("接通率 %")
    ax.set_title(title)


def grade_bars(ax: Axes, grades: dict[str, int]) -> None:
    labels = ["未评级" if g == UNGRADED else g for g in grades]
    ax.bar(labels, list(grades.values()), color=COLORS[:4] + ["#cccccc"])
    for i, n in enumerate(grades.values()):
        ax.text(i, n, str(n), ha="center", va="bottom")
    ax.set_ylabel("通数")
    ax.set_title("意向等级")


def daily_bars(ax: Axes, days: Sequence[dict[str, Any]]) -> None:
    """Calls, connected and valid sales per day, side by side."""
    width = 0.27
    xs = range(len(days))
    for offset, (key, label, color) in enumerate((("calls", "拨打", COLORS[5]),
                                                  ("connected", "接通", COLORS[2]),
                                                  ("valid_sales", "有效成交", COLORS[4]))):
        values = [d[key] for d in days]
        bars = ax.bar([x + (offset - 1) * width for x in xs], values, width, label=label,
                      color=color)
        ax.bar_label(bars, fontsize=7)
    ax.set_xticks(list(xs), [d["date"][5:] for d in days])
    ax.set_xlabel("日期")
    ax.legend(frameon=False)
    ax.set_title("每日拨打、接通与有效成交")


# --- rendering one chart on its own ---------------------------------------------------------


def _figure(draw: Any, size: tuple[float, float]) -> Figure:
    figure = Figure(figsize=size, layout="constrained")
    draw(figure.add_subplot())
    return figure


def render_png(draw: Any, size: tuple[float, float] = (7.0, 3.6), dpi: int = 150) -> bytes:
    """PNG bytes of a chart drawn by ``draw(ax)``."""
    with chart_style():
        buffer = io.BytesIO()
        _figure(draw, size).savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def render_svg(draw: Any, size: tuple[float, float] = (7.0, 3.6), salt: str = "") -> str:
    """An ``<svg>`` element (no XML prolog) of a chart, ready to inline in HTML.

    *salt* makes the ids of one chart differ from another's in the same page.
    """
    with chart_style(), rc_context({"svg.hashsalt": salt or None}):
        buffer = io.StringIO()
        _figure(draw, size).savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg"):]
