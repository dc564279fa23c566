"""Figures laid out as a report: a title, summary lines, tables and charts.

Every export format (CSV, XLSX, HTML, PDF) renders the same :class:`Report`, so they all
show the same numbers under the same headings.  Values stay raw (ints, rates as fractions);
each format decides how to print them from the column's kind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from matplotlib.axes import Axes

from bot.reports import charts
from bot.reports.figures import (
    CONFIRMATION_LABELS,
    DECLINE_LABELS,
    SATISFACTION_LEVELS,
    UNGRADED,
    pct,
)

Kind = Literal["text", "int", "rate", "number"]


@dataclass(frozen=True)
class Column:
    title: str
    kind: Kind = "int"


@dataclass(frozen=True)
class Table:
    key: str  # a short ASCII name: CSV section, XLSX sheet suffix
    title: str
    columns: Sequence[Column]
    rows: Sequence[Sequence[Any]]


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    draw: Callable[[Axes], None]
    size: tuple[float, float] = (7.0, 3.6)  # inches


@dataclass(frozen=True)
class Report:
    name: str  # for file names: campaign name or "all"
    title: str
    subtitle: str
    summary: Sequence[tuple[str, Any, Kind]]
    tables: Sequence[Table]
    charts: Sequence[Chart] = field(default_factory=list)


def format_value(value: Any, kind: Kind) -> str:
    """How text formats (CSV, HTML, PDF) print a value."""
    if value is None:
        return "-"
    if kind == "rate":
        return pct(float(value))
    if kind == "number" and isinstance(value, float):
        return f"{value:g}"
    return str(value)


_RATE_COLUMNS = ("dialled", "connected", "consents")
DISPOSITION_LABELS = {"resolved": "已解决", "sale": "成交", "callback": "约定回电",
                      "complaint": "投诉", "wrong_person": "非本人", "other": "其他"}
GRADE_LABELS = {"A": "A 高意向", "B": "B 有意向", "C": "C 一般", "D": "D 无意向",
                UNGRADED: "未评级 ungraded"}


def campaign_report(fig: dict[str, Any]) -> Report:
    """The report of one campaign from :func:`bot.reports.figures.campaign_figures`."""
    summary: list[tuple[str, Any, Kind]] = [
        ("拨打 Dialled", fig["dialled"], "int"),
        ("拨打号码数 Numbers dialled", fig["numbers_dialled"], "int"),
        ("接通 Connected", fig["connected"], "int"),
        ("接通率 Connect rate", fig["connect_rate"], "rate"),
        ("同意 Consents", fig["consents"], "int"),
        ("同意率(占拨打) Consents / dialled", fig["consent_rate_over_dialled"], "rate"),
        ("同意率(占接通) Consents / connected", fig["consent_rate_over_connected"], "rate"),
        ("确认记录 Consent ledger entries", fig["ledger_consents"], "int"),
        ("接通后拒绝 Declined after connect", fig["declined"], "int"),
        ("接通后拒绝率 Declined / connected", fig["declined_after_connect_rate"], "rate"),
        ("未听完挂机 Hung up early", fig["hung_up_early"], "int"),
        ("进行中拨打 Attempts in progress", fig["in_progress"]["attempts"], "int"),
        ("进行中通话 Calls in progress", fig["in_progress"]["calls"], "int"),
        ("转人工 Escalations", fig["escalations"]["total"], "int"),
        ("投诉 Complaint calls", fig["complaints"]["calls"], "int"),
        ("平均通话时长(秒) Mean talk time (s)", fig["talk_time"]["mean_s"], "number"),
        ("通话时长中位数(秒) Median talk time (s)", fig["talk_time"]["median_s"], "number"),
    ]
    declined = sum(fig["decline_reasons"].values())
    tables = [
        Table("decline_reasons", "拒绝原因 Decline reasons",
              [Column("原因 Reason", "text"), Column("代码 Code", "text"),
               Column("次数 Count"), Column("占比 Share", "rate")],
              [[DECLINE_LABELS[r], r, n, n / declined if declined else 0.0]
               for r, n in fig["decline_reasons"].items()]),
        Table("funnel", "转化漏斗 Funnel",
              [Column("环节 Stage", "text"), Column("数量 Count"),
               Column("占拨打 Rate over dialled", "rate")],
              [[f"{s['label']} {s['stage']}", s["count"], s["rate"]] for s in fig["funnel"]]),
        Table("dial_results", "拨打结果 Dial results",
              [Column("结果 Result", "text"), Column("次数 Count")],
              [[k, v] for k, v in fig["dial_results"].items()]),
        Table("outcomes", "通话结果 Outcomes",
              [Column("结果 Outcome", "text"), Column("通数 Calls")],
              [[k, v] for k, v in fig["outcomes"].items()]),
        Table("grades", "意向等级 Grades",
              [Column("等级 Grade", "text"), Column("通数 Calls")],
              [[GRADE_LABELS[g], n] for g, n in fig["grades"].items()]),
        Table("connect_by_hour", "分时接通率 Connect rate by hour",
              [Column(f"小时 Hour ({fig['timezone']})", "text"), Column("拨打 Attempts"),
               Column("接通 Connected"), Column("接通率 Rate", "rate")],
              [[f"{h['hour']:02d}:00", h["attempts"], h["connected"], h["rate"]]
               for h in fig["connect_by_hour"]]),
    ]
    for key, title, head in (("by_age", "年龄段 By age", "年龄段 Age band"),
                             ("by_region", "地区 By region", "地区 Region")):
        if fig[key]:
            tables.append(Table(key, title, [
                Column(head, "text"), Column("名单 Contacts"), Column("拨打 Dialled"),
                Column("接通 Connected"), Column("同意 Consents"),
                Column("同意率(占拨打) / dialled", "rate"),
                Column("同意率(占接通) / connected", "rate")],
                [[r["group"], r["contacts"], r["dialled"], r["connected"], r["consents"],
                  r["consent_rate_over_dialled"], r["consent_rate_over_connected"]]
                 for r in fig[key]]))
    if fig["survey"]:
        tables.append(Table("survey", "问卷评分 Survey scores", [
            Column("问题 Question", "text"), Column("题目 Text", "text"), Column("n"),
            Column("平均分 Mean", "number"), *(Column(f"{s}分") for s in range(1, 6)),
            *(Column(label) for label in SATISFACTION_LEVELS.values())],
            [[q["question"], q["text"], q["n"], q["mean"], *q["counts"].values(),
              *(q["levels"].values() if "levels" in q else [None] * 3)]
             for q in fig["survey"]]))
    comp, esc = fig["complaints"], fig["escalations"]
    tables.append(Table("complaints", "投诉与转人工 Complaints and escalations",
                        [Column("项目 Item", "text"), Column("数量 Count")], [
        ["投诉通话 Complaint calls", comp["calls"]],
        ["其中转人工 of which escalated", comp["escalated"]],
        ["其中号码已拉黑 of which blacklisted", comp["blacklisted"]],
        ["投诉黑名单记录 Complaint blacklist entries", comp["blacklist_entries"]],
        ["仍有效 still active", comp["blacklist_entries_active"]],
        ["投诉记录 Complaints recorded", comp["recorded"]],
        *([f"投诉状态 status: {s}", n] for s, n in comp["by_status"].items()),
        ["转人工合计 Escalations", esc["total"]],
        *([f"转人工原因 reason: {r}", n] for r, n in esc["by_reason"].items()),
        *([f"转人工状态 status: {s}", n] for s, n in esc["by_status"].items()),
    ]))
    desk = fig.get("agent_dispositions")
    if desk and desk["escalated_calls"]:
        tables.append(Table("agent_dispositions", "坐席处理结果 Agent dispositions",
                            [Column("结果 Disposition", "text"), Column("通数 Calls"),
                             Column("占转人工 Share of escalated", "rate")],
                            [[f"{DISPOSITION_LABELS[d]} {d}", n, n / desk["escalated_calls"]]
                             for d, n in desk["by_disposition"].items()]
                            + [["未记录 not recorded", desk["not_recorded"],
                                desk["not_recorded"] / desk["escalated_calls"]]]
                            + ([["其中成交无同意记录 of which sales without a ledger consent",
                                 desk["sales_without_consent"],
                                 desk["sales_without_consent"] / desk["escalated_calls"]]]
                               if desk.get("sales_without_consent") else [])))
    if fig["type"] == "second_confirmation" or any(fig["confirmation_results"].values()):
        tables.append(Table("confirmations", "二次确认 Second confirmation",
                            [Column("结果 Result", "text"), Column("通数 Calls")],
                            [[f"{CONFIRMATION_LABELS[r]} {r}", n]
                             for r, n in fig["confirmation_results"].items()]))
    chart_list = [
        Chart("decline_pie", "拒绝原因 Decline reasons",
              lambda ax: charts.decline_pie(ax, fig["decline_reasons"])),
        Chart("funnel", "转化漏斗 Funnel", lambda ax: charts.funnel_bars(ax, fig["funnel"])),
        Chart("connect_by_hour", "分时接通率 Connect rate by hour",
              lambda ax: charts.hourly_connect(ax, fig["connect_by_hour"], fig["timezone"])),
        Chart("grades", "意向等级 Grades", lambda ax: charts.grade_bars(ax, fig["grades"])),
    ]
    return Report(fig["campaign"], f"外呼活动报表 {fig['campaign']}",
                  f"活动类型 {fig['type']} · 时区 {fig['timezone']}", summary, tables, chart_list)


def period_report(fig: dict[str, Any]) -> Report:
    """The daily or weekly report from :func:`bot.reports.period.period_figures`."""
    kind = {"daily": "日报 Daily report", "weekly": "周报 Weekly report"}.get(
        fig["period"], "报表 Report")
    scope = fig["campaign"] or "全部活动 all campaigns"
    totals = fig["totals"]
    summary: list[tuple[str, Any, Kind]] = [
        ("期间 Period", f"{fig['start']} – {fig['end']}", "text"),
        ("时区 Time zone", fig["timezone"], "text"),
        *_metric_summary(totals),
        ("进行中拨打 Attempts in progress", totals["in_progress"], "int"),
    ]
    columns = [Column("拨打 Calls"), Column("接通 Connected"),
               Column("接通率 Connect rate", "rate"), Column("有效成交 Valid sales"),
               Column("成交率(占接通) / connected", "rate"),
               Column("成交率(占拨打) / dialled", "rate"), Column("投诉通话 Complaint calls"),
               Column("投诉转人工 escalated"), Column("投诉拉黑 blacklisted"),
               Column("投诉记录 Complaints recorded"), Column("未解决 unresolved"),
               Column("转人工 Escalations")]
    tables = [
        Table("days", "按日 By day", [Column("日期 Date", "text"), *columns],
              [[r["date"], *_metric_row(r)] for r in fig["days"]]),
        Table("campaigns", "按活动 By campaign", [Column("活动 Campaign", "text"), *columns],
              [[r["campaign"], *_metric_row(r)] for r in fig["campaigns"]]),
    ]
    chart_list = [Chart("days", "每日拨打、接通与成交 Calls, connected, valid sales per day",
                        lambda ax: charts.daily_bars(ax, fig["days"]))]
    return Report(fig["campaign"] or "all", f"外呼{kind.split()[0]} {fig['label']} · {scope}",
                  f"{kind} · {fig['start']} – {fig['end']} · 时区 {fig['timezone']}",
                  summary, tables, chart_list)


def _metric_summary(row: dict[str, Any]) -> list[tuple[str, Any, Kind]]:
    comp = row["complaints"]
    return [
        ("拨打 Calls", row["calls"], "int"),
        ("接通 Connected", row["connected"], "int"),
        ("接通率 Connect rate", row["connect_rate"], "rate"),
        ("有效成交 Valid sales (consent ledger)", row["valid_sales"], "int"),
        ("成交率(占接通) Valid sales / connected", row["valid_sale_rate"], "rate"),
        ("成交率(占拨打) Valid sales / dialled", row["valid_sale_rate_over_dialled"], "rate"),
        ("投诉 Complaint calls", comp["calls"], "int"),
        ("投诉转人工 Complaints escalated", comp["escalated"], "int"),
        ("投诉拉黑 Complaints blacklisted", comp["blacklisted"], "int"),
        ("投诉记录 Complaints recorded", comp["recorded"], "int"),
        ("投诉未解决 Complaints unresolved", comp["unresolved"], "int"),
        ("转人工 Escalations", row["escalations"], "int"),
    ]


def _metric_row(row: dict[str, Any]) -> list[Any]:
    return [value for _, value, _ in _metric_summary(row)]
