"""Server secrets: the keys the database does not hold.

A keyring is a small file, ``<keys dir>/<name>.key``, one key per line as ``<key id> <hex
secret>``; the first line is the current key (new hashes, signatures), the others are kept
so that what older keys produced can still be checked.  Rotating adds a new first line and
keeps the rest; nothing is ever rewritten in place.

Where the keys live:
- ``WAIHU_KEYS_DIR`` names the folder (production: e.g. ``/etc/waihu/keys``, readable only by
  the service's user); the default is ``var/keys`` in the working directory.
- ``WAIHU_KEY_<NAME>`` (``-`` as ``_``, upper case), ``<key id>:<hex secret>``, overrides the
  file with a single key, for deployments that inject secrets through the environment.

A key file readable or writable by group or others is refused (like ssh's private keys): a
key anyone on the machine can read protects nothing.  `ensure` creates a missing keyring with
mode 0600 (setup runs it); loading never creates one, so a machine with a missing or
mistyped key folder fails loudly instead of quietly using a key of its own.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

KEYS_DIR_ENV = "WAIHU_KEYS_DIR"
DEFAULT_KEYS_DIR = Path("var/keys")
SECRET_BYTES = 32

# The keyrings the project uses (setup creates each of them).
ID_HASH = "id-hash"  # pepper of the ID-digits hash (bot.privacy)
LEDGER = "ledger"  # signing key of the consent ledger (bot.store.ledger)
CONSOLE_SESSION = "console-session"  # encrypts the console's session cookies (bot.console)
KEYRINGS = (ID_HASH, LEDGER, CONSOLE_SESSION)


class KeyringError(RuntimeError):
    """A keyring is missing, unreadable, too open or malformed (the message says which)."""


@dataclass(frozen=True)
class Key:
    id: str
    secret: bytes

    def __repr__(self) -> str:  # never print the secret
        return f"Key(id={self.id!r})"


@dataclass(frozen=True)
class Keyring:
    name: str
    keys: tuple[Key, ...]  # current first

    @property
    def current(self) -> Key:
        return self.keys[0]

    def get(self, key_id: str) -> Key | None:
        return next((key for key in self.keys if key.id == key_id), None)


def keys_dir() -> Path:
    return Path(os.environ.get(KEYS_DIR_ENV) or DEFAULT_KEYS_DIR)


def key_path(name: str, folder: Path | None = None) -> Path:
    return (folder or keys_dir()) / f"{name}.key"


def env_name(name: str) -> str:
    return "WAIHU_KEY_" + name.replace("-", "_").upper()


def _parse_key(text: str, where: str) -> Key:
    key_id, sep, hex_secret = text.strip().replace(":", " ", 1).partition(" ")
    try:
        secret = bytes.fromhex(hex_secret.strip())
    except ValueError:
        secret = b""
    if not sep or not key_id or len(secret) < 16:
        raise KeyringError(f"{where}: expected '<key id> <hex secret of at least 16 bytes>'")
    return Key(key_id, secret)


def load(name: str, folder: Path | None = None) -> Keyring:
    """The keyring *name* from the environment or its file (see the module's docstring)."""
    from_env = os.environ.get(env_name(name))
    if from_env:
        return Keyring(name, (_parse_key(from_env, env_name(name)),))
    path = key_path(name, folder)
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise KeyringError(f"key file {path} is missing: run `make setup` or "
                        f"`waihu keys init` (or set {KEYS_DIR_ENV})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyringError(f"key file {path} cannot be read: {exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyringError(f"key file {path} is open to other users (mode {mode & 0o777:o}): "
                        f"chmod 600 it")
    keys = tuple(_parse_key(line, f"{path} line {n}")
                 for n, line in enumerate(text.splitlines(), 1) if line.strip())
    if not keys:
        raise KeyringError(f"key file {path} holds no key")
    if len({key.id for key in keys}) != len(keys):
        raise KeyringError(f"key file {path} repeats a key id")
    return Keyring(name, keys)


def _new_key_id(taken: set[str]) -> str:
    while True:
        key_id = "k" + secrets.token_hex(4)
        if key_id not in taken:
            return key_id


def _write(path: Path, keys: tuple[Key, ...]) -> None:
    """Write a keyring file with mode 0600 from the start (never briefly readable)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.writelines(f"{key.id} {key.secret.hex()}\n" for key in keys)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def ensure(name: str, folder: Path | None = None) -> tuple[Keyring, bool]:
    """The keyring *name*, created with one new key if its file is missing; and whether it
    was created."""
    path = key_path(name, folder)
    if path.exists() or os.environ.get(env_name(name)):
        return load(name, folder), False
    _write(path, (Key(_new_key_id(set()), secrets.token_bytes(SECRET_BYTES)),))
    return load(name, folder), True


def rotate(name: str, folder: Path | None = None) -> Keyring:
    """Put a new current key in front of the existing ones (which stay, for checking)."""
    ring = load(name, folder)
    new = Key(_new_key_id({key.id for key in ring.keys}), secrets.token_bytes(SECRET_BYTES))
    _write(key_path(name, folder), (new, *ring.keys))
    return load(name, folder)
