"""Survey answers, one per question and call."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store.models import Call, SurveyAnswer
from bot.store.repos.common import NotFound
from bot.store.vocab import SURVEY_SCORE_MAX, SURVEY_SCORE_MIN


class SurveyRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def save_answer(
        self,
        call_id: str,
        question_key: str,
        question_text: str,
        score: int | None = None,
        answer_text: str | None = None,
    ) -> SurveyAnswer:
        """Insert the answer, or replace the earlier answer to the same question in this call."""
        if score is not None and not SURVEY_SCORE_MIN <= score <= SURVEY_SCORE_MAX:
            raise ValueError(f"score must be {SURVEY_SCORE_MIN}-{SURVEY_SCORE_MAX}, got {score}")
        answer = self.session.scalar(
            select(SurveyAnswer).where(
                SurveyAnswer.call_id == call_id, SurveyAnswer.question_key == question_key
            )
        )
        if answer is None:
            call = self.session.get(Call, call_id)
            if call is None:
                raise NotFound(f"call {call_id}")
            answer = SurveyAnswer(
                call_id=call_id,
                contact_id=call.contact_id,
                campaign_id=call.campaign_id,
                question_key=question_key,
            )
            self.session.add(answer)
        answer.question_text = question_text
        answer.score = score
        answer.answer_text = answer_text
        self.session.flush()
        return answer
