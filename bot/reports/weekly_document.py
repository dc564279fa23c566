"""The weekly client summary laid out as a :class:`~bot.reports.document.Report`: the period
report's summary, days and campaigns, then sales after QA, QA results by rule, decline
reasons, complaints and their handling, and the agents, so every export format (CSV, XLSX,
HTML, PDF) and the console page show the same tables."""

from __future__ import annotations

from typing import Any

from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

from bot.reports import charts
from bot.reports.document import Chart, Column, Kind, Report, Table, period_report
from bot.reports.weekly import RULE_LABELS
from bot.store.vocab import DECLINE_REASONS

STATUS_LABELS = {"new": "新投诉 new", "contacted": "已联系 contacted",
                 "resolved": "已解决 resolved"}
SEVERITY_LABELS = {"low": "轻微 low", "medium": "一般 medium", "high": "严重 high"}
CAUSE_LABELS = {"value": "价值 value", "system": "系统 system", "people": "人员 people",
                "unknown": "未定 not yet known"}
DECISION_LABELS = {"serious": "严重（拉黑） serious", "not_serious": "不严重 not serious",
                   "undecided": "未决定 undecided"}


def _rule_bars(ax: Axes, by_rule: list[dict[str, Any]]) -> None:
    """Passed and failed reviews of each of the four rules, side by side."""
    title = "各规则质检结果"
    if not any(r["reviewed"] for r in by_rule):
        charts.no_data(ax, title)
        return
    xs = range(len(by_rule))
    for offset, (key, label, color) in enumerate((("passed", "通过", charts.COLORS[4]),
                                                  ("failed", "未通过", charts.COLORS[0]))):
        bars = ax.bar([x + (offset - 0.5) * 0.4 for x in xs], [r[key] for r in by_rule],
                      0.4, label=label, color=color)
        ax.bar_label(bars, fontsize=7)
    ax.set_xticks(list(xs), [RULE_LABELS[r["rule"]].split(" ")[0] for r in by_rule])
    ax.set_ylabel("评审数")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # reviews come whole
    ax.set_ylim(0, max(r["reviewed"] for r in by_rule) * 1.35)  # room for the legend
    ax.legend(frameon=False, loc="upper right", ncols=2)
    ax.set_title(title)


def weekly_report(fig: dict[str, Any]) -> Report:
    """The report of :func:`bot.reports.weekly.weekly_figures`."""
    base = period_report(fig)
    sales, qa, comp, agents = (fig["sales"], fig["qa"], fig["complaint_handling"],
                               fig["agents"])
    summary: list[tuple[str, Any, Kind]] = [
        *base.summary,
        ("确认记录成交 Sales in the consent ledger", sales["ledger"], "int"),
        ("质检不合规成交 Sales QA found non-compliant", sales["non_compliant"], "int"),
        ("质检抽样 Calls sampled for QA", qa["sampled"], "int"),
        ("质检评审 Calls reviewed", qa["reviewed"], "int"),
        ("质检合规率 QA compliance rate", qa["compliance_rate"], "rate"),
        ("投诉记录 Complaints recorded", comp["recorded"], "int"),
        ("投诉超时未处理 Complaints overdue now", comp["overdue_now"], "int"),
        ("坐席 Agents", agents["team"]["agents"], "int"),
    ]
    reasons = fig["decline_reasons"]
    counts = {r["reason"]: r["count"] for r in reasons}
    team = agents["team"]
    # What the client reads first; the period's tables by day and campaign follow.
    tables = [
        Table("qa_rules", "质检结果（按规则） QA results by rule",
              [Column("规则 Rule", "text"), Column("评审 Reviewed"), Column("通过 Passed"),
               Column("未通过 Failed"), Column("通过率 Pass rate", "rate"),
               Column("得分率 Points", "rate")],
              [[RULE_LABELS[r["rule"]], r["reviewed"], r["passed"], r["failed"],
                r["pass_rate"], r["points_share"]] for r in qa["by_rule"]]
              + [["一票否决 Instant fail", qa["instant_fails"], None, None, None, None],
                 ["无评分表 No scorecard", qa["without_scorecard"], None, None, None, None],
                 ["合计 All reviews", qa["reviewed"], qa["compliant"], qa["non_compliant"],
                  qa["compliance_rate"], None]]),
        Table("decline_reasons", "拒绝原因 Decline reasons (most common first)",
              [Column("原因 Reason", "text"), Column("代码 Code", "text"),
               Column("次数 Count"), Column("占比 Share", "rate")],
              [[r["label"], r["reason"], r["count"], r["share"]] for r in reasons]),
        Table("complaints", "投诉与处理 Complaints and their handling",
              [Column("项目 Item", "text"), Column("数量 Count")], [
                  ["投诉通话 Complaint calls", fig["totals"]["complaints"]["calls"]],
                  ["投诉记录 Complaints recorded", comp["recorded"]],
                  *([STATUS_LABELS[k], n] for k, n in comp["by_status"].items()),
                  *([f"严重程度 {SEVERITY_LABELS[k]}", n]
                    for k, n in comp["by_severity"].items()),
                  *([f"原因 cause: {CAUSE_LABELS[k]}", n]
                    for k, n in comp["by_root_cause"].items()),
                  *([f"决定 decision: {DECISION_LABELS[k]}", n]
                    for k, n in comp["by_decision"].items()),
                  ["号码已拉黑 Number blacklisted", comp["blacklisted"]],
                  ["拉黑已撤销 Blacklist lifted", comp["blacklist_lifted"]],
                  ["按时联系 Contacted on time", comp["contacted_on_time"]],
                  ["按时解决 Resolved on time", comp["resolved_on_time"]],
                  ["超时未处理 Overdue now", comp["overdue_now"]]]),
        Table("agents", "坐席业绩（全部活动） Agent figures (every campaign)",
              [Column("坐席 Agent", "text"), Column("天数 Days"), Column("接听 Accepted"),
               Column("平均通话(秒) Talk (s)", "number"),
               Column("平均处理(秒) Handle (s)", "number"),
               Column("每小时 Calls/hour", "number"), Column("占用率 Occupancy", "rate"),
               Column("服务水平 Service level", "rate"),
               Column("一次解决率 FCR", "rate"), Column("质检 QA reviewed"),
               Column("质检合规率 QA compliant", "rate")],
              [[r["agent"], r["days"], r["accepted"], r["talk_mean_s"], r["handle_mean_s"],
                r["calls_per_hour"], r["occupancy"], r["service_level"],
                r["first_call_resolution"], r["qa_reviewed"], r["qa_compliance"]]
               for r in agents["agents"]]
              + [[f"团队 Team ({team['agents']})", None, team["accepted"], team["talk_mean_s"],
                  team["handle_mean_s"], team["calls_per_hour"], team["occupancy"],
                  team["service_level"], team["first_call_resolution"], team["qa_reviewed"],
                  team["qa_compliance"]]]),
        *base.tables,
    ]
    chart_list = [
        *base.charts,
        Chart("qa_rules", "各规则质检结果 QA results by rule",
              lambda ax: _rule_bars(ax, qa["by_rule"])),
        Chart("decline_pie", "拒绝原因 Decline reasons",
              # In the vocabulary's order: each reason keeps its colour of the other reports.
              lambda ax: charts.decline_pie(ax, {r: counts[r] for r in DECLINE_REASONS})),
    ]
    scope = fig["campaign"] or "全部活动 all campaigns"
    return Report(base.name, f"客户周报 {fig['label']} · {scope}",
                  f"Weekly client summary · {fig['start']} – {fig['end']} · 时区 "
                  f"{fig['timezone']} · 截至 as of {fig['as_of'][:16].replace('T', ' ')}",
                  summary, tables, chart_list)
