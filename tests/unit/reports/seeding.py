"""A database where every report figure is known: three campaigns, written through the
repositories exactly as the dialer and the actions write them.

All times are local Asia/Shanghai (UTC+8).  DAY is Wednesday 2026-11-18, in ISO week 47
(Monday 16 - Sunday 22 November).  The expected figures are worked out by hand in the
tests; the tables below are the whole input.

seed-marketing (marketing), 20 contacts m1..m20 with ages and regions:

=====  ===  ====  =========================================================================
who    age  reg.  attempts (day time -> dial result [-> outcome, grade, flags, seconds])
=====  ===  ====  =========================================================================
m1     22   广州  18 09:10 answered -> consented A VP 120s, in the consent ledger
m2     24   广州  18 09:40 answered -> declined too_expensive D VP 90s
m3     30   广州  18 10:05 answered -> declined distrust D VP 60s
m4     33   深圳  18 10:30 answered -> declined not_needed D V 45s
m5     38   深圳  18 14:15 answered -> declined too_expensive D VP 100s
m6     40   广州  18 14:45 answered -> consented A VP 150s, in the consent ledger
m7     47   深圳  18 15:20 answered -> hung_up_early D 10s
m8     52   佛山  18 15:50 answered -> complaint D V 30s, escalated, blacklisted (complaint)
m9     58   -     18 16:10 answered -> callback_requested C V 40s
m10    61   广州  18 16:30 answered -> wrong_person (no grade) 20s
m11    66   深圳  18 19:05 answered -> declined other D VP 80s
m12    70   佛山  18 19:30 answered -> escalated B VP 50s (escalation connected)
m13    -    广州  18 09:20 busy;  18 16:50 answered -> consented A VP 130s, NOT in the ledger
m14    -    -     18 09:25 no_answer;  19 11:30 answered -> declined too_expensive D VP 70s
m15    28   深圳  18 10:40 powered_off;  19 11:40 still dialling (no dial result)
m16    45   广州  18 14:05 invalid_number
m17    35   佛山  18 14:30 busy;  19 11:45 answered, call still going on (verified)
m18    55   深圳  18 19:15 rejected
m19    64   广州  18 19:45 no_answer;  19 00:30 busy (16:30 UTC on the 18th)
m20    19   -     13 10:00 busy (the week before);  18 10:50 suspended
=====  ===  ====  =========================================================================

(V = verified, P = pitched.)  Blacklist entries with source ``complaint``: m8's, written
in its call; one entered by an operator for m4's number (no call), later removed; one for a
number on no list.  m10's number is on the do-not-call list at the customer's request.

seed-survey (survey; questions ``install`` (satisfaction) and ``speed`` (score)), on the 18th:
s1 10:00 5/4, s2 10:10 4/3, s3 10:20 2/1 (+ a reason), s4 10:30 3/- (partial), s5 10:40
no_answer.  Every answered survey call also has an open answer (text, no score).

seed-confirm (second_confirmation), on the 20th at 10:00/10:10/10:20: keep (consented, in
the ledger), cancel (declined), undecided (notified).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot import callrecord
from bot.store import (
    CallRepo,
    CampaignRepo,
    ConsentLedger,
    ContactRepo,
    Database,
    DncRepo,
    EscalationRepo,
    SurveyRepo,
)

ZONE = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 18)
SURVEY_QUESTIONS = [
    {"key": "install", "text": "您对本次宽带安装服务满意吗？", "scale": "satisfaction"},
    {"key": "speed", "text": "请给网速打分，1到5分", "scale": "score"},
]


def local(day: int, hhmm: str) -> datetime:
    """2026-11-<day> at local HH:MM, as an aware datetime."""
    hour, minute = (int(part) for part in hhmm.split(":"))
    return datetime(2026, 11, day, hour, minute, tzinfo=ZONE)


@dataclass(frozen=True)
class Answered:
    outcome: str | None  # None: the call is still going on
    grade: str | None = None
    verified: bool = False
    pitched: bool = False
    seconds: int = 60
    reason: str | None = None
    confirmation: str | None = None
    ledger: bool = False
    escalation: tuple[str, str] | None = None  # (reason, status)


# contact -> (age, region); attempts: (contact, day, time, dial result or None, call)
MARKETING_CONTACTS: dict[str, tuple[int | None, str | None]] = {
    "m1": (22, "广州"), "m2": (24, "广州"), "m3": (30, "广州"), "m4": (33, "深圳"),
    "m5": (38, "深圳"), "m6": (40, "广州"), "m7": (47, "深圳"), "m8": (52, "佛山"),
    "m9": (58, None), "m10": (61, "广州"), "m11": (66, "深圳"), "m12": (70, "佛山"),
    "m13": (None, "广州"), "m14": (None, None), "m15": (28, "深圳"), "m16": (45, "广州"),
    "m17": (35, "佛山"), "m18": (55, "深圳"), "m19": (64, "广州"), "m20": (19, None),
}
Attempt = tuple[str, int, str, str | None, Answered | None]
MARKETING_ATTEMPTS: list[Attempt] = [
    ("m1", 18, "09:10", "answered", Answered("consented", "A", True, True, 120, ledger=True)),
    ("m2", 18, "09:40", "answered", Answered("declined", "D", True, True, 90, "too_expensive")),
    ("m3", 18, "10:05", "answered", Answered("declined", "D", True, True, 60, "distrust")),
    ("m4", 18, "10:30", "answered", Answered("declined", "D", True, False, 45, "not_needed")),
    ("m5", 18, "14:15", "answered", Answered("declined", "D", True, True, 100, "too_expensive")),
    ("m6", 18, "14:45", "answered", Answered("consented", "A", True, True, 150, ledger=True)),
    ("m7", 18, "15:20", "answered", Answered("hung_up_early", "D", seconds=10)),
    ("m8", 18, "15:50", "answered", Answered("complaint", "D", True, seconds=30,
                                             escalation=("complaint", "pending"))),
    ("m9", 18, "16:10", "answered", Answered("callback_requested", "C", True, seconds=40)),
    ("m10", 18, "16:30", "answered", Answered("wrong_person", None, seconds=20)),
    ("m11", 18, "19:05", "answered", Answered("declined", "D", True, True, 80, "other")),
    ("m12", 18, "19:30", "answered", Answered("escalated", "B", True, True, 50,
                                              escalation=("request_human", "connected"))),
    ("m13", 18, "09:20", "busy", None),
    ("m13", 18, "16:50", "answered", Answered("consented", "A", True, True, 130)),
    ("m14", 18, "09:25", "no_answer", None),
    ("m14", 19, "11:30", "answered", Answered("declined", "D", True, True, 70, "too_expensive")),
    ("m15", 18, "10:40", "powered_off", None),
    ("m15", 19, "11:40", None, None),
    ("m16", 18, "14:05", "invalid_number", None),
    ("m17", 18, "14:30", "busy", None),
    ("m17", 19, "11:45", "answered", Answered(None, verified=True)),
    ("m18", 18, "19:15", "rejected", None),
    ("m19", 18, "19:45", "no_answer", None),
    ("m19", 19, "00:30", "busy", None),
    ("m20", 13, "10:00", "busy", None),
    ("m20", 18, "10:50", "suspended", None),
]
SURVEY_SCORES: dict[str, tuple[str, dict[str, int]] | None] = {
    "s1": ("10:00", {"install": 5, "speed": 4}),
    "s2": ("10:10", {"install": 4, "speed": 3}),
    "s3": ("10:20", {"install": 2, "speed": 1}),
    "s4": ("10:30", {"install": 3}),
    "s5": None,
}
CONFIRMATIONS = [("c1", "10:00", "consented", "keep"), ("c2", "10:10", "declined", "cancel"),
                 ("c3", "10:20", "notified", "undecided")]


@dataclass(frozen=True)
class Seeded:
    marketing: str = "seed-marketing"
    survey: str = "seed-survey"
    confirm: str = "seed-confirm"
    day: date = DAY

    @staticmethod
    def phone(who: str) -> str:
        """m1 -> 13800000001, s1 -> 13900000001, c1 -> 13700000001."""
        prefix = {"m": "138", "s": "139", "c": "137"}[who[0]]
        return f"{prefix}0000{int(who[1:]):04d}"


def _call(calls: CallRepo, session_ledger: ConsentLedger, escalations: EscalationRepo,
          campaign_id: int, contact_id: int, at: datetime, result: str | None,
          answered: Answered | None) -> str:
    attempt = calls.start_attempt(campaign_id, contact_id, at=at)
    if result is None:
        return attempt.call_id
    calls.set_dial_result(attempt.call_id, result, at=at)
    if answered is None:
        return attempt.call_id
    call = calls.open_call(attempt.call_id)
    if answered.outcome is None:
        calls.update_call(call.id, verified=answered.verified, pitched=answered.pitched)
        return call.id
    end = at + timedelta(seconds=answered.seconds)
    calls.record_outcome(call.id, answered.outcome, answered.reason, grade=answered.grade,
                         verified=answered.verified, pitched=answered.pitched,
                         script_completed=answered.pitched,
                         confirmation_result=answered.confirmation)
    callrecord.close(calls.session, call.id, ended_at=end, ended_by="bot")
    if answered.ledger:
        session_ledger.append(call.id, contact_id, campaign_id, "来电提醒服务", "a" * 64,
                              ["price", "trial_end", "cancel", "usage", "features"],
                              "好的，我同意", "dtmf", None, created_at=end)
    if answered.escalation:
        reason, status = answered.escalation
        escalation = escalations.add(call.id, campaign_id, contact_id, reason, {})
        escalation.created_at = end
        escalation.status = status
    return call.id


def seed(db: Database) -> Seeded:
    """Write the three campaigns described in the module docstring; returns their names."""
    seeded = Seeded()
    with db.session() as session:
        campaigns, contacts = CampaignRepo(session), ContactRepo(session)
        calls, ledger = CallRepo(session), ConsentLedger(session)
        escalations, dnc = EscalationRepo(session), DncRepo(session)
        zone = {"timezone": ZONE.key}

        marketing = campaigns.add(seeded.marketing, "marketing", dict(zone), "a" * 64)
        ids = {who: contacts.add(marketing.id, seeded.phone(who), age=age, region=region).id
               for who, (age, region) in MARKETING_CONTACTS.items()}
        call_ids = {}
        for who, day, hhmm, result, answered in sorted(MARKETING_ATTEMPTS,
                                                       key=lambda a: local(a[1], a[2])):
            call_ids[who] = _call(calls, ledger, escalations, marketing.id, ids[who],
                                  local(day, hhmm), result, answered)
        dnc.add(seeded.phone("m8"), "blacklist", "客户在通话中投诉", "complaint", "bot",
                call_id=call_ids["m8"], at=local(18, "15:51"))
        dnc.add(seeded.phone("m4"), "blacklist", "客户致电热线投诉", "complaint", "operator",
                at=local(19, "09:00"))
        dnc.remove(seeded.phone("m4"), "supervisor", "核实为误投诉", at=local(20, "09:00"))
        dnc.add("13600000000", "blacklist", "别的号码", "complaint", "operator",
                at=local(18, "09:00"))
        dnc.add(seeded.phone("m10"), "do_not_call", "别再打了", "customer", "bot",
                at=local(18, "16:31"))

        survey = campaigns.add(seeded.survey, "survey",
                               {**zone, "survey": {"questions": SURVEY_QUESTIONS}}, "b" * 64)
        answers = SurveyRepo(session)
        texts = {q["key"]: q["text"] for q in SURVEY_QUESTIONS}
        for n, (who, plan) in enumerate(SURVEY_SCORES.items()):
            contact_id = contacts.add(survey.id, seeded.phone(who)).id
            if plan is None:
                _call(calls, ledger, escalations, survey.id, contact_id,
                      local(18, "10:40"), "no_answer", None)
                continue
            hhmm, scores = plan
            outcome = "survey_completed" if len(scores) == 2 else "survey_partial"
            call_id = _call(calls, ledger, escalations, survey.id, contact_id,
                            local(18, hhmm), "answered", Answered(None, verified=True))
            for key, score in scores.items():
                answers.save_answer(call_id, key, texts[key], score=score)
                if score <= 2:
                    answers.save_answer(call_id, f"{key}_reason", "不满意原因",
                                        answer_text="装了三天")
            answers.save_answer(call_id, "open", "意见建议", answer_text=f"建议{n}")
            calls.record_outcome(call_id, outcome, grade="C", verified=True)
            callrecord.close(calls.session, call_id, ended_by="bot",
                             ended_at=local(18, hhmm) + timedelta(seconds=90))

        confirm = campaigns.add(seeded.confirm, "second_confirmation", dict(zone), "c" * 64)
        for who, hhmm, outcome, result in CONFIRMATIONS:
            contact_id = contacts.add(confirm.id, seeded.phone(who)).id
            _call(calls, ledger, escalations, confirm.id, contact_id, local(20, hhmm),
                  "answered", Answered(outcome, "A" if result == "keep" else "D", True, True,
                                       confirmation=result, ledger=result == "keep"))
    return seeded
