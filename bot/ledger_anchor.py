"""Anchors: the ledger's head, exported to an append-only file outside the database.

`waihu audit anchor` appends one JSON line per run: the head's entry hash and id, how many
entries (and legacy ones) the chain had, when, and the key of the head's signature; the
line itself is signed with the ledger key, so a forged line is told apart from a real one.
Kept where the database's users cannot write (another machine, a WORM bucket, a file only
the auditor's account can append to), it is what catches a cut-off tail — the one change
that leaves a valid chain behind — and a history rewritten by someone who also got hold of
the key.

The file is only ever appended to: opened with O_APPEND (never truncated), refused when it
is a symlink (a link could send the line into any file the command may write).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import URL

from bot.store.db import REPO_ROOT
from bot.store.ledger import LedgerCheck
from bot.store.ledger_signer import LedgerSigner

DEFAULT_ANCHORS = REPO_ROOT / "var" / "audit" / "anchors.jsonl"


class AnchorError(RuntimeError):
    """The anchor file cannot be written or read, or its latest line is not genuine."""


@dataclass(frozen=True)
class Anchor:
    database: str  # the URL it was taken from, without password: one file serves several
    at: str  # ISO 8601, UTC
    count: int
    head: str
    head_id: int | None
    legacy: int
    key_id: str | None  # of the head's signature
    signed_by: str = ""  # key id of the anchor line's own signature
    signature: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def digest(self) -> str:
        """What the line's signature covers: every field but the signature."""
        body = {k: v for k, v in asdict(self).items() if k != "signature"}
        text = "anchor:" + json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def make_anchor(check: LedgerCheck, signer: LedgerSigner, at: datetime, database: str
                ) -> Anchor:
    unsigned = Anchor(database=database, at=at.isoformat(timespec="seconds"),
                      count=check.entries,
                      head=check.head, head_id=check.head_id, legacy=check.legacy,
                      key_id=check.head_key_id, signed_by=signer.key_id)
    return Anchor(**{**asdict(unsigned), "signature": signer.sign(unsigned.digest())})


def append_anchor(path: Path, anchor: Anchor) -> None:
    """One line at the end of *path* (created 0640 with its folder if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(anchor.as_json(), sort_keys=True) + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o640)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AnchorError(f"{path} is a symlink: refused") from None
        raise AnchorError(f"{path} cannot be opened for appending: {exc}") from None
    try:
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def database_name(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def latest_anchor(path: Path, signer: LedgerSigner, database: str) -> Anchor | None:
    """The last anchor of *database* in *path*, its signature checked; None when there is
    none.  Every line is checked: one forged line anywhere makes the file untrustworthy."""
    if path.is_symlink():
        raise AnchorError(f"{path} is a symlink: refused")
    try:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except FileNotFoundError:
        return None
    latest = None
    for number, line in enumerate(lines, 1):
        try:
            anchor = Anchor(**json.loads(line))
        except (ValueError, TypeError) as exc:
            raise AnchorError(f"{path} line {number} is not an anchor: {exc}") from None
        if not signer.verify(anchor.signed_by, anchor.digest(), anchor.signature):
            raise AnchorError(f"{path} line {number}: the signature does not verify (key "
                              f"{anchor.signed_by!r}): not written by `waihu audit anchor`")
        if anchor.database == database:
            latest = anchor
    return latest
