"""Tables of the Waihu store (SQLAlchemy 2 typed models)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.store.base import Base, utcnow
from bot.store.vocab import (
    AGENT_STATES,
    ATTEMPT_KINDS,
    AWAY_REASONS,
    CALLBACK_KINDS,
    CALLBACK_STATUSES,
    CAMPAIGN_STATUSES,
    CAMPAIGN_TYPES,
    CONFIRMATION_RESULTS,
    CONTACT_STATUSES,
    DECLINE_REASONS,
    DIAL_RESULTS,
    DISPOSITIONS,
    DISTRIBUTION_STRATEGIES,
    DNC_KINDS,
    DNC_SOURCES,
    ESCALATION_STATUSES,
    INPUT_MODES,
    OFFER_OUTCOMES,
    OUTCOMES,
    PRESENCE_EVENTS,
    SPEAKERS,
    SURVEY_SCORE_MAX,
    SURVEY_SCORE_MIN,
    USER_ROLES,
)

GENESIS_HASH = "0" * 64
# Server-side defaults too, so rows written by raw SQL or bulk tools get the same values.
EMPTY_JSON = text("'{}'")


def one_of(column: str, values: tuple[str, ...], name: str | None = None) -> CheckConstraint:
    """CHECK that *column* holds one of *values* (NULL passes: nullability is separate)."""
    listed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=name or column)


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (one_of("type", CAMPAIGN_TYPES), one_of("status", CAMPAIGN_STATUSES))

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    type: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20), default="draft", server_default="draft")
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    # CampaignDefinition.wording_hash(); the column keeps its first name.
    wording_hash: Mapped[str] = mapped_column("script_hash", String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        default=utcnow, server_default=func.now(), onupdate=utcnow
    )


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("campaign_id", "phone"),
        Index(None, "campaign_id", "status", "next_attempt_at"),
        one_of("status", CONTACT_STATUSES),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    phone: Mapped[str] = mapped_column(String(20))
    name: Mapped[str | None] = mapped_column(String(100))
    gender: Mapped[str | None] = mapped_column(String(10))
    age: Mapped[int | None] = mapped_column(Integer)
    region: Mapped[str | None] = mapped_column(String(50))
    id_last4_hash: Mapped[str | None] = mapped_column(String(64))
    id_salt: Mapped[str | None] = mapped_column(String(32))
    id_hash_key: Mapped[str | None] = mapped_column(String(32))  # bot.keys key id; None: unkeyed
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default=EMPTY_JSON)
    status: Mapped[str] = mapped_column(String(20), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None]
    priority: Mapped[int] = mapped_column(default=0, server_default="0")
    last_result: Mapped[str | None] = mapped_column(String(30))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class CallAttempt(Base):
    """One dial of one contact; ``call_id`` is also the Rasa sender id.

    An attempt handed out by the dialer holds a *lease* (``lease_expires_at``) while a gateway
    works on it; the gateway renews it, and completing or reclaiming the attempt clears it and
    sets ``completed_at``.  The lease is the one record of a live call: its number's
    ``phone_locks`` row only guards against a second call and lives exactly as long.
    ``callback_id`` is a loose reference (no foreign key, so SQLite can add and drop the
    column in place) to the callback this attempt dialled.
    """

    __tablename__ = "call_attempts"
    __table_args__ = (
        UniqueConstraint("contact_id", "attempt_no"),
        Index(None, "started_at"),  # reports count a period's attempts (migration 0020)
        one_of("dial_result", DIAL_RESULTS),
        one_of("kind", ATTEMPT_KINDS),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(String(36), unique=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    attempt_no: Mapped[int]
    dial_result: Mapped[str | None] = mapped_column(String(20))
    gateway: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    started_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    kind: Mapped[str] = mapped_column(String(30), default="first", server_default="first")
    callback_id: Mapped[int | None]
    completed_at: Mapped[datetime | None]


class Call(Base):
    """The conversation of an answered attempt; ``id`` is the attempt's ``call_id``."""

    __tablename__ = "calls"
    __table_args__ = (
        Index(None, "campaign_id", "started_at"),  # the QA population's day (migration 0020)
        one_of("outcome", OUTCOMES),
        one_of("decline_reason", DECLINE_REASONS),
        one_of("confirmation_result", CONFIRMATION_RESULTS),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("call_attempts.id"), unique=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    ended_at: Mapped[datetime | None]
    stage: Mapped[str | None] = mapped_column(String(40))
    outcome: Mapped[str | None] = mapped_column(String(30))
    decline_reason: Mapped[str | None] = mapped_column(String(20))
    confirmation_result: Mapped[str | None] = mapped_column(String(20))
    grade: Mapped[str | None] = mapped_column(String(1))
    verified: Mapped[bool] = mapped_column(default=False, server_default=false())
    pitched: Mapped[bool] = mapped_column(default=False, server_default=false())
    script_completed: Mapped[bool] = mapped_column(default=False, server_default=false())
    recording_path: Mapped[str | None] = mapped_column(String(500))
    recording_sha256: Mapped[str | None] = mapped_column(String(64))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default=EMPTY_JSON)
    # The call flow's state (actions.flowtypes.FlowState), kept by the server: the actions
    # read it from here, never from the slot a request carries.  Null until /call_started.
    flow_state: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class TranscriptTurn(Base):
    __tablename__ = "transcript_turns"
    __table_args__ = (
        UniqueConstraint("call_id", "seq"),
        one_of("speaker", SPEAKERS),
        one_of("input_mode", INPUT_MODES),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"))
    seq: Mapped[int]
    speaker: Mapped[str] = mapped_column(String(10))
    text: Mapped[str] = mapped_column(Text)
    intent: Mapped[str | None] = mapped_column(String(40))
    intent_confidence: Mapped[float | None] = mapped_column(Float)
    input_mode: Mapped[str | None] = mapped_column(String(10))
    asr_confidence: Mapped[float | None] = mapped_column(Float)
    # The recogniser put the words right (snapped to a hint, homophones repaired): a guess
    # no consent may rest on (migration 0021; null: not recorded, or not speech).
    asr_snapped: Mapped[bool | None]
    # A system note of the gateway's `disclosure.interrupted`: the disclosures the customer
    # did not hear in full (migration 0021).
    unheard_disclosures: Mapped[list[str] | None] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    ended_at: Mapped[datetime | None]


LEDGER_KINDS = ("consent", "recording_seal")  # the kinds of ledger entry


class Consent(Base):
    """The consent ledger: append-only and only at its head (database triggers), hash-chained
    and signed (see ledger.py).  Two kinds of entry share the chain: a ``consent`` and the
    ``recording_seal`` of a call with a consent (its recording's sha256 and length, appended
    when the call closes).  Rows from before migration 0007 have no ``key_id``: legacy,
    unsigned entries."""

    __tablename__ = "consents"
    __table_args__ = (one_of("input_mode", INPUT_MODES), one_of("kind", LEDGER_KINDS))

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), default="consent", server_default="consent")
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    product: Mapped[str | None] = mapped_column(String(200))
    script_hash: Mapped[str | None] = mapped_column(String(64))
    disclosures: Mapped[list[str] | None] = mapped_column(JSON)
    utterance: Mapped[str | None] = mapped_column(Text)
    input_mode: Mapped[str | None] = mapped_column(String(10))
    asr_confidence: Mapped[float | None] = mapped_column(Float)
    # HMAC of the contact's phone number with the ledger key (a plain hash of an 11-digit
    # number is reversed by trying them all).
    phone_hash: Mapped[str | None] = mapped_column(String(64))
    # The consenting input on the call's timeline (ms since the session started; voice only).
    audio_start_ms: Mapped[int | None] = mapped_column(Integer)
    audio_end_ms: Mapped[int | None] = mapped_column(Integer)
    # The transcript turn of the consent (transcript_turns.seq and its text as written).
    turn_seq: Mapped[int | None] = mapped_column(Integer)
    turn_text: Mapped[str | None] = mapped_column(Text)
    # A recording seal's recording.
    recording_sha256: Mapped[str | None] = mapped_column(String(64))
    recording_ms: Mapped[int | None] = mapped_column(Integer)
    # A sale an agent closed and handed back to the bot to confirm: ``agent:USERNAME``
    # (migration 0019); None for the bot's own.
    closed_by: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_id: Mapped[str | None] = mapped_column(String(40))
    signature: Mapped[str | None] = mapped_column(String(128))  # Ed25519, hex


class SurveyAnswer(Base):
    __tablename__ = "survey_answers"
    __table_args__ = (
        UniqueConstraint("call_id", "question_key"),
        CheckConstraint(f"score BETWEEN {SURVEY_SCORE_MIN} AND {SURVEY_SCORE_MAX}", name="score"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    question_key: Mapped[str] = mapped_column(String(40))
    question_text: Mapped[str] = mapped_column(Text)
    score: Mapped[int | None]
    answer_text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class DncEntry(Base):
    """Do-not-call / blacklist entry; active while ``removed_at`` is NULL.

    ``call_id`` is a loose reference (no foreign key): imported and operator entries have no
    call, and the id may be that of an attempt that never became a ``Call``.
    """

    __tablename__ = "dnc_entries"
    __table_args__ = (one_of("kind", DNC_KINDS), one_of("source", DNC_SOURCES))

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(20))
    added_by: Mapped[str] = mapped_column(String(100))
    call_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    removed_at: Mapped[datetime | None]
    removed_by: Mapped[str | None] = mapped_column(String(100))
    remove_reason: Mapped[str | None] = mapped_column(Text)


class Callback(Base):
    """A call to make later; ``call_id`` (loose reference) is the call that asked for it."""

    __tablename__ = "callbacks"
    __table_args__ = (
        Index(None, "status", "due_at"),
        one_of("kind", CALLBACK_KINDS),
        one_of("status", CALLBACK_STATUSES),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    call_id: Mapped[str | None] = mapped_column(String(36))
    due_at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(30))
    requested_text: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="pending", server_default="pending")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class Escalation(Base):
    __tablename__ = "escalations"
    __table_args__ = (one_of("status", ESCALATION_STATUSES),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    reason: Mapped[str] = mapped_column(String(30))
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="pending", server_default="pending")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class PhoneLock(Base):
    """The guard that keeps a number on one live call at most, whatever the campaign or
    gateway: the primary key makes a second row for the same phone impossible.

    It has no clock of its own.  Whether a call is live, and until when, is its attempt's
    lease (``CallAttempt.lease_expires_at``); this row is inserted in the unit of work that
    grants the lease and deleted in the one that ends it (completion or reclaim), so it exists
    exactly while its attempt's lease does.
    """

    __tablename__ = "phone_locks"

    phone: Mapped[str] = mapped_column(String(20), primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("call_attempts.call_id"), unique=True)
    gateway: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class QaReview(Base):
    """A reviewer's verdict on a call against the four rules (DESIGN.md, recording and QA)."""

    __tablename__ = "qa_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), index=True)
    reviewer: Mapped[str] = mapped_column(String(100))
    compliant: Mapped[bool]
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class AuditEntry(Base):
    """Who did what: an operator or console user's action that a reviewer may ask about
    (a forced call, an unmasked number viewed, a disposition changed).  Insert-only."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), index=True)
    actor: Mapped[str] = mapped_column(String(100))  # "os:<login>", "user:<name>", "service:…"
    action: Mapped[str] = mapped_column(String(60), index=True)  # e.g. "call.forced"
    subject: Mapped[str | None] = mapped_column(String(100))  # a call id, a contact id …
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class User(Base):
    """A console account (admin, supervisor, qa or agent); ``password_hash`` is argon2id.

    ``failed_logins`` and ``locked_until`` throttle guessing per account (bot/console/auth.py);
    ``session_version`` grows when the password changes or the account is disabled, which
    ends every session issued before."""

    __tablename__ = "users"
    __table_args__ = (one_of("role", USER_ROLES),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    disabled: Mapped[bool] = mapped_column(default=False, server_default=false())
    failed_logins: Mapped[int] = mapped_column(default=0, server_default="0")
    locked_until: Mapped[datetime | None]
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        default=utcnow, server_default=func.now(), onupdate=utcnow
    )
    agent: Mapped[Agent | None] = relationship(back_populates="user", lazy="selectin")


class Agent(Base):
    """The agent profile of a user with role ``agent``: the SIP address their calls ring
    (desk phone or softphone) and their weight for the ``weight`` distribution; the
    campaigns they serve are ``agent_campaigns`` rows."""

    __tablename__ = "agents"
    __table_args__ = (CheckConstraint("weight >= 0", name="weight"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    sip_uri: Mapped[str | None] = mapped_column(String(200))
    weight: Mapped[int] = mapped_column(default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        default=utcnow, server_default=func.now(), onupdate=utcnow
    )
    user: Mapped[User] = relationship(back_populates="agent")
    campaign_links: Mapped[list[AgentCampaign]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="AgentCampaign.campaign")

    @property
    def campaigns(self) -> list[str]:
        return [link.campaign for link in self.campaign_links]


class AgentCampaign(Base):
    """An agent serves a campaign, by the campaign's name (unique in ``campaigns``): a loose
    reference, so an agent can be set up before the campaign is created."""

    __tablename__ = "agent_campaigns"

    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.user_id"), primary_key=True)
    campaign: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)


class AgentStateChange(Base):
    """One change of an agent's presence (bot/agents/presence.py), kept for the agent figures.

    ``seq`` numbers an agent's changes from 1; the unique (agent, seq) pair makes two desks
    changing the same agent at once collide instead of both writing from the same state.
    ``event`` is what caused the change, ``reason`` the away reason, ``call_id`` (a loose
    reference) the call the change is about."""

    __tablename__ = "agent_state_changes"
    __table_args__ = (
        UniqueConstraint("agent_id", "seq"),
        Index(None, "at"),
        one_of("from_state", AGENT_STATES),
        one_of("to_state", AGENT_STATES),
        one_of("event", PRESENCE_EVENTS),
        one_of("reason", AWAY_REASONS),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.user_id"))
    seq: Mapped[int]
    at: Mapped[datetime]
    from_state: Mapped[str] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    event: Mapped[str] = mapped_column(String(30))
    reason: Mapped[str | None] = mapped_column(String(30))
    call_id: Mapped[str | None] = mapped_column(String(36))


# An offer is ringing while it has no outcome: one at a time per escalation and per agent.
_RINGING = text("outcome IS NULL")


class EscalationOffer(Base):
    """An escalated call offered to one agent, why that agent (``reason``, ``strategy``, and
    the team's state the choice was made from, ``snapshot``: bot/agents/distribution.py
    replays it), and the answer: ``accepted``, ``declined``, ``timed_out`` or ``withdrawn``
    (the escalation ended while it rang).  ``listened_at``: the agent listened in first."""

    __tablename__ = "escalation_offers"
    __table_args__ = (
        Index(None, "agent_id", "offered_at"),
        Index("ix_escalation_offers_ringing_escalation", "escalation_id", unique=True,
              sqlite_where=_RINGING, postgresql_where=_RINGING),
        Index("ix_escalation_offers_ringing_agent", "agent_id", unique=True,
              sqlite_where=_RINGING, postgresql_where=_RINGING),
        one_of("outcome", OFFER_OUTCOMES),
        one_of("strategy", DISTRIBUTION_STRATEGIES),
        CheckConstraint("(outcome IS NULL) = (answered_at IS NULL)", name="answered"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    escalation_id: Mapped[int] = mapped_column(ForeignKey("escalations.id"))
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.user_id"))
    offered_at: Mapped[datetime]
    listened_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(20))
    strategy: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)


class Disposition(Base):
    """What the agent who took an escalated call records after it (one per escalation):
    the disposition, notes, the time of a promised callback, and the after-call work it
    took (seconds, capped by the campaign's ``wrap_up_max_s``).  ``call_id`` is the
    escalation's call, kept here for the reports."""

    __tablename__ = "dispositions"
    __table_args__ = (
        one_of("disposition", DISPOSITIONS),
        CheckConstraint("(disposition = 'callback') = (callback_at IS NOT NULL)",
                        name="callback_at"),
        CheckConstraint("wrap_up_s >= 0", name="wrap_up_s"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    escalation_id: Mapped[int] = mapped_column(ForeignKey("escalations.id"), unique=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.user_id"), index=True)
    disposition: Mapped[str] = mapped_column(String(20))
    notes: Mapped[str | None] = mapped_column(Text)
    callback_at: Mapped[datetime | None]
    wrap_up_s: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime]
    updated_at: Mapped[datetime | None]


# --- QA samples (bot/qa/sampling.py) --------------------------------------------------------

QA_SAMPLE_KINDS = ("daily", "weekly")
QA_SAMPLE_REASONS = ("random", "always:consent", "always:complaint", "always:escalated",
                     "always:do_not_call", "min_per_agent")


class QaSample(Base):
    """One draw of a campaign's calls for QA review: a day's (``daily``) or, for the
    supervisors, a week's (``weekly``, Monday to Sunday) in the campaign's time zone.
    One per campaign, kind and period (drawing again returns it).  What an auditor needs
    to draw it again: the rule it was drawn by (rates, inclusions, what a valid call is,
    the algorithm's version), the population (its size and the sha256 of its sorted call
    ids), the random ``nonce`` drawn when the period was over and the ``seed`` derived from
    it and the rest (bot/qa/draw.py)."""

    __tablename__ = "qa_samples"
    __table_args__ = (
        UniqueConstraint("campaign_id", "kind", "period_start"),
        one_of("kind", QA_SAMPLE_KINDS),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    kind: Mapped[str] = mapped_column(String(10))
    period_start: Mapped[date]  # the first day of the period (local to the campaign)
    period_end: Mapped[date]  # its last day
    timezone: Mapped[str] = mapped_column(String(60))
    rule: Mapped[dict[str, Any]] = mapped_column(JSON)
    population_size: Mapped[int]  # valid calls of the period
    eligible_size: Mapped[int]  # of them, those that could be drawn (weekly: not drawn daily)
    population_sha256: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(64))
    seed: Mapped[str] = mapped_column(String(64))
    drawn_at: Mapped[datetime]
    drawn_by: Mapped[str] = mapped_column(String(100))
    calls: Mapped[list[QaSampleCall]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="QaSampleCall.position")


class QaSampleCall(Base):
    """A call drawn into a QA sample, and why: ``random``, ``always:<kind>`` or
    ``min_per_agent``; ``position`` is its place in the draw."""

    __tablename__ = "qa_sample_calls"
    __table_args__ = (
        UniqueConstraint("sample_id", "call_id"),
        UniqueConstraint("sample_id", "position"),
        one_of("reason", QA_SAMPLE_REASONS),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("qa_samples.id"))
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), index=True)
    position: Mapped[int]
    reason: Mapped[str] = mapped_column(String(30))


class QaClaim(Base):
    """A reviewer holding a sampled call while scoring it, until ``expires_at`` (then the
    call is free again).  One per call; the review's submission removes it."""

    __tablename__ = "qa_claims"

    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), primary_key=True)
    reviewer: Mapped[str] = mapped_column(String(100))
    claimed_at: Mapped[datetime]
    expires_at: Mapped[datetime]


# --- complaints (bot/qa/complaints.py) ------------------------------------------------------

COMPLAINT_STATUSES = ("new", "contacted", "resolved")
COMPLAINT_SOURCES = ("call", "agent", "supervisor")  # the bot heard it; entered in the console
COMPLAINT_SEVERITIES = ("low", "medium", "high")
COMPLAINT_ROOT_CAUSES = ("value", "system", "people")  # the practice's three causes
COMPLAINT_DECISIONS = ("serious", "not_serious")
COMPLAINT_BLACKLIST_POLICIES = ("immediately", "on_decision")


class Complaint(Base):
    """A customer's complaint and its handling: what was said, how severe, the status with
    its deadlines and who did each step, the answer given, the root cause, and a
    supervisor's decision whether it was serious enough to blacklist the number.  One per
    call at most (``call_id`` unique; NULL for one entered without a call).
    ``blacklist_policy`` is the campaign's setting when the complaint was recorded;
    ``blacklist_entry_id`` (loose reference) the blacklist entry it applied or found."""

    __tablename__ = "complaints"
    __table_args__ = (
        Index(None, "status", "created_at"),
        one_of("status", COMPLAINT_STATUSES),
        one_of("source", COMPLAINT_SOURCES),
        one_of("severity", COMPLAINT_SEVERITIES),
        one_of("root_cause", COMPLAINT_ROOT_CAUSES),
        one_of("decision", COMPLAINT_DECISIONS),
        one_of("blacklist_policy", COMPLAINT_BLACKLIST_POLICIES),
        CheckConstraint("(decision IS NULL) = (decided_at IS NULL)", name="decided"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    call_id: Mapped[str | None] = mapped_column(ForeignKey("calls.id"), unique=True)
    source: Mapped[str] = mapped_column(String(20))
    words: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100))
    contact_due_at: Mapped[datetime]
    resolve_due_at: Mapped[datetime]
    contacted_at: Mapped[datetime | None]
    contacted_by: Mapped[str | None] = mapped_column(String(100))
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    answer: Mapped[str | None] = mapped_column(Text)
    root_cause: Mapped[str | None] = mapped_column(String(10))
    blacklist_policy: Mapped[str] = mapped_column(String(20))
    blacklist_entry_id: Mapped[int | None]
    decision: Mapped[str | None] = mapped_column(String(20))
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None]


# --- QA results by rule and the recording library (migration 0017) --------------------------

# The scorecard's four rules (bot/qa/scorecard.py RULES, DESIGN.md "The rules the calls must
# follow"); a test keeps the two lists the same.
QA_RULES = ("right_person", "understood", "approved_script", "explicit_consent")
LIBRARY_KINDS = ("exemplary", "problem")


class QaRuleResult(Base):
    """One rule of a review's scorecard: whether it passed (no required checkpoint missed)
    and its points, so the reports can count QA results by rule.  ``points`` and
    ``max_points`` are NULL for reviews from before migration 0017, whose rules were
    recovered from the audit log's ``qa.reviewed`` scorecards (those kept no points)."""

    __tablename__ = "qa_rule_results"
    __table_args__ = (one_of("rule", QA_RULES),)

    review_id: Mapped[int] = mapped_column(ForeignKey("qa_reviews.id"), primary_key=True)
    rule: Mapped[str] = mapped_column(String(30), primary_key=True)
    passed: Mapped[bool]
    points: Mapped[int | None]
    max_points: Mapped[int | None]


class LibraryEntry(Base):
    """A call kept in the recording library for training (bot/qa/library.py): an
    ``exemplary`` call or a ``problem`` one, with a note and tags.  One per call: marking it
    again changes it (the audit log keeps what it was)."""

    __tablename__ = "library_entries"
    __table_args__ = (one_of("kind", LIBRARY_KINDS),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text)
    marked_by: Mapped[str] = mapped_column(String(100))
    marked_at: Mapped[datetime]
    tags: Mapped[list[LibraryTag]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="LibraryTag.tag")


class LibraryTag(Base):
    """A tag of a library entry (a row each, so the library can be filtered by tag)."""

    __tablename__ = "library_tags"

    entry_id: Mapped[int] = mapped_column(ForeignKey("library_entries.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)


# --- supervisors monitoring live calls (bot/monitoring.py, voice/call/monitor.py) ----------

MONITOR_MODES = ("listen", "whisper", "barge")  # heard by: nobody, the agent, everyone
# requested (the console wrote it) → dialling (a gateway took it) → active (the supervisor's
# phone answered) → ended (stopped, hung up, the call ended, or the phone never answered).
MONITOR_STATES = ("requested", "dialling", "active", "ended")
_MONITOR_OPEN = text("state <> 'ended'")


class MonitorSession(Base):
    """A supervisor listening to, whispering on or barging into a live call through their
    SIP phone.  The console writes the request and the supervisor's mode changes; the
    gateway carrying the call reads them back (every 100 ms), dials ``sip_uri`` and writes
    how it went: ``heard_by`` (who hears the supervisor now: ``nobody``, ``agent``,
    ``customer``, ``customer+agent``) and ``end_reason``.  At most one open session per
    call."""

    __tablename__ = "monitor_sessions"
    __table_args__ = (
        Index("ix_monitor_sessions_open_call", "call_id", unique=True,
              sqlite_where=_MONITOR_OPEN, postgresql_where=_MONITOR_OPEN),
        Index(None, "supervisor_id", "requested_at"),
        one_of("mode", MONITOR_MODES),
        one_of("state", MONITOR_STATES),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"))
    supervisor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    sip_uri: Mapped[str] = mapped_column(String(200))
    mode: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(10))
    heard_by: Mapped[str | None] = mapped_column(String(20))
    requested_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(40))
