"""Server keyrings (bot.keys): created 0600, refused when open to others, rotated in front."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bot import keys


def test_ensure_creates_a_private_keyring_once(tmp_path: Path) -> None:
    ring, created = keys.ensure("ledger", tmp_path)
    assert created
    path = keys.key_path("ledger", tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, created_again = keys.ensure("ledger", tmp_path)
    assert not created_again and again == ring
    assert len(ring.current.secret) == keys.SECRET_BYTES
    assert ring.current.secret.hex() not in repr(ring)


def test_rotation_keeps_the_old_keys_behind_the_new_one(tmp_path: Path) -> None:
    first, _ = keys.ensure("id-hash", tmp_path)
    rotated = keys.rotate("id-hash", tmp_path)
    assert rotated.current.id != first.current.id
    assert rotated.get(first.current.id) == first.current
    assert stat.S_IMODE(keys.key_path("id-hash", tmp_path).stat().st_mode) == 0o600


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    keys.ensure("ledger", tmp_path)
    os.chmod(keys.key_path("ledger", tmp_path), 0o644)
    with pytest.raises(keys.KeyringError, match="chmod 600"):
        keys.load("ledger", tmp_path)


def test_a_missing_keyring_is_an_error_not_a_new_key(tmp_path: Path) -> None:
    with pytest.raises(keys.KeyringError, match="missing"):
        keys.load("ledger", tmp_path)
    assert not keys.key_path("ledger", tmp_path).exists()


def test_the_environment_overrides_the_file(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAIHU_KEY_ID_HASH", "k1:" + "ab" * 32)
    ring = keys.load("id-hash", tmp_path)
    assert ring.current == keys.Key("k1", bytes.fromhex("ab" * 32))
    monkeypatch.setenv("WAIHU_KEY_ID_HASH", "k1:abc")
    with pytest.raises(keys.KeyringError, match="WAIHU_KEY_ID_HASH"):
        keys.load("id-hash", tmp_path)
