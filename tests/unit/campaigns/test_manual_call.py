"""A call placed by hand (`waihu call`) obeys the dialer's rules: do-not-call, blacklist,
calling window, the phone lock; `force` overrides them for a test line and is audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.campaigns.definition import CampaignDefinition, load_definition
from bot.campaigns.dialer import Dialer
from bot.campaigns.manual import GATEWAY, CallRefused, claim_manual_call
from bot.campaigns.registry import save_campaign
from bot.store import AuditRepo, Database, DncRepo, PhoneLockRepo
from bot.store.models import CallAttempt, Contact
from tests.unit.campaigns.test_dialer import gateway_result

REPO = Path(__file__).resolve().parents[3]
PHONE = "13812345678"
# 10:00 and 22:00 in Asia/Shanghai: inside and outside marketing.yml's windows.
IN_WINDOW = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
OUT_OF_WINDOW = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)


@pytest.fixture
def campaign(db: Database) -> tuple[int, CampaignDefinition]:
    defn = load_definition(REPO / "examples" / "campaigns" / "marketing.yml")
    return save_campaign(db, defn), defn


def _attempts(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(CallAttempt)) or 0


def _bar(db: Database, kind: str) -> None:
    with db.session() as session:
        DncRepo(session).add(PHONE, kind, "test", "operator", "admin")


def _lock_holder(db: Database) -> str | None:
    with db.session() as session:
        holder = PhoneLockRepo(session).holder(PHONE)
        return holder.call_id if holder else None


def test_a_call_the_rules_allow_takes_the_lock_until_it_is_completed(
        db: Database, campaign: tuple[int, CampaignDefinition]) -> None:
    campaign_id, defn = campaign
    manual = claim_manual_call(db, campaign_id, defn, PHONE, "sip:x@127.0.0.1", IN_WINDOW)
    assert manual.overridden == ()
    assert _lock_holder(db) == manual.job.call_id
    with db.session() as session:
        assert AuditRepo(session).entries("call.forced") == []
    Dialer(db, GATEWAY).complete(manual.job.call_id, IN_WINDOW + timedelta(minutes=2))
    assert _lock_holder(db) is None


@pytest.mark.parametrize("kind", ["do_not_call", "blacklist"])
def test_a_barred_number_is_refused_and_nothing_is_written(
        db: Database, campaign: tuple[int, CampaignDefinition], kind: str) -> None:
    campaign_id, defn = campaign
    _bar(db, kind)
    with pytest.raises(CallRefused) as refused:
        claim_manual_call(db, campaign_id, defn, PHONE, "sip:x@127.0.0.1", IN_WINDOW)
    assert refused.value.rules == ("do_not_call",)
    assert "138****5678" in str(refused.value) and PHONE not in str(refused.value)
    assert _attempts(db) == 0 and _lock_holder(db) is None
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 0


def test_a_customer_who_declined_is_not_called_again_by_hand(
        db: Database, campaign: tuple[int, CampaignDefinition]) -> None:
    campaign_id, defn = campaign
    first = claim_manual_call(db, campaign_id, defn, PHONE, "sip:x@127.0.0.1", IN_WINDOW)
    gateway_result(db, first.job.call_id, "answered", "declined", at=IN_WINDOW,
                   decline_reason="distrust")
    Dialer(db, GATEWAY).complete(first.job.call_id, IN_WINDOW + timedelta(minutes=2))
    later = IN_WINDOW + timedelta(minutes=30)
    with pytest.raises(CallRefused) as refused:
        claim_manual_call(db, campaign_id, defn, PHONE, "sip:x@127.0.0.1", later)
    assert refused.value.rules == ("declined",) and "declined" in str(refused.value)
    assert _attempts(db) == 1


def test_outside_the_calling_window_is_refused(
        db: Database, campaign: tuple[int, CampaignDefinition]) -> None:
    campaign_id, defn = campaign
    with pytest.raises(CallRefused) as refused:
        claim_manual_call(db, campaign_id, defn, PHONE, "sip:x@127.0.0.1", OUT_OF_WINDOW)
    assert refused.value.rules == ("outside_window",)
    assert _attempts(db) == 0


def test_a_number_on_another_live_call_is_refused(
        db: Database, campaign: tuple[int, CampaignDefinition]) -> None:
    campaign_id, defn = campaign
    first = claim_manual_call(db, campaign_id, defn, PHONE, "sip:x@127.0.0.1", IN_WINDOW)
    with pytest.raises(CallRefused) as refused:
        claim_manual_call(db, campaign_id, defn, PHONE, "sip:x@127.0.0.1", IN_WINDOW)
    assert refused.value.rules == ("phone_locked",)
    assert _attempts(db) == 1 and _lock_holder(db) == first.job.call_id


def test_force_overrides_the_rules_and_is_audited(
        db: Database, campaign: tuple[int, CampaignDefinition]) -> None:
    campaign_id, defn = campaign
    _bar(db, "blacklist")
    forced = claim_manual_call(db, campaign_id, defn, PHONE, "sip:x@127.0.0.1",
                               OUT_OF_WINDOW, force=True)
    assert forced.overridden == ("do_not_call", "outside_window")
    assert _lock_holder(db) == forced.job.call_id
    # A second forced call to the number: it goes, without the lock the first one holds.
    again = claim_manual_call(db, campaign_id, defn, PHONE, "sip:x@127.0.0.1",
                              OUT_OF_WINDOW, force=True)
    assert again.overridden == ("do_not_call", "outside_window", "phone_locked")
    assert _lock_holder(db) == forced.job.call_id
    with db.session() as session:
        entries = AuditRepo(session).entries("call.forced")
        assert [(e.subject, e.detail) for e in entries] == [
            (forced.job.call_id, {"phone": "138****5678",
                                  "rules": ["do_not_call", "outside_window"]}),
            (again.job.call_id, {"phone": "138****5678",
                                 "rules": ["do_not_call", "outside_window", "phone_locked"]})]
        assert all(e.actor.startswith("os:") for e in entries)
