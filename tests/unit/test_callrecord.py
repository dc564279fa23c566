"""The one owner of the call record: dial result, close, hang-up outcome, announcements."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot import callrecord
from bot.store import CallRepo, Database, SurveyRepo
from bot.store.models import Call, CallAttempt, TranscriptTurn

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def _call(db: Database, call_id: str) -> Call:
    with db.session() as session:
        call = session.get(Call, call_id)
        assert call is not None
        return call


def test_an_answered_dial_opens_the_call_at_the_answer(
        db: Database, seeder: Callable[..., Call]) -> None:
    seeded = seeder(db)
    with db.session() as session:
        attempt = CallRepo(session).start_attempt(seeded.campaign_id, seeded.contact_id)
        callrecord.record_dial_result(session, attempt.call_id, "answered", T0)
        busy = CallRepo(session).start_attempt(seeded.campaign_id, seeded.contact_id)
        callrecord.record_dial_result(session, busy.call_id, "busy", T0)
    assert _call(db, attempt.call_id).started_at.replace(tzinfo=UTC) == T0
    with db.session() as session:
        assert session.get(Call, busy.call_id) is None


def test_a_hang_up_keeps_an_outcome_or_decides_one(
        db: Database, seeder: Callable[..., Call]) -> None:
    plain, survey, done = (seeder(db, f"1381234567{n}") for n in range(3))
    with db.session() as session:
        SurveyRepo(session).save_answer(survey.id, "teacher", "满意吗？", score=3)
        CallRepo(session).record_outcome(done.id, "consented")
        for call in (plain, survey, done):
            callrecord.close(session, call.id, ended_at=T0, ended_by="caller")
    outcomes = [_call(db, c.id).outcome for c in (plain, survey, done)]
    assert outcomes == ["hung_up_early", "survey_partial", "consented"]
    with db.session() as session:
        last = CallRepo(session).turns(plain.id)[-1]
        assert (last.speaker, last.text) == ("system", "客户挂机")


def test_the_first_close_is_the_end_and_the_dialer_only_fills_in(
        db: Database, seeder: Callable[..., Call]) -> None:
    """The session closes at the end of the audio; the dialer's completion comes later and
    must not move the end time (it used to be the action's, then the session's)."""
    call = seeder(db)
    audio_end = T0 + timedelta(seconds=42)
    with db.session() as session:
        CallRepo(session).record_outcome(call.id, "declined", "not_needed")
        callrecord.close(session, call.id, ended_at=audio_end, ended_by="bot",
                         recording_path="/r/1.wav", recording_sha256="ab" * 32)
        callrecord.close(session, call.id, ended_at=audio_end + timedelta(minutes=1),
                         ended_by="completed")
    closed = _call(db, call.id)
    assert closed.ended_at is not None and closed.ended_at.replace(tzinfo=UTC) == audio_end
    assert (closed.outcome, closed.recording_path) == ("declined", "/r/1.wav")
    with db.session() as session:
        attempt = session.get(CallAttempt, closed.attempt_id)
        assert attempt is not None and attempt.ended_at is not None


def test_a_failed_session_is_a_failed_call_never_a_hang_up(
        db: Database, seeder: Callable[..., Call]) -> None:
    """A system failure is not the customer's doing: `failed`, and the dialer's completion
    afterwards does not turn it into `hung_up_early` (issue 13, item 6)."""
    call = seeder(db)
    with db.session() as session:
        callrecord.close(session, call.id, ended_at=T0, ended_by="failure",
                         error="RuntimeError: boom")
    assert _call(db, call.id).summary["interrupted"] == "RuntimeError: boom"
    assert _call(db, call.id).outcome == "failed"
    with db.session() as session:
        callrecord.close(session, call.id, ended_at=T0, ended_by="completed")
    assert _call(db, call.id).outcome == "failed"
    assert _call(db, call.id).grade is None


def test_a_failure_after_the_flow_decided_keeps_the_outcome(
        db: Database, seeder: Callable[..., Call]) -> None:
    call = seeder(db)
    with db.session() as session:
        CallRepo(session).record_outcome(call.id, "declined", "not_needed")
        callrecord.close(session, call.id, ended_at=T0, ended_by="failure", error="x")
    assert _call(db, call.id).outcome == "declined"


def test_a_reclaimed_lease_fails_an_open_call(
        db: Database, seeder: Callable[..., Call]) -> None:
    call = seeder(db)
    with db.session() as session:
        callrecord.close(session, call.id, ended_at=T0, ended_by="lease_expired")
    closed = _call(db, call.id)
    assert (closed.outcome, closed.summary["interrupted"]) == ("failed", "lease_expired")
    assert closed.ended_at is not None


def test_an_announcement_after_the_answer_leaves_no_call(
        db: Database, seeder: Callable[..., Call]) -> None:
    call = seeder(db)
    with db.session() as session:
        CallRepo(session).add_turn(call.id, "customer", "您拨打的号码是空号")
        attempt = callrecord.drop_answered(session, call.id, "invalid_number", T0)
        assert (attempt.dial_result, attempt.answered_at) == ("invalid_number", None)
    with db.session() as session:
        assert session.get(Call, call.id) is None
        assert session.scalars(select(TranscriptTurn)).all() == []
