"""Masking and hashing of personal data: phone numbers and ID digits in logs and
transcripts, ID digits at rest."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import re
import secrets
import unicodedata
from typing import NamedTuple

from bot import keys
from bot.textnorm import DIGIT_CHARS as _READ_AS_DIGITS  # the flow's own table

# Hashing of the last 4 characters of a Chinese ID card number.
#
# The secret space is tiny: 11,000 values (three digits, then a digit or "X").  Whoever holds
# a row's hash and salt and can compute the hash tries them all in milliseconds, so what
# protects the digits is a key the database does not hold: the server's *pepper* (the
# keyring keys.ID_HASH, a 0600 file or an environment variable, see bot/keys.py).
#
#     hash = HMAC-SHA256(key = pepper, message = salt (32 hex characters) + digits)
#
# One HMAC keyed with the pepper over salt and digits: as strong as a per-row key derived
# from pepper and salt (HMAC is a pseudo-random function of its whole message, and the
# fixed-length salt cannot run into the digits), at half the cost of deriving one per row.
# The per-row salt still means that equal digits give different hashes.  Each row stores
# the id of the key that made its hash (contacts.id_hash_key), so that the keyring can be
# rotated: new hashes use the current key, older hashes are checked with the key they name,
# which therefore stays in the keyring until no row names it (`waihu keys rehash-ids` moves
# every row to the current key; a successful check does it for its own row).
#
# Rows hashed before the pepper existed have no key id: their hash is HMAC-SHA256(salt,
# digits), which the database alone gives away.  They still verify, and are re-hashed with
# the current key on their next successful check or by `waihu keys rehash-ids`.
#
# No key stretching (PBKDF2, scrypt...), deliberately: with the key, 11,000 tries stay
# within reach however slow each is made, and imports hash every row of lists with up to a
# million contacts (one one-shot HMAC takes ~1-4 us a row; 1000 PBKDF2 iterations took
# 0.2-0.3 ms).  Whoever holds both the database and the key file can recover the digits:
# keep the key files out of the database's backups and away from its users.

ID_LAST4_ALPHABET = "0123456789X"  # the last character may be X (check digit 10)


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


# --- masking ID digits said or keyed ----------------------------------------------------

# What a digit can look like in a transcript: whatever the flow reads as one
# (bot.textnorm's table: ASCII digits, Chinese numerals, the phone's 幺/洞/拐/勾...), full-width
# digits, the place words of a number read as such (一千二百三十四), the formal numerals,
# and the X of a check digit.
_WRITTEN_DIGITS = "0-9０-９"
_SPOKEN_DIGITS = ("".join(sorted(set(_READ_AS_DIGITS) - set("0123456789")))
                  + "十百千壹贰叁肆伍陆柒捌玖拾")
_CHECK_X = "xXＸｘ叉"
_DIGIT = f"[{_WRITTEN_DIGITS}{_SPOKEN_DIGITS}{_CHECK_X}]"
_DIGIT_RUN = re.compile(rf"{_DIGIT}(?:[\s,，、.。·\-]*{_DIGIT})*")
_WRITTEN = re.compile(f"[{_WRITTEN_DIGITS}]")
_ONE_DIGIT = re.compile(_DIGIT)


def mask_id_digits(text: str) -> str:
    """*text* with the digits of an answer to the ID question masked, one ``*`` each:
    ``"1234"`` -> ``"****"``, ``"一二三四"`` -> ``"****"``, ``"[按键 123X]"`` ->
    ``"[按键 ****]"``.

    Written digits are masked wherever they are; a lone Chinese numeral is left alone
    (the "四" of "后四位"), any run of two or more (spaces and commas between them allowed)
    is masked."""
    def mask(match: re.Match[str]) -> str:
        run = match.group()
        if len(_ONE_DIGIT.findall(run)) < 2 and not _WRITTEN.search(run):
            return run
        return _ONE_DIGIT.sub("*", run)
    return _DIGIT_RUN.sub(mask, text)


# --- hashing ID digits -----------------------------------------------------------------

def normalize_id_last4(value: str) -> str:
    """Canonical form of ID digits before hashing: NFKC (full-width -> ASCII), no spaces,
    upper-case ``X``."""
    text = unicodedata.normalize("NFKC", value)
    return "".join(text.split()).upper()


def new_salt() -> str:
    """16 random bytes as 32 hex characters."""
    return secrets.token_hex(16)


def keyed_hash(value: str, salt: str, key: keys.Key) -> str:
    """The hash of ID digits under a server key (see the comment above); 64 hex characters."""
    message = salt.encode("ascii") + normalize_id_last4(value).encode("utf-8")
    return hmac.digest(key.secret, message, "sha256").hex()


def unkeyed_hash(value: str, salt: str) -> str:
    """The hash of rows made before the server key (``id_hash_key`` NULL): verify only."""
    message = normalize_id_last4(value).encode("utf-8")
    return hmac.new(salt.encode("ascii"), message, hashlib.sha256).hexdigest()


class HashedId(NamedTuple):
    """What a contact row stores for its ID digits."""

    hash: str
    salt: str
    key_id: str


class IdHasher:
    """Hashes and checks ID digits with the ``id-hash`` keyring, loaded once (an import of a
    million rows, one call's check).  A missing key file fails here, with bot.keys' message
    (what to run); a row naming a key the keyring no longer holds fails on checking."""

    def __init__(self, ring: keys.Keyring | None = None) -> None:
        self.ring = ring if ring is not None else keys.load(keys.ID_HASH)

    @property
    def key_id(self) -> str:
        return self.ring.current.id

    def hash(self, value: str) -> HashedId:
        salt = new_salt()
        return HashedId(keyed_hash(value, salt, self.ring.current), salt, self.key_id)

    def _key(self, key_id: str) -> keys.Key:
        key = self.ring.get(key_id)
        if key is None:
            raise keys.KeyringError(
                f"the {self.ring.name} keyring has no key {key_id!r}, which stored ID hashes "
                f"name: restore the keyring file from its backup (rotation keeps old keys; "
                f"a key may only go once `waihu keys rehash-ids` has moved every row)")
        return key

    def verify(self, value: str, salt: str, hashed: str, key_id: str | None) -> bool:
        """Constant-time check of *value* against a stored hash made with *key_id* (None:
        an unkeyed row of before the server key)."""
        if key_id is None:
            expected = unkeyed_hash(value, salt)
        else:
            expected = keyed_hash(value, salt, self._key(key_id))
        return hmac.compare_digest(expected, hashed)

    def is_current(self, key_id: str | None) -> bool:
        return key_id == self.key_id

    def recover(self, salt: str, hashed: str, key_id: str | None) -> str | None:
        """The digits behind a stored hash, by trying all 11,000 values with the key that
        made it (what `waihu keys rehash-ids` needs to move a row to the current key; it
        also shows why the key must be kept apart from the database).  None: no value
        matches."""
        if key_id is None:  # HMAC(salt, digits)
            hmac_key, before = salt.encode("ascii"), b""
        else:  # HMAC(pepper, salt + digits)
            hmac_key, before = self._key(key_id).secret, salt.encode("ascii")
        target = bytes.fromhex(hashed)
        for head in itertools.product("0123456789", repeat=3):
            prefix = "".join(head)
            for last in ID_LAST4_ALPHABET:
                candidate = prefix + last
                digest = hmac.digest(hmac_key, before + candidate.encode("ascii"), "sha256")
                if digest == target:
                    return candidate
        return None
