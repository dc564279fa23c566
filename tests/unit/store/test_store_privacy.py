from __future__ import annotations

import hashlib
import hmac

import pytest

from bot.privacy import hash_secret, mask_phone, new_salt, normalize_id_last4, verify_secret


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


def test_hash_round_trip_and_normalisation() -> None:
    salt = new_salt()
    assert len(salt) == 32
    hashed = hash_secret("123X", salt)
    assert len(hashed) == 64 and "123X" not in hashed
    assert verify_secret("123X", salt, hashed)
    assert verify_secret(" 123x ", salt, hashed)
    assert verify_secret("１２３ｘ", salt, hashed)  # full-width input from a Chinese IME
    assert not verify_secret("1234", salt, hashed)
    assert normalize_id_last4(" 12 3x") == "123X"


def test_different_salts_give_different_hashes() -> None:
    salt_a, salt_b = new_salt(), new_salt()
    assert salt_a != salt_b
    assert hash_secret("5678", salt_a) != hash_secret("5678", salt_b)
    assert not verify_secret("5678", salt_b, hash_secret("5678", salt_a))


def test_hash_is_one_hmac_sha256_keyed_with_the_salt() -> None:
    """Pinned: stored hashes must stay verifiable, and imports hash a million rows (no
    key stretching; see the comment in bot/privacy.py)."""
    salt = "00112233445566778899aabbccddeeff"
    expected = hmac.new(salt.encode("ascii"), b"123X", hashlib.sha256).hexdigest()
    assert hash_secret("123x", salt) == expected == (
        "d8bb251f5b4b8fbfc428d16b392f90d8"
        "e8c27f3b2fa77901b097c259f096345c")
