"""`waihu keys`: init, rotate, list (ids only, never secrets) and rehash-ids."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from bot import keys, privacy
from bot.cli import main
from bot.store import CampaignRepo, ContactRepo, Database
from bot.store.models import Contact
from bot.store.repos.audit import AuditRepo


@pytest.fixture
def key_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "keys"
    monkeypatch.setenv(keys.KEYS_DIR_ENV, str(folder))
    return folder


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


def secrets_in(folder: Path) -> list[str]:
    return [line.split()[1] for path in folder.glob("*.key")
            for line in path.read_text().splitlines()]


def test_init_creates_the_missing_keyrings_once(key_dir: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "keys", "init", "--json")
    assert code == 0
    first = json.loads(out)
    assert [(r["name"], r["created"]) for r in first] == [(n, True) for n in keys.KEYRINGS]
    for name in keys.KEYRINGS:
        assert stat.S_IMODE(keys.key_path(name).stat().st_mode) == 0o600
    code, out = run(capsys, "keys", "init", "--json")
    again = json.loads(out)
    assert code == 0 and not any(r["created"] for r in again)
    assert [r["current"] for r in again] == [r["current"] for r in first]


def test_list_and_rotate_show_key_ids_never_secrets(key_dir: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "keys", "list")
    assert code == 1 and "missing" in out and "waihu keys init" in out
    run(capsys, "keys", "init")
    first = keys.load(keys.ID_HASH).current.id
    code, out = run(capsys, "keys", "rotate", keys.ID_HASH)
    assert code == 0 and "rehash-ids" in out
    rotated = keys.load(keys.ID_HASH)
    assert rotated.current.id != first and rotated.get(first) is not None
    code, listed = run(capsys, "keys", "list", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(listed)}
    assert rows[keys.ID_HASH]["current"] == rotated.current.id
    assert rows[keys.ID_HASH]["older"] == [first]
    _, text = run(capsys, "keys", "list")
    for secret in secrets_in(key_dir):
        assert secret not in listed + out + text


def test_a_key_from_the_environment_is_not_rotated_here(
        key_dir: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAIHU_KEY_LEDGER", "k1:" + "ab" * 32)
    code, out = run(capsys, "keys", "rotate", keys.LEDGER)
    assert code == 2 and "environment" in out
    assert not keys.key_path(keys.LEDGER).exists()


def test_rehash_ids_moves_old_and_unkeyed_hashes_to_the_current_key(
        key_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    db = Database(url)
    db.upgrade()
    run(capsys, "keys", "init")
    old_ring = keys.load(keys.ID_HASH)
    with db.session() as session:
        campaign_id = CampaignRepo(session).add("c", "marketing", {}, "0" * 64).id
        repo = ContactRepo(session, privacy.IdHasher(old_ring))
        on_old_key = repo.add(campaign_id, "13800000001", id_last4="0001").id
        legacy = repo.add(campaign_id, "13800000002")
        salt = privacy.new_salt()
        legacy.id_last4_hash, legacy.id_salt = privacy.unkeyed_hash("998X", salt), salt
        broken = repo.add(campaign_id, "13800000003", id_last4="5555")
        broken.id_last4_hash = "0" * 64  # matches no digits
        ids = {"old": on_old_key, "legacy": legacy.id, "broken": broken.id}
    run(capsys, "keys", "rotate", keys.ID_HASH)
    ring = keys.load(keys.ID_HASH)
    with db.session() as session:
        ids["current"] = ContactRepo(session).add(campaign_id, "13800000004",
                                                  id_last4="4444").id
        before_current = session.get(Contact, ids["current"])
        assert before_current is not None
        current_hash = before_current.id_last4_hash

    code, out = run(capsys, "--database", url, "keys", "rehash-ids", "--json")
    result = json.loads(out)
    assert code == 1  # one hash matched no digits: said, and the exit status says so
    assert result["moved"] == 2 and result["unmatched_contact_ids"] == [ids["broken"]]
    assert result["hashes_by_key"] == {ring.current.id: 3, old_ring.current.id: 1}
    with db.session() as session:
        repo = ContactRepo(session)
        for name, digits in (("old", "0001"), ("legacy", "998X"), ("current", "4444")):
            contact = session.get(Contact, ids[name])
            assert contact is not None and contact.id_hash_key == ring.current.id, name
            assert repo.check_id_last4(contact, digits) is True, name
        unchanged = session.get(Contact, ids["current"])
        assert unchanged is not None and unchanged.id_last4_hash == current_hash
        [entry] = AuditRepo(session).entries("keys.rehash_ids")
        assert entry.detail["moved"] == 2 and entry.actor.startswith("os:")
    for digits in ("0001", "998X"):
        assert digits not in out


def test_rehash_ids_says_which_key_the_keyring_lost(
        key_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    db = Database(url)
    db.upgrade()
    run(capsys, "keys", "init")
    with db.session() as session:
        campaign_id = CampaignRepo(session).add("c", "marketing", {}, "0" * 64).id
        contact = ContactRepo(session).add(campaign_id, "13800000001", id_last4="0001")
        contact.id_hash_key = "kgone"
    code, out = run(capsys, "--database", url, "keys", "rehash-ids")
    assert code == 1 and "kgone" in out and "backup" in out
