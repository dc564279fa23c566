"""Masking and hashing of personal data: phone numbers in logs, ID-card digits at rest."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata

# Hashing scheme for the last 4 characters of a Chinese ID card number: one HMAC-SHA256 of
# the normalised characters, keyed with the per-contact salt.
#
# No key stretching (PBKDF2, scrypt...), deliberately.  The secret space is tiny: 11,000
# values (three digits, then a digit or "X"), so whoever holds a row's hash and salt finds the
# digits by trying them all: ~20 ms as it is, ~2 s with 1000 PBKDF2 iterations, ~4 min with
# 100,000 -- slower, never out of reach.  Stretching would cost every import dearly instead:
# imports hash every row of lists with up to a million contacts, and 1000 iterations took
# 0.2-0.3 ms a row (minutes per million) where one HMAC takes ~2 us.  What the hash does buy:
# the clear digits never sit in the database, its dumps or the logs, and the per-row salt
# means no precomputed table covers more than one row.  Protect the database itself like any
# personal data.


def mask_phone(phone: str) -> str:
    """Mask a phone number for logs and screens: ``"13812345678"`` -> ``"138****5678"``.

    Numbers of 11 characters or more keep the first 3 and the last 4.  Shorter ones (landlines
    without area code, extensions) never show more than half: first up to 3, last 2 to 4.
    """
    n = len(phone)
    if n >= 11:
        head, tail = 3, 4
    else:
        budget = n // 2
        tail = max(min(2, budget), min(4, budget - 3))
        head = min(3, budget - tail)
    return phone[:head] + "*" * (n - head - tail) + (phone[n - tail :] if tail else "")


def normalize_id_last4(value: str) -> str:
    """Canonical form of ID digits before hashing: NFKC (full-width -> ASCII), no spaces,
    upper-case ``X``."""
    text = unicodedata.normalize("NFKC", value)
    return "".join(text.split()).upper()


def new_salt() -> str:
    """16 random bytes as 32 hex characters."""
    return secrets.token_hex(16)


def hash_secret(value: str, salt: str) -> str:
    """Hash a short secret (normalised like :func:`normalize_id_last4`); 64 hex characters."""
    message = normalize_id_last4(value).encode("utf-8")
    return hmac.new(salt.encode("ascii"), message, hashlib.sha256).hexdigest()


def verify_secret(value: str, salt: str, hashed: str) -> bool:
    """Constant-time check of *value* against a stored :func:`hash_secret` result."""
    return hmac.compare_digest(hash_secret(value, salt), hashed)
