"""What the pages call the desk's codes (states, away reasons, dispositions, escalation
reasons, speakers): Chinese first, the code's English after it.  The templates get them as globals;
static/console.js keeps the state labels for the live updates."""

from __future__ import annotations

from bot.store.vocab import AGENT_STATES, AWAY_REASONS, DISPOSITIONS

STATE_LABELS = {
    "offline": "离线 offline",
    "available": "空闲 available",
    "offered": "来电 offered",
    "on_call": "通话中 on call",
    "wrap_up": "话后处理 wrap-up",
    "away": "离开 away",
}
AWAY_LABELS = {
    "break": "小休 break",
    "meal": "用餐 meal",
    "meeting": "会议 meeting",
    "training": "培训 training",
    "other": "其他 other",
    "missed_offer": "未接来电 missed a call",
}
# What an agent may choose when going away (missed_offer is set by the desk).
AWAY_CHOICES = tuple(reason for reason in AWAY_REASONS if reason != "missed_offer")
DISPOSITION_LABELS = {
    "resolved": "已解决 resolved",
    "sale": "成交 sale",
    "callback": "约定回电 callback",
    "complaint": "投诉 complaint",
    "wrong_person": "非本人 wrong person",
    "other": "其他 other",
}
ESCALATION_REASONS = {
    "request_human": "客户要求人工 asked for a person",
    "complaint": "投诉 complaint",
    "verification_failed": "身份核实未通过 failed verification",
}
# Where the call flow is (Call.stage): the desk's pop and the supervisors' wall.
STAGE_LABELS = {"greeting": "开场 greeting", "identity": "核实身份 identity",
                "verify_id": "核对证件号 ID check", "family_authority": "家属授权 family",
                "permission": "征求同意 permission", "offer": "介绍产品 offer",
                "pitch": "介绍产品 pitch", "final_confirm": "最终确认 final confirmation",
                "keyed_confirm": "按键确认 keyed confirmation", "survey_q": "问卷 survey",
                "survey_reason": "不满意原因 survey reason",
                "survey_open": "开放问题 open question", "notice": "通知 notice",
                "callback_time": "回电时间 callback time"}
# Who said a turn of the transcript (static/console.js keeps them for the live turns).
SPEAKER_LABELS = {"bot": "机器人", "customer": "客户", "agent": "坐席", "system": "系统"}

assert set(STATE_LABELS) == set(AGENT_STATES)
assert set(AWAY_LABELS) == set(AWAY_REASONS)
assert set(DISPOSITION_LABELS) == set(DISPOSITIONS)

GLOBALS = {"STATE_LABELS": STATE_LABELS, "AWAY_LABELS": AWAY_LABELS,
           "AWAY_CHOICES": AWAY_CHOICES, "DISPOSITION_LABELS": DISPOSITION_LABELS,
           "ESCALATION_REASONS": ESCALATION_REASONS, "SPEAKER_LABELS": SPEAKER_LABELS}
