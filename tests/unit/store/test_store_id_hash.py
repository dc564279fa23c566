"""ID digits at rest (ContactRepo): keyed with the server key, re-keyed when the customer
proves them, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import keys, privacy
from bot.store import CampaignRepo, ContactRepo, Database
from bot.store.models import Contact


def _campaign(db: Database) -> int:
    with db.session() as session:
        return CampaignRepo(session).add("ids", "marketing", {}, "0" * 64).id


def test_an_unkeyed_legacy_row_verifies_and_is_rekeyed_on_success(db: Database) -> None:
    campaign_id = _campaign(db)
    salt = privacy.new_salt()
    with db.session() as session:
        added = ContactRepo(session).add(campaign_id, "13800000011")
        added.id_last4_hash, added.id_salt = privacy.unkeyed_hash("0427", salt), salt
        contact_id = added.id
    with db.session() as session:  # a wrong answer changes nothing
        contact = session.get(Contact, contact_id)
        assert contact is not None
        assert ContactRepo(session).check_id_last4(contact, "0428") is False
    with db.session() as session:
        legacy = session.get(Contact, contact_id)
        assert legacy is not None and legacy.id_hash_key is None
        assert legacy.id_salt == salt
        assert ContactRepo(session).check_id_last4(legacy, "0427") is True
    current = keys.load(keys.ID_HASH).current
    with db.session() as session:
        rekeyed = session.get(Contact, contact_id)
        assert rekeyed is not None and rekeyed.id_salt is not None
        assert rekeyed.id_hash_key == current.id and rekeyed.id_salt != salt
        assert rekeyed.id_last4_hash == privacy.keyed_hash("0427", rekeyed.id_salt, current)
        assert ContactRepo(session).check_id_last4(rekeyed, "0427") is True


def test_after_a_rotation_old_hashes_verify_and_move_to_the_new_key(
        db: Database, tmp_path: Path) -> None:
    campaign_id = _campaign(db)
    first = keys.ensure(keys.ID_HASH, tmp_path)[0]
    with db.session() as session:
        contact_id = ContactRepo(session, privacy.IdHasher(first)).add(
            campaign_id, "13800000012", id_last4="7781").id
    rotated = keys.rotate(keys.ID_HASH, tmp_path)
    with db.session() as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None and contact.id_hash_key == first.current.id
        repo = ContactRepo(session, privacy.IdHasher(rotated))
        assert repo.check_id_last4(contact, "7780") is False
        assert contact.id_hash_key == first.current.id
        assert repo.check_id_last4(contact, "7781") is True
    with db.session() as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None and contact.id_hash_key == rotated.current.id
        assert ContactRepo(session, privacy.IdHasher(rotated)).check_id_last4(
            contact, "7781") is True


def test_without_the_key_file_hashing_and_checking_fail_clearly(
        db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    campaign_id = _campaign(db)
    with db.session() as session:
        contact = ContactRepo(session).add(campaign_id, "13800000013", id_last4="1357")
    monkeypatch.setenv(keys.KEYS_DIR_ENV, str(tmp_path / "empty"))
    with db.session() as session:
        repo = ContactRepo(session)
        assert repo.add(campaign_id, "13800000014").id  # no ID digits: no key needed
        with pytest.raises(keys.KeyringError, match="missing"):
            repo.check_id_last4(contact, "1357")
        with pytest.raises(keys.KeyringError, match="missing"):
            repo.add(campaign_id, "13800000015", id_last4="2468")
