"""Masking and hashing of personal data: phone numbers in logs, ID-card digits at rest."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata

# Hashing scheme for the last 4 characters of a Chinese ID card number.
#
# HMAC-SHA256 keyed with the per-contact salt, then PBKDF2-HMAC-SHA256 with only 1000
# iterations.  Why so light: imports hash every row of lists with up to a million contacts,
# and 100_000 iterations would cost minutes per import.  Why it is still acceptable: the
# secret space is tiny (10^4 digits plus "X"), so *no* iteration count stops an offline
# brute force of one row by someone who has the database; the hash only keeps the clear
# digits out of the database, dumps and logs, and the per-row salt stops one precomputed
# table from covering every row.  Protect the database itself like any personal data.
_ITERATIONS = 1000


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
    key = salt.encode("ascii")
    inner = hmac.new(key, normalize_id_last4(value).encode("utf-8"), hashlib.sha256).digest()
    return hashlib.pbkdf2_hmac("sha256", inner, key, _ITERATIONS).hex()


def verify_secret(value: str, salt: str, hashed: str) -> bool:
    """Constant-time check of *value* against a stored :func:`hash_secret` result."""
    return hmac.compare_digest(hash_secret(value, salt), hashed)
