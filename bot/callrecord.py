"""The one owner of a call's record: dial result, the conversation's row, its end.

The gateway, the voice session, text-mode calls, the dialer and the actions call these
functions for every write to a call's row (turns come through the event stream and are
written by `bot.transcript`); nothing else writes `Call` rows (tests/unit/test_layering.py
checks it).  The actions record here what the call flow decided: its state, the outcome,
the classifier's intent on the customer's turn.  Each function works inside the
caller's unit of work (one `Session`) and only flushes.

Decisions taken here and nowhere else:
- a call ends when its audio ends: `close` sets `ended_at`, on the call's own clock (the
  flow's outcome is decided earlier, before the goodbye is said, and does not stamp it);
- the outcome of a hang-up the flow had not decided: `survey_partial` if a survey answer
  was saved, else `hung_up_early` (the flow leaves it here because a hang-up can come when
  Rasa cannot be reached);
- the outcome of a call that a system failure ended before the flow decided one: `failed`
  (`SYSTEM_FAILURES`), whoever notices first (the session, the gateway, the dialer's
  reclaim);
- an answered call that turns out to be a carrier announcement is no call: `drop_answered`;
- whether a call may still be decided on (`lease_taken_back`): once the dialer has completed
  the attempt or taken its lease back from a gateway that stopped renewing, the flow's
  state, its outcome, the intent on a turn, the transcript and the session's close are
  refused (logged `call.write_refused`), whoever still holds the call; the dialer's own
  close and the recording (`attach_recording`: evidence, not a decision) still go in.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bot.keys import KeyringError
from bot.store import CallRepo, ConsentLedger
from bot.store.models import Call, CallAttempt, SurveyAnswer, TranscriptTurn

log = logging.getLogger("waihu.callrecord")

EndedBy = Literal["bot", "caller", "transfer", "bridge_ended", "failure", "timeout",
                  "announcement", "lease_expired", "completed"]
# Ends that are the system's fault, not the customer's: a call the flow left without an
# outcome is `failed` (never `hung_up_early`) and its contact is retried per the campaign's
# policy for `failed`.  `failure`: the call could not go on (Rasa or the action server
# unreachable or failing, the database failing, a bug); `lease_expired`: its gateway died.
SYSTEM_FAILURES: tuple[EndedBy, ...] = ("failure", "lease_expired")
# The dialer's closes, after it ended the attempt's lease: they are allowed on an attempt
# that is over (they are what ends it).
_DIALER_ENDS: tuple[EndedBy, ...] = ("completed", "lease_expired")


def record_dial_result(session: Session, call_id: str, result: str, at: datetime
                       ) -> CallAttempt:
    """The attempt's dial result; an answered one opens the call (the conversation)."""
    calls = CallRepo(session)
    attempt = calls.set_dial_result(call_id, result, at=at)
    if result == "answered":
        calls.open_call(call_id)
    return attempt


def lease_taken_back(session: Session, call_id: str) -> bool:
    """The call's attempt is over for the dialer: completed, or its lease taken back (a
    gateway that stopped renewing).  Nothing of the call may be decided any more.  The
    attempt's row is locked (PostgreSQL) until the caller's unit of work ends, so a reclaim
    comes either before this answer or after the writes it allowed."""
    completed = session.execute(
        select(CallAttempt.completed_at).where(CallAttempt.call_id == call_id)
        .with_for_update()).scalar_one_or_none()
    return completed is not None


def refused(session: Session, call_id: str, write: str) -> bool:
    """`lease_taken_back`, logged as the refusal of *write*: the check every write of a
    call's record goes through."""
    if not lease_taken_back(session, call_id):
        return False
    log.warning("call.write_refused call_id=%s write=%s: the attempt is over (lease taken "
                "back or completed)", call_id, write)
    return True


def start_flow(session: Session, call: Call, flow_state: dict[str, Any], *, stage: str,
               clock_offset_s: float) -> None:
    """`/call_started`: the flow's first state, and how far the call's clock (virtual in a
    simulation) is from the wall clock."""
    if refused(session, call.id, "start_flow"):
        return
    call.flow_state = flow_state
    CallRepo(session).update_call(call.id, stage=stage, summary={
        **(call.summary or {}), "clock_offset_s": clock_offset_s})


def save_flow(session: Session, call: Call, flow_state: dict[str, Any], *, stage: str,
              verified: bool, pitched: bool, summary: dict[str, Any]) -> None:
    """The flow's state after a turn, and the flags the reports read from it."""
    if refused(session, call.id, "save_flow"):
        return
    call.flow_state = flow_state
    CallRepo(session).update_call(call.id, stage=stage, verified=verified, pitched=pitched,
                                  summary={**(call.summary or {}), **summary})


def record_outcome(session: Session, call_id: str, outcome: str,
                   decline_reason: str | None = None, **flags: Any) -> Call:
    """The outcome the flow decided (the end time comes with `close`); the call unchanged
    once its attempt is over."""
    if refused(session, call_id, "outcome"):
        call = session.get(Call, call_id)
        if call is None:
            raise LookupError(f"call {call_id}")
        return call
    return CallRepo(session).record_outcome(call_id, outcome, decline_reason, **flags)


def note_intent(session: Session, call_id: str, intent: str, confidence: float | None
                ) -> None:
    """What the classifier made of the customer's latest turn, for QA."""
    if refused(session, call_id, "intent"):
        return
    CallRepo(session).note_intent(call_id, intent, confidence)


def close(session: Session, call_id: str, *, ended_at: datetime, ended_by: EndedBy,
          recording_path: str | None = None, recording_sha256: str | None = None,
          error: str | None = None) -> Call | None:
    """The call is over: its end time, its recording, and the outcome of a call the flow
    left unfinished (by how it ended).  The channel closes a call when its audio (or text
    exchange) ends; the dialer closes it again when it completes the attempt
    (``completed``) or takes its lease back (``lease_expired``), which only fills in what
    is missing.  A call already closed keeps its end time.  None when there is no call."""
    call = session.get(Call, call_id)
    if call is None:
        return None
    if recording_path:
        call.recording_path, call.recording_sha256 = recording_path, recording_sha256
    if ended_by not in _DIALER_ENDS and refused(session, call_id, f"close:{ended_by}"):
        if recording_path and call.ended_at is not None:  # the recording stays linked
            _seal_recording(session, call)
        session.flush()
        return call
    if ended_by == "caller" or (ended_by == "completed" and call.outcome is None):
        _hung_up(session, call, ended_at)
    elif call.outcome is None and ended_by in SYSTEM_FAILURES:
        call.summary = {**(call.summary or {}), "interrupted": error or ended_by}
        CallRepo(session).record_outcome(call.id, "failed")
    elif call.outcome is None and ended_by == "timeout":
        call.summary = {**(call.summary or {}), "interrupted": error or ended_by}
    if call.ended_at is None:  # the first close is the end: the dialer's comes after
        call.ended_at = ended_at
    _seal_recording(session, call)
    attempt = session.get(CallAttempt, call.attempt_id)
    if attempt is not None and attempt.ended_at is None:
        attempt.ended_at = ended_at
    session.flush()
    return call


def attach_recording(session: Session, call_id: str, path: str, sha256: str) -> bool:
    """Link a recording finished after the fact (a partial file a crashed gateway left,
    `voice.call.recovery`) to its call, whatever became of the call since.  False when
    there is no such call or it already has a recording."""
    call = session.get(Call, call_id)
    if call is None or call.recording_path:
        return False
    call.recording_path, call.recording_sha256 = path, sha256
    if call.ended_at is not None:  # a consent's recording is sealed like at a close
        _seal_recording(session, call)
    session.flush()
    return True


def _seal_recording(session: Session, call: Call) -> None:
    """A call with a consent gets its recording sealed in the ledger (sha256 and length),
    once per recording.  Without the ledger key on this machine the call still closes:
    `waihu audit verify` then reports the missing seal."""
    assert call.ended_at is not None
    try:
        seal = ConsentLedger(session).seal_recording(call, at=call.ended_at)
    except KeyringError as exc:
        log.error("ledger.seal_failed call_id=%s error=%s", call.id, exc)
        return
    if seal is not None:
        log.info("ledger.recording_sealed call_id=%s entry=%s", call.id, seal.entry_hash[:12])


def _hung_up(session: Session, call: Call, at: datetime) -> None:
    """The customer hung up: noted in the transcript; an unfinished call gets its outcome."""
    calls = CallRepo(session)
    if call.outcome is None:
        answered = session.scalar(select(func.count()).select_from(SurveyAnswer)
                                  .where(SurveyAnswer.call_id == call.id))
        calls.record_outcome(call.id, "survey_partial" if answered else "hung_up_early")
    calls.add_turn(call.id, "system", "客户挂机", started_at=at)


def drop_answered(session: Session, call_id: str, result: str, at: datetime) -> CallAttempt:
    """The far end answered but was a carrier announcement (空号, 停机 …): the attempt gets
    the announcement's dial result as if it had come as early media, and no call remains
    (the recording stays on disk)."""
    session.execute(delete(TranscriptTurn).where(TranscriptTurn.call_id == call_id))
    call = session.get(Call, call_id)
    if call is not None:
        session.delete(call)
        session.flush()
    attempt = CallRepo(session).set_dial_result(call_id, result, at=at)
    attempt.answered_at = None
    session.flush()
    return attempt
