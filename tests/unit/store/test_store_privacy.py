from __future__ import annotations

import hashlib
import hmac
import itertools
import secrets
from pathlib import Path

import pytest

from bot import keys
from bot.privacy import (
    IdHasher,
    keyed_hash,
    mask_id_digits,
    mask_phone,
    normalize_id_last4,
    unkeyed_hash,
)

ALL_ID_LAST4 = ["".join(head) + last
                for head in itertools.product("0123456789", repeat=3) for last in "0123456789X"]


@pytest.fixture
def ring(tmp_path: Path) -> keys.Keyring:
    return keys.ensure(keys.ID_HASH, tmp_path)[0]


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812345678", "138****5678"),
        ("01087654321", "010****4321"),
        ("8613812345678", "861******5678"),
        ("0755123456", "075*****56"),
        ("87654321", "87****21"),
        ("1234567", "1****67"),
        ("1234", "**34"),
        ("123", "**3"),
        ("1", "*"),
        ("", ""),
    ],
)
def test_mask_phone(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked
    assert len(masked) == len(phone)


@pytest.mark.parametrize("n", range(1, 11))
def test_mask_phone_short_numbers_show_at_most_half(n: int) -> None:
    phone = "".join(str(i % 10) for i in range(1, n + 1))
    assert sum(ch != "*" for ch in mask_phone(phone)) <= n // 2


def test_there_are_11000_possible_id_digits() -> None:
    assert len(set(ALL_ID_LAST4)) == 11_000


def test_hash_round_trip_and_normalisation(ring: keys.Keyring) -> None:
    hasher = IdHasher(ring)
    hashed, salt, key_id = hasher.hash("123X")
    assert len(salt) == 32 and len(hashed) == 64 and "123X" not in hashed
    assert key_id == ring.current.id
    assert hasher.verify("123X", salt, hashed, key_id)
    assert hasher.verify(" 123x ", salt, hashed, key_id)
    assert hasher.verify("１２３ｘ", salt, hashed, key_id)  # full-width input from a Chinese IME
    assert not hasher.verify("1234", salt, hashed, key_id)
    assert normalize_id_last4(" 12 3x") == "123X"


def test_equal_digits_get_different_hashes(ring: keys.Keyring) -> None:
    hasher = IdHasher(ring)
    a, b = hasher.hash("5678"), hasher.hash("5678")
    assert a.salt != b.salt and a.hash != b.hash


def test_the_database_row_alone_does_not_give_the_digits_away(ring: keys.Keyring) -> None:
    """With only what the contacts row holds (hash, salt, key id), none of the 11,000
    possible values reproduces the hash, whichever way the row's own values are combined;
    with the server key, the same search finds them (so the search itself is sound)."""
    hasher = IdHasher(ring)
    hashed, salt, key_id = hasher.hash("4071")
    guesses = {
        "unkeyed (the scheme before the server key)": lambda v: unkeyed_hash(v, salt),
        "the key id as the key": lambda v: keyed_hash(v, salt, keys.Key(key_id,
                                                                        key_id.encode())),
        "the salt as the key": lambda v: keyed_hash(v, salt, keys.Key("s", salt.encode())),
        "a random key": lambda v: keyed_hash(v, salt, keys.Key("r", secrets.token_bytes(32))),
        "plain sha256": lambda v: hashlib.sha256((salt + v).encode()).hexdigest(),
    }
    for how, guess in guesses.items():
        assert [v for v in ALL_ID_LAST4 if guess(v) == hashed] == [], how
    assert [v for v in ALL_ID_LAST4 if hasher.verify(v, salt, hashed, key_id)] == ["4071"]
    assert hasher.recover(salt, hashed, key_id) == "4071"


def test_a_rotated_keyring_still_verifies_the_old_hashes(tmp_path: Path) -> None:
    first = keys.ensure(keys.ID_HASH, tmp_path)[0]
    old = IdHasher(first).hash("9876")
    rotated = keys.rotate(keys.ID_HASH, tmp_path)
    hasher = IdHasher(rotated)
    assert hasher.verify("9876", old.salt, old.hash, old.key_id)
    assert not hasher.verify("9875", old.salt, old.hash, old.key_id)
    assert not hasher.is_current(old.key_id)
    new = hasher.hash("9876")
    assert new.key_id == rotated.current.id != old.key_id
    assert hasher.is_current(new.key_id)


def test_an_unkeyed_legacy_hash_still_verifies(ring: keys.Keyring) -> None:
    """Rows hashed before the server key: HMAC-SHA256 keyed with the salt (pinned, so that
    they keep verifying), key id NULL; their digits are recoverable from the row alone,
    which is why they are re-hashed."""
    salt = "00112233445566778899aabbccddeeff"
    legacy = hmac.new(salt.encode("ascii"), b"123X", hashlib.sha256).hexdigest()
    assert unkeyed_hash("123x", salt) == legacy == (
        "d8bb251f5b4b8fbfc428d16b392f90d8"
        "e8c27f3b2fa77901b097c259f096345c")
    hasher = IdHasher(ring)
    assert hasher.verify("123X", salt, legacy, None)
    assert not hasher.verify("1234", salt, legacy, None)
    assert not hasher.is_current(None)
    assert hasher.recover(salt, legacy, None) == "123X"


def test_the_keyed_hash_is_one_hmac_sha256_of_salt_and_digits_under_the_key() -> None:
    """Pinned: stored hashes must stay verifiable."""
    key = keys.Key("k1", bytes(range(32)))
    salt = "00112233445566778899aabbccddeeff"
    expected = hmac.new(key.secret, salt.encode() + b"123X", hashlib.sha256).hexdigest()
    assert keyed_hash("123x", salt, key) == expected


def test_a_missing_key_file_is_a_clear_error(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(keys.KEYS_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(keys.KeyringError, match=r"id-hash\.key is missing.*waihu keys init"):
        IdHasher()


def test_a_hash_naming_a_key_the_keyring_lost_is_a_clear_error(ring: keys.Keyring) -> None:
    hashed, salt, _ = IdHasher(ring).hash("1111")
    with pytest.raises(keys.KeyringError, match="has no key 'kgone'.*backup"):
        IdHasher(ring).verify("1111", salt, hashed, "kgone")


@pytest.mark.parametrize(("said", "shown"), [
    ("1234", "****"),
    ("123X", "****"),
    ("一二三四", "****"),
    ("幺两三叉", "****"),
    ("洞拐勾俩", "****"),  # digits as read out on the phone (bot.textnorm)
    ("后四位是幺三五七", "后四位是****"),
    ("１２３４", "****"),
    ("我的后四位是1 2 3 4", "我的后四位是* * * *"),
    ("后四位是一，二，三，四", "后四位是*，*，*，*"),
    ("一千二百三十四", "*******"),
    ("[按键 1234]", "[按键 ****]"),
    ('/dtmf{"digits": "5678"}', '/dtmf{"digits": "****"}'),
    ("是的，我是本人", "是的，我是本人"),
    ("十分满意", "十分满意"),
    ("", ""),
])
def test_mask_id_digits(said: str, shown: str) -> None:
    assert mask_id_digits(said) == shown
