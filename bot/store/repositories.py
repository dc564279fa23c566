"""Repositories: queries and changes on one Session.  They flush, never commit."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict, Unpack

from sqlalchemy import ColumnElement, and_, delete, func, select, text
from sqlalchemy.orm import Session

from bot import privacy
from bot.store.base import utcnow
from bot.store.models import (
    Call,
    CallAttempt,
    Callback,
    Campaign,
    Contact,
    DncEntry,
    Escalation,
    PhoneLock,
    QaReview,
    SurveyAnswer,
    TranscriptTurn,
)
from bot.store.vocab import (
    ATTEMPT_KINDS,
    CALLBACK_KINDS,
    CALLBACK_STATUSES,
    CAMPAIGN_TYPES,
    CONFIRMATION_RESULTS,
    DECLINE_REASONS,
    DIAL_RESULTS,
    DNC_KINDS,
    DNC_SOURCES,
    ESCALATION_STATUSES,
    INPUT_MODES,
    OUTCOMES,
    SPEAKERS,
    SURVEY_SCORE_MAX,
    SURVEY_SCORE_MIN,
    require,
)


class NotFound(LookupError):
    """The row a repository method needs does not exist."""


def check_phone(phone: str) -> str:
    """Phones are stored as normalised digits (the importer normalises); refuse anything else,
    so a DNC lookup can never miss a number because of its spelling."""
    if not phone.isascii() or not phone.isdigit() or len(phone) > 20:
        raise ValueError(f"phone must be 1-20 digits, got {privacy.mask_phone(phone)!r}")
    return phone


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


class CampaignRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, name: str, type: str, definition: dict[str, Any], script_hash: str) -> Campaign:
        require(type, CAMPAIGN_TYPES, "campaign type")
        campaign = Campaign(name=name, type=type, definition=definition, script_hash=script_hash)
        self.session.add(campaign)
        self.session.flush()
        return campaign

    def get(self, id: int) -> Campaign | None:
        return self.session.get(Campaign, id)

    def by_name(self, name: str) -> Campaign | None:
        return self.session.scalar(select(Campaign).where(Campaign.name == name))

    def upsert_definition(
        self, name: str, type: str, definition: dict[str, Any], script_hash: str
    ) -> Campaign:
        """Create, or replace the type, definition and script hash of an existing one."""
        campaign = self.by_name(name)
        if campaign is None:
            return self.add(name, type, definition, script_hash)
        require(type, CAMPAIGN_TYPES, "campaign type")
        campaign.type = type
        campaign.definition = definition
        campaign.script_hash = script_hash
        self.session.flush()
        return campaign

    def list(self) -> Sequence[Campaign]:
        return self.session.scalars(select(Campaign).order_by(Campaign.id)).all()


class ContactRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        campaign_id: int,
        phone: str,
        name: str | None = None,
        gender: str | None = None,
        age: int | None = None,
        region: str | None = None,
        id_last4: str | None = None,
        fields: dict[str, Any] | None = None,
        priority: int = 0,
    ) -> Contact:
        """Add a contact; ``id_last4`` is stored only as a salted hash."""
        salt = hashed = None
        if id_last4:
            salt = privacy.new_salt()
            hashed = privacy.hash_secret(id_last4, salt)
        contact = Contact(
            campaign_id=campaign_id,
            phone=check_phone(phone),
            name=name,
            gender=gender,
            age=age,
            region=region,
            id_last4_hash=hashed,
            id_salt=salt,
            fields=dict(fields or {}),
            priority=priority,
        )
        self.session.add(contact)
        self.session.flush()
        return contact

    def get(self, id: int) -> Contact | None:
        return self.session.get(Contact, id)

    def by_phone(self, campaign_id: int, phone: str) -> Contact | None:
        return self.session.scalar(
            select(Contact).where(Contact.campaign_id == campaign_id, Contact.phone == phone)
        )

    def check_id_last4(self, contact: Contact, value: str) -> bool | None:
        """Whether *value* matches the stored ID digits; None when the list gave none."""
        if contact.id_last4_hash is None or contact.id_salt is None:
            return None
        return privacy.verify_secret(value, contact.id_salt, contact.id_last4_hash)

    def list(self, campaign_id: int) -> Sequence[Contact]:
        return self.session.scalars(
            select(Contact).where(Contact.campaign_id == campaign_id).order_by(Contact.id)
        ).all()


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

    def finish_call(
        self,
        call_id: str,
        outcome: str,
        decline_reason: str | None = None,
        at: datetime | None = None,
        **flags: Unpack[CallFlags],
    ) -> Call:
        """End the call with an outcome from ``OUTCOMES`` (and the attempt with it)."""
        require(outcome, OUTCOMES, "outcome")
        require(decline_reason, DECLINE_REASONS, "decline reason", nullable=True)
        self._check_fields(flags, _FLAG_NAMES)
        call = self._call(call_id)
        ended = at or utcnow()
        call.outcome = outcome
        call.decline_reason = decline_reason
        call.ended_at = ended
        for name, value in flags.items():
            setattr(call, name, value)
        attempt = self.session.get(CallAttempt, call.attempt_id)
        if attempt is not None and attempt.ended_at is None:
            attempt.ended_at = ended
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

    def hang_up(self, call_id: str, at: datetime | None = None) -> Call:
        """The customer hung up. A call that already has its outcome keeps it; otherwise a
        survey with answers is `survey_partial` and anything else `hung_up_early`. The
        transcript (and, in voice mode, the recording) stays as it is."""
        call = self._call(call_id)
        if call.outcome is None:
            answered = self.session.scalar(
                select(func.count()).select_from(SurveyAnswer).where(
                    SurveyAnswer.call_id == call_id))
            self.finish_call(call_id, "survey_partial" if answered else "hung_up_early", at=at)
        self.add_turn(call_id, "system", "客户挂机", started_at=at)
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

    def answers(self, call_id: str) -> Sequence[SurveyAnswer]:
        return self.session.scalars(
            select(SurveyAnswer).where(SurveyAnswer.call_id == call_id).order_by(SurveyAnswer.id)
        ).all()


class DncRepo:
    """Do-not-call and blacklist entries; either kind, while active, blocks the number."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        phone: str,
        kind: str,
        reason: str,
        source: str,
        added_by: str,
        call_id: str | None = None,
        at: datetime | None = None,
    ) -> DncEntry:
        """Add an entry, or return the active entry of the same kind for this number."""
        require(kind, DNC_KINDS, "DNC kind")
        require(source, DNC_SOURCES, "DNC source")
        existing = self.session.scalar(
            select(DncEntry).where(self._active(check_phone(phone)), DncEntry.kind == kind).limit(1)
        )
        if existing is not None:
            return existing
        entry = DncEntry(
            phone=phone, kind=kind, reason=reason, source=source, added_by=added_by,
            call_id=call_id, created_at=at or utcnow(),
        )
        self.session.add(entry)
        self.session.flush()
        return entry

    def remove(self, phone: str, removed_by: str, reason: str, kind: str | None = None,
               at: datetime | None = None) -> int:
        """Close the active entries of the number (only of *kind* if given); returns how many."""
        require(kind, DNC_KINDS, "DNC kind", nullable=True)
        query = select(DncEntry).where(self._active(check_phone(phone)))
        if kind is not None:
            query = query.where(DncEntry.kind == kind)
        entries = self.session.scalars(query).all()
        now = at or utcnow()
        for entry in entries:
            entry.removed_at = now
            entry.removed_by = removed_by
            entry.remove_reason = reason
        self.session.flush()
        return len(entries)

    def is_blocked(self, phone: str) -> bool:
        query = select(DncEntry.id).where(self._active(check_phone(phone))).limit(1)
        return self.session.scalar(query) is not None

    def blocked_among(self, phones: Sequence[str]) -> set[str]:
        """The numbers of *phones* that have an active entry (one query for a whole batch)."""
        if not phones:
            return set()
        return set(self.session.scalars(
            select(DncEntry.phone).where(DncEntry.phone.in_(set(phones)),
                                         DncEntry.removed_at.is_(None))))

    def active(self) -> Sequence[DncEntry]:
        return self.session.scalars(
            select(DncEntry).where(DncEntry.removed_at.is_(None)).order_by(DncEntry.id)
        ).all()

    @staticmethod
    def _active(phone: str) -> ColumnElement[bool]:
        return and_(DncEntry.phone == phone, DncEntry.removed_at.is_(None))


class CallbackRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def schedule(
        self,
        campaign_id: int,
        contact_id: int,
        due_at: datetime,
        kind: str,
        call_id: str | None = None,
        requested_text: str | None = None,
    ) -> Callback:
        require(kind, CALLBACK_KINDS, "callback kind")
        callback = Callback(
            campaign_id=campaign_id,
            contact_id=contact_id,
            due_at=due_at,
            kind=kind,
            call_id=call_id,
            requested_text=requested_text,
        )
        self.session.add(callback)
        self.session.flush()
        return callback

    def due(self, now: datetime, limit: int = 100) -> Sequence[Callback]:
        """Pending callbacks due at *now* or earlier, oldest first."""
        return self.session.scalars(
            select(Callback)
            .where(Callback.status == "pending", Callback.due_at <= now)
            .order_by(Callback.due_at, Callback.id)
            .limit(limit)
        ).all()

    def mark(self, id: int, status: str) -> Callback:
        require(status, CALLBACK_STATUSES, "callback status")
        callback = self.session.get(Callback, id)
        if callback is None:
            raise NotFound(f"callback {id}")
        callback.status = status
        self.session.flush()
        return callback

    def pending_for(self, contact_id: int, *, due_by: datetime | None = None,
                    kinds: Sequence[str] | None = None) -> Sequence[Callback]:
        """The contact's pending callbacks (due by *due_by*, of *kinds*), earliest first."""
        query = select(Callback).where(Callback.contact_id == contact_id,
                                       Callback.status == "pending")
        if due_by is not None:
            query = query.where(Callback.due_at <= due_by)
        if kinds is not None:
            query = query.where(Callback.kind.in_(list(kinds)))
        return self.session.scalars(query.order_by(Callback.due_at, Callback.id)).all()

    def cancel_pending(self, contact_id: int, kinds: Sequence[str] | None = None) -> int:
        """Cancel the contact's pending callbacks (only of *kinds* if given); how many."""
        callbacks = self.pending_for(contact_id, kinds=kinds)
        for callback in callbacks:
            callback.status = "cancelled"
        self.session.flush()
        return len(callbacks)


class PhoneLockRepo:
    """One live call per number across campaigns and gateways (table ``phone_locks``)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def available(self, phone: str) -> bool:
        """Whether this transaction may lock *phone*: no live call holds it and, on PostgreSQL,
        no concurrent transaction is locking it right now.  Never waits.

        On PostgreSQL it takes a transaction-scoped advisory lock on the number without
        waiting (``pg_try_advisory_xact_lock``) and keeps it to commit, so the :meth:`lock`
        that follows cannot collide: whoever else holds it may be inserting the same number,
        and queueing behind them could deadlock with a completion releasing the number.
        SQLite has one writer at a time, so the read alone is enough there.
        """
        check_phone(phone)
        if self.session.get_bind().dialect.name == "postgresql":
            got = self.session.scalar(text("SELECT pg_try_advisory_xact_lock(:ns, :k)"),
                                      {"ns": PHONE_LOCK_NAMESPACE, "k": phone_lock_key(phone)})
            if not got:
                return False
        return self.holder(phone) is None

    def lock(self, phone: str, call_id: str, gateway: str | None,
             expires_at: datetime) -> PhoneLock:
        """Lock *phone* for the attempt *call_id* (check :meth:`available` first)."""
        lock = PhoneLock(phone=check_phone(phone), call_id=call_id, gateway=gateway,
                         expires_at=expires_at)
        self.session.add(lock)
        self.session.flush()
        return lock

    def holder(self, phone: str) -> PhoneLock | None:
        return self.session.scalar(select(PhoneLock).where(PhoneLock.phone == phone))

    def locked_among(self, phones: Sequence[str]) -> set[str]:
        if not phones:
            return set()
        return set(self.session.scalars(
            select(PhoneLock.phone).where(PhoneLock.phone.in_(set(phones)))))

    def renew(self, call_ids: Sequence[str], expires_at: datetime) -> None:
        for lock in self.session.scalars(
                select(PhoneLock).where(PhoneLock.call_id.in_(list(call_ids)))):
            lock.expires_at = expires_at
        self.session.flush()

    def release(self, call_id: str) -> None:
        self.session.execute(delete(PhoneLock).where(PhoneLock.call_id == call_id))
        self.session.flush()


# Advisory locks on numbers use PostgreSQL's two-int4 key space, which never overlaps the
# single-bigint one of the consent ledger's lock (ledger.py).
PHONE_LOCK_NAMESPACE = int.from_bytes(b"WHPH", "big")


def phone_lock_key(phone: str) -> int:
    """A signed 32-bit key for a number; two numbers sharing one only makes a claim skip."""
    return zlib.crc32(phone.encode("ascii")) - (1 << 31)


class QaReviewRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, call_id: str, reviewer: str, compliant: bool, notes: str | None = None,
            at: datetime | None = None) -> QaReview:
        if self.session.get(Call, call_id) is None:
            raise NotFound(f"call {call_id}")
        if not reviewer.strip():
            raise ValueError("a QA review needs the reviewer's name")
        review = QaReview(call_id=call_id, reviewer=reviewer, compliant=compliant, notes=notes,
                          created_at=at or utcnow())
        self.session.add(review)
        self.session.flush()
        return review

    def for_call(self, call_id: str) -> Sequence[QaReview]:
        return self.session.scalars(
            select(QaReview).where(QaReview.call_id == call_id).order_by(QaReview.id)).all()


class EscalationRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self, call_id: str, campaign_id: int, contact_id: int, reason: str, context: dict[str, Any]
    ) -> Escalation:
        escalation = Escalation(
            call_id=call_id,
            campaign_id=campaign_id,
            contact_id=contact_id,
            reason=reason,
            context=context,
        )
        self.session.add(escalation)
        self.session.flush()
        return escalation

    def pending(self) -> Sequence[Escalation]:
        return self.session.scalars(
            select(Escalation).where(Escalation.status == "pending").order_by(Escalation.id)
        ).all()

    def mark(self, id: int, status: str) -> Escalation:
        require(status, ESCALATION_STATUSES, "escalation status")
        escalation = self.session.get(Escalation, id)
        if escalation is None:
            raise NotFound(f"escalation {id}")
        escalation.status = status
        self.session.flush()
        return escalation

    def mark_for_call(self, call_id: str, status: str) -> Escalation | None:
        """Set the status of the call's latest pending escalation (the gateway reached an
        agent, or could not); None if the call has none pending."""
        require(status, ESCALATION_STATUSES, "escalation status")
        escalation = self.session.scalar(
            select(Escalation).where(Escalation.call_id == call_id,
                                     Escalation.status == "pending")
            .order_by(Escalation.id.desc()).limit(1))
        if escalation is not None:
            escalation.status = status
            self.session.flush()
        return escalation
