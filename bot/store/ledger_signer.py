"""The consent ledger's keys: Ed25519 signatures and the keyed phone hash.

Each key of the ``ledger`` keyring (`bot.keys`: files the database never holds) yields two
keys, derived with HKDF so that one secret never serves two algorithms:

- an Ed25519 private key (its 32-byte seed), which signs each entry's hash.  Its public half
  can be handed to an auditor (`waihu audit public-key`): with it they can check every
  signature, but cannot make one;
- an HMAC-SHA256 key for the contact's phone number.  A plain SHA-256 of an 11-digit number
  is no protection: there are about 10^10 of them and a graphics card tries that many in
  seconds.  Keyed, the hash says nothing to someone with the database alone, and whoever
  holds the key can still check that an entry belongs to a given number.

Old keys stay in the keyring after a rotation (`bot.keys.rotate`), so entries signed with
them still verify; new entries use the current key.  Every entry names its key id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bot import keys

ALGORITHM = "ed25519"
# What is signed: this prefix and the entry's hash (hex), so a ledger signature can never
# pass for a signature of anything else made with the same key.
_SIGNED_PREFIX = b"waihu-ledger-v1:"


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"waihu ledger " + purpose).derive(secret)


def _message(entry_hash: str) -> bytes:
    return _SIGNED_PREFIX + entry_hash.encode("ascii")


@dataclass(frozen=True)
class _LedgerKey:
    key_id: str
    public: Ed25519PublicKey
    private: Ed25519PrivateKey | None = field(default=None, repr=False)
    phone_key: bytes | None = field(default=None, repr=False)


class LedgerSigner:
    """Signs and checks ledger entries.  From the keyring (`load`): it can sign, check, and
    hash phone numbers.  From exported public keys (`from_public_keys`): it can only check
    signatures — what an auditor has."""

    def __init__(self, ledger_keys: list[_LedgerKey]) -> None:
        if not ledger_keys:
            raise keys.KeyringError("no ledger key")
        self._keys = {key.key_id: key for key in ledger_keys}
        self._current = ledger_keys[0]

    @classmethod
    def from_keyring(cls, ring: keys.Keyring) -> LedgerSigner:
        made = []
        for key in ring.keys:
            private = Ed25519PrivateKey.from_private_bytes(_derive(key.secret, b"ed25519"))
            made.append(_LedgerKey(key.id, private.public_key(), private,
                                   _derive(key.secret, b"phone hmac")))
        return cls(made)

    @classmethod
    def load(cls) -> LedgerSigner:
        """The signer of this machine's ledger keyring (raises `keys.KeyringError`)."""
        return cls.from_keyring(keys.load(keys.LEDGER))

    @classmethod
    def from_public_keys(cls, path: Path) -> LedgerSigner:
        """The keys `public_keys_json` wrote (one JSON object per line)."""
        made = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            if item.get("algorithm") != ALGORITHM:
                raise keys.KeyringError(f"{path}: not an {ALGORITHM} key: {line[:80]}")
            made.append(_LedgerKey(str(item["key_id"]), Ed25519PublicKey.from_public_bytes(
                bytes.fromhex(item["public_key"]))))
        return cls(made)

    @property
    def key_id(self) -> str:
        """The key new entries are signed with."""
        return self._current.key_id

    @property
    def can_sign(self) -> bool:
        return self._current.private is not None

    def sign(self, entry_hash: str) -> str:
        """The signature (hex) of an entry hash, with the current key."""
        if self._current.private is None:
            raise keys.KeyringError("public keys only: cannot sign")
        return self._current.private.sign(_message(entry_hash)).hex()

    def knows(self, key_id: str) -> bool:
        return key_id in self._keys

    def verify(self, key_id: str, entry_hash: str, signature: str) -> bool:
        """Whether *signature* is the signature of *entry_hash* by key *key_id* (False for
        an unknown key: check `knows` first to tell the two apart)."""
        key = self._keys.get(key_id)
        if key is None:
            return False
        try:
            key.public.verify(bytes.fromhex(signature), _message(entry_hash))
        except (InvalidSignature, ValueError):
            return False
        return True

    def phone_hash(self, phone: str, key_id: str | None = None) -> str | None:
        """HMAC-SHA256 of *phone* with key *key_id* (default: the current one); None when
        only the public key is known."""
        key = self._keys.get(key_id or self.key_id)
        if key is None or key.phone_key is None:
            return None
        return hmac.new(key.phone_key, phone.encode("utf-8"), hashlib.sha256).hexdigest()

    def public_keys_json(self) -> str:
        """Every public key, one JSON object per line, current first."""
        lines = []
        for key in self._keys.values():
            raw = key.public.public_bytes_raw().hex()
            lines.append(json.dumps({"key_id": key.key_id, "algorithm": ALGORITHM,
                                     "public_key": raw}))
        return "\n".join(lines) + "\n"
