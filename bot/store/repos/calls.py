"""Calls: dial attempts, the conversations of answered ones, and their transcript turns."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict, Unpack

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.store.base import utcnow
from bot.store.models import Call, CallAttempt, Contact, TranscriptTurn
from bot.store.repos.common import NotFound
from bot.store.vocab import (
    ATTEMPT_KINDS,
    CONFIRMATION_RESULTS,
    DECLINE_REASONS,
    DIAL_RESULTS,
    INPUT_MODES,
    OUTCOMES,
    SPEAKERS,
    require,
)


class CallFlags(TypedDict, total=False):
    stage: str | None
    confirmation_result: str | None
    verified: bool
    pitched: bool
    script_completed: bool
    grade: str | None
    summary: dict[str, Any]


class CallUpdate(CallFlags, total=False):
    recording_path: str | None
    recording_sha256: str | None


_FLAG_NAMES = frozenset(CallFlags.__annotations__)
_UPDATE_NAMES = frozenset(CallUpdate.__annotations__) | _FLAG_NAMES


class CallRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def start_attempt(
        self,
        campaign_id: int,
        contact_id: int,
        call_id: str | None = None,
        gateway: str | None = None,
        at: datetime | None = None,
        *,
        lease_expires_at: datetime | None = None,
        kind: str | None = None,
        callback_id: int | None = None,
        counted: bool = True,
    ) -> CallAttempt:
        """Record a new dial of the contact (numbered from 1) and count it on the contact.

        ``kind`` defaults to ``first`` for the contact's first attempt, else ``retry``.
        ``counted=False`` leaves ``Contact.attempts`` (the attempts that count against the
        campaign's ``max_attempts``) alone, e.g. for a customer-requested callback.
        """
        require(kind, ATTEMPT_KINDS, "attempt kind", nullable=True)
        contact = self.session.get(Contact, contact_id)
        if contact is None:
            raise NotFound(f"contact {contact_id}")
        if contact.campaign_id != campaign_id:
            raise ValueError(f"contact {contact_id} belongs to campaign {contact.campaign_id}")
        last = self.session.scalar(
            select(func.max(CallAttempt.attempt_no)).where(CallAttempt.contact_id == contact_id)
        )
        now = at or utcnow()
        attempt_no = (last or 0) + 1
        attempt = CallAttempt(
            call_id=call_id or str(uuid.uuid4()),
            campaign_id=campaign_id,
            contact_id=contact_id,
            attempt_no=attempt_no,
            gateway=gateway,
            lease_expires_at=lease_expires_at,
            kind=kind or ("first" if attempt_no == 1 else "retry"),
            callback_id=callback_id,
            created_at=now,
            started_at=now,
        )
        if counted:
            contact.attempts += 1
        self.session.add(attempt)
        self.session.flush()
        return attempt

    def get_attempt(self, call_id: str) -> CallAttempt | None:
        return self.session.scalar(select(CallAttempt).where(CallAttempt.call_id == call_id))

    def set_dial_result(self, call_id: str, result: str, at: datetime | None = None) -> CallAttempt:
        """``answered`` sets ``answered_at``; any other result ends the attempt."""
        require(result, DIAL_RESULTS, "dial result")
        attempt = self._attempt(call_id)
        attempt.dial_result = result
        if result == "answered":
            attempt.answered_at = at or utcnow()
        else:
            attempt.ended_at = at or utcnow()
        self.session.flush()
        return attempt

    def open_call(self, call_id: str) -> Call:
        """The conversation of an answered attempt; returns the existing one if already open."""
        call = self.session.get(Call, call_id)
        if call is not None:
            return call
        attempt = self._attempt(call_id)
        call = Call(
            id=call_id,
            attempt_id=attempt.id,
            campaign_id=attempt.campaign_id,
            contact_id=attempt.contact_id,
            started_at=attempt.answered_at or utcnow(),
        )
        self.session.add(call)
        self.session.flush()
        return call

    def get_call(self, call_id: str) -> Call | None:
        return self.session.get(Call, call_id)

    def record_outcome(
        self,
        call_id: str,
        outcome: str,
        decline_reason: str | None = None,
        **flags: Unpack[CallFlags],
    ) -> Call:
        """The outcome from ``OUTCOMES`` the call flow decided (before its last words are
        said).  The call's end time is set when it closes (``bot.callrecord.close``)."""
        require(outcome, OUTCOMES, "outcome")
        require(decline_reason, DECLINE_REASONS, "decline reason", nullable=True)
        self._check_fields(flags, _FLAG_NAMES)
        call = self._call(call_id)
        call.outcome = outcome
        call.decline_reason = decline_reason
        for name, value in flags.items():
            setattr(call, name, value)
        self.session.flush()
        return call

    def update_call(self, call_id: str, **fields: Unpack[CallUpdate]) -> Call:
        """Partial update of a call in progress (stage, verified, pitched, recording...)."""
        self._check_fields(fields, _UPDATE_NAMES)
        call = self._call(call_id)
        for name, value in fields.items():
            setattr(call, name, value)
        self.session.flush()
        return call

    def add_turn(
        self,
        call_id: str,
        speaker: str,
        text: str,
        intent: str | None = None,
        intent_confidence: float | None = None,
        input_mode: str | None = None,
        asr_confidence: float | None = None,
        started_at: datetime | None = None,
        ended_at: datetime | None = None,
        asr_snapped: bool | None = None,
        unheard_disclosures: list[str] | None = None,
    ) -> TranscriptTurn:
        """Append a turn to the transcript with the next sequence number (from 1)."""
        require(speaker, SPEAKERS, "speaker")
        require(input_mode, INPUT_MODES, "input mode", nullable=True)
        last = self.session.scalar(
            select(func.max(TranscriptTurn.seq)).where(TranscriptTurn.call_id == call_id)
        )
        turn = TranscriptTurn(
            call_id=call_id,
            seq=(last or 0) + 1,
            speaker=speaker,
            text=text,
            intent=intent,
            intent_confidence=intent_confidence,
            input_mode=input_mode,
            asr_confidence=asr_confidence,
            started_at=started_at or utcnow(),
            ended_at=ended_at,
            asr_snapped=asr_snapped,
            unheard_disclosures=unheard_disclosures,
        )
        self.session.add(turn)
        self.session.flush()
        return turn

    def note_intent(self, call_id: str, intent: str, confidence: float | None) -> bool:
        """What the classifier made of the customer's latest turn, for QA: set on that
        turn unless it already has one (the channel writes the turn before it sends the
        words, so the latest customer turn is the one being classified)."""
        turn = self.session.scalar(
            select(TranscriptTurn).where(TranscriptTurn.call_id == call_id,
                                         TranscriptTurn.speaker == "customer")
            .order_by(TranscriptTurn.seq.desc()).limit(1))
        if turn is None or turn.intent is not None:
            return False
        turn.intent, turn.intent_confidence = intent, confidence
        self.session.flush()
        return True

    def turns(self, call_id: str) -> Sequence[TranscriptTurn]:
        return self.session.scalars(
            select(TranscriptTurn)
            .where(TranscriptTurn.call_id == call_id)
            .order_by(TranscriptTurn.seq)
        ).all()

    def _attempt(self, call_id: str) -> CallAttempt:
        attempt = self.get_attempt(call_id)
        if attempt is None:
            raise NotFound(f"call attempt {call_id}")
        return attempt

    def _call(self, call_id: str) -> Call:
        call = self.session.get(Call, call_id)
        if call is None:
            raise NotFound(f"call {call_id}")
        return call

    @staticmethod
    def _check_fields(fields: Any, allowed: frozenset[str]) -> None:
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown call field(s): {', '.join(sorted(unknown))}")
        if "confirmation_result" in fields:
            require(
                fields["confirmation_result"],
                CONFIRMATION_RESULTS,
                "confirmation result",
                nullable=True,
            )
