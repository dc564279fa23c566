"""Repositories, one module per aggregate: queries and changes on one Session.

They flush, never commit: the caller's unit of work (``Database.session()``) commits or rolls
back.
"""

from bot.store.repos.audit import AuditRepo, os_actor
from bot.store.repos.callbacks import CallbackRepo
from bot.store.repos.calls import CallFlags, CallRepo, CallUpdate
from bot.store.repos.campaigns import CampaignRepo
from bot.store.repos.common import NotFound, check_phone
from bot.store.repos.contacts import ContactRepo
from bot.store.repos.dnc import DncRepo
from bot.store.repos.escalations import EscalationRepo
from bot.store.repos.phone_locks import PHONE_LOCK_NAMESPACE, PhoneLockRepo, phone_lock_key
from bot.store.repos.qa import QaReviewRepo
from bot.store.repos.surveys import SurveyRepo
from bot.store.repos.users import UserRepo

__all__ = [
    "PHONE_LOCK_NAMESPACE",
    "AuditRepo",
    "CallFlags",
    "CallRepo",
    "CallUpdate",
    "CallbackRepo",
    "CampaignRepo",
    "ContactRepo",
    "DncRepo",
    "EscalationRepo",
    "NotFound",
    "PhoneLockRepo",
    "QaReviewRepo",
    "SurveyRepo",
    "UserRepo",
    "check_phone",
    "os_actor",
    "phone_lock_key",
]
