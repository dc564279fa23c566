"""What the desk's pop shows of an offered call beyond its card (desk_state.CallCard):
what the bot collected (where the call stood, the pitch, a family member, a decline
reason, survey answers) and the transcript so far, latest turns last, with phone numbers
and ID card numbers masked in its text (`mask_text`; live_turns.py adds the turns that
follow, masked the same way)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.console.labels import STAGE_LABELS
from bot.privacy import mask_phone
from bot.store.models import Call, Escalation, SurveyAnswer, TranscriptTurn

TRANSCRIPT_TURNS = 60  # the pop shows the latest turns
_ID_NUMBER = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9Xx])")
_PHONE_LIKE = re.compile(r"[0-9]{7,}")  # as dispositions.py masks the notes


def mask_text(text: str) -> str:
    """A turn's text as a desk shows it: an ID card number hidden, anything that may be a
    phone number masked (``13812345678`` -> ``138****5678``).  The ID digits the customer
    answers the ID question with are masked before they are stored (bot/channel.py)."""
    text = _ID_NUMBER.sub(lambda m: "*" * len(m.group()), text)
    return _PHONE_LIKE.sub(lambda m: mask_phone(m.group()), text)


@dataclass(frozen=True)
class Pop:
    collected: list[tuple[str, str]]  # (label, value)
    transcript: list[tuple[int, str, str]]  # (the turn's number, speaker, masked text)


_YES_NO = {True: "是 yes", False: "否 no"}


def pop(session: Session, escalation: Escalation) -> Pop:
    context: dict[str, Any] = escalation.context or {}
    call = session.get(Call, escalation.call_id)
    collected: list[tuple[str, str]] = []
    stage = context.get("stage_before") or (call.stage if call else None)
    if stage:
        collected.append(("转人工前环节 Stage", STAGE_LABELS.get(str(stage), str(stage))))
    for key, label in (("pitched", "已介绍产品 Pitched"),
                       ("family_member", "家属接听 Family member")):
        if isinstance(context.get(key), bool):
            collected.append((label, _YES_NO[context[key]]))
    if call is not None and call.decline_reason:
        collected.append(("拒绝原因 Decline reason", call.decline_reason))
    for answer_row in session.scalars(select(SurveyAnswer).where(
            SurveyAnswer.call_id == escalation.call_id).order_by(SurveyAnswer.id)):
        value = str(answer_row.score) if answer_row.score is not None else (
            answer_row.answer_text or "—")
        collected.append((answer_row.question_text, value))
    turns = list(session.scalars(select(TranscriptTurn).where(
        TranscriptTurn.call_id == escalation.call_id)
        .order_by(TranscriptTurn.seq.desc()).limit(TRANSCRIPT_TURNS)))
    return Pop(collected, [(t.seq, t.speaker, mask_text(t.text)) for t in reversed(turns)])
