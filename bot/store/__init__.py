"""Waihu storage layer: models, unit of work, repositories (``repos``), consent ledger.

Importing this package creates no engine and opens no connection: build a
:class:`Database` and use ``with db.session() as session:`` as the unit of work.
"""

from bot.store import models, repos, vocab
from bot.store.base import Base, UTCDateTime, utcnow
from bot.store.db import Database, default_url, in_write
from bot.store.ledger import ConsentLedger, LedgerCheck
from bot.store.models import (
    Agent,
    AgentCampaign,
    AuditEntry,
    Call,
    CallAttempt,
    Callback,
    Campaign,
    Consent,
    Contact,
    DncEntry,
    Escalation,
    PhoneLock,
    QaReview,
    SurveyAnswer,
    TranscriptTurn,
    User,
)
from bot.store.repos import (
    AuditRepo,
    CallbackRepo,
    CallRepo,
    CampaignRepo,
    ContactRepo,
    DncRepo,
    EscalationRepo,
    NotFound,
    PhoneLockRepo,
    QaReviewRepo,
    SurveyRepo,
)
from bot.store.vocab import DECLINE_REASONS, DIAL_RESULTS, OUTCOMES

__all__ = [
    "Agent",
    "AgentCampaign",
    "AuditEntry",
    "AuditRepo",
    "DECLINE_REASONS",
    "DIAL_RESULTS",
    "OUTCOMES",
    "Base",
    "Call",
    "CallAttempt",
    "CallRepo",
    "Callback",
    "CallbackRepo",
    "Campaign",
    "CampaignRepo",
    "Consent",
    "ConsentLedger",
    "Contact",
    "ContactRepo",
    "Database",
    "DncEntry",
    "DncRepo",
    "Escalation",
    "EscalationRepo",
    "LedgerCheck",
    "NotFound",
    "PhoneLock",
    "PhoneLockRepo",
    "QaReview",
    "QaReviewRepo",
    "SurveyAnswer",
    "SurveyRepo",
    "TranscriptTurn",
    "UTCDateTime",
    "User",
    "default_url",
    "in_write",
    "models",
    "repos",
    "utcnow",
    "vocab",
]
