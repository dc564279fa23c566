"""The consent ledger: an append-only, hash-chained table of explicit consents.

Each entry's ``entry_hash`` is the SHA-256 of a canonical JSON of its content *and* the
previous entry's hash, so changing, removing or re-ordering any entry breaks the chain from
there on.  Database triggers (migration 0001) refuse UPDATE and DELETE; ``verify()`` catches
what someone with enough rights to bypass them changed anyway.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from bot.store.base import utcnow
from bot.store.models import GENESIS_HASH, Consent
from bot.store.vocab import INPUT_MODES, require

# Key of the PostgreSQL advisory lock that serialises appends across processes.
LEDGER_LOCK_KEY = int.from_bytes(b"waihuLDG", "big")

_HASHED_FIELDS = (
    "call_id",
    "contact_id",
    "campaign_id",
    "product",
    "script_hash",
    "disclosures",
    "utterance",
    "input_mode",
    "asr_confidence",
    "created_at",
    "prev_hash",
)


_BAD_PREV = "prev_hash does not match the previous entry"
_BAD_HASH = "entry_hash does not match the entry's content"


@dataclass(frozen=True)
class LedgerCheck:
    """Result of :meth:`ConsentLedger.verify`; ``entries`` counts those read, up to and
    including ``first_bad_id`` when the chain is broken."""

    ok: bool
    entries: int
    first_bad_id: int | None = None
    problem: str | None = None


def canonical_json(consent: Consent) -> str:
    """The exact text that is hashed: every field but ``id`` and ``entry_hash``."""
    payload: dict[str, Any] = {name: getattr(consent, name) for name in _HASHED_FIELDS}
    created_at: datetime = payload["created_at"]
    payload["created_at"] = created_at.astimezone(UTC).isoformat(timespec="microseconds")
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def entry_hash(consent: Consent) -> str:
    return hashlib.sha256(canonical_json(consent).encode("utf-8")).hexdigest()


class ConsentLedger:
    """Appends to and verifies the ledger inside the caller's unit of work (flushes only)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def append(
        self,
        call_id: str,
        contact_id: int,
        campaign_id: int,
        product: str,
        script_hash: str,
        disclosures: Sequence[str],
        utterance: str,
        input_mode: str,
        asr_confidence: float | None,
        created_at: datetime | None = None,
    ) -> Consent:
        require(input_mode, INPUT_MODES, "input mode")
        self._lock()
        consent = Consent(
            call_id=call_id,
            contact_id=int(contact_id),
            campaign_id=int(campaign_id),
            product=product,
            script_hash=script_hash,
            disclosures=[str(d) for d in disclosures],
            utterance=utterance,
            input_mode=input_mode,
            # float() so that 1 and 1.0 hash alike before and after the database round trip.
            asr_confidence=None if asr_confidence is None else float(asr_confidence),
            created_at=(created_at or utcnow()).astimezone(UTC),
            prev_hash=self._head(),
        )
        consent.entry_hash = entry_hash(consent)
        self.session.add(consent)
        self.session.flush()
        return consent

    def verify(self) -> LedgerCheck:
        """Walk the chain in id order and recompute every hash."""
        expected_prev = GENESIS_HASH
        count = 0
        rows = self.session.scalars(
            select(Consent)
            .order_by(Consent.id)
            .execution_options(populate_existing=True, yield_per=500)
        )
        try:
            for consent in rows:
                count += 1
                if consent.prev_hash != expected_prev:
                    return LedgerCheck(False, count, consent.id, _BAD_PREV)
                if entry_hash(consent) != consent.entry_hash:
                    return LedgerCheck(False, count, consent.id, _BAD_HASH)
                expected_prev = consent.entry_hash
        finally:
            rows.close()
        return LedgerCheck(True, count)

    def _head(self) -> str:
        latest = self.session.scalar(
            select(Consent.entry_hash).order_by(Consent.id.desc()).limit(1)
        )
        return latest or GENESIS_HASH

    def _lock(self) -> None:
        """Serialise appends until this unit of work ends, so each one reads the true head.

        Without it two concurrent appends would read the same head; the UNIQUE on
        ``prev_hash`` would then refuse the second one (no fork), but that consent would be lost.
        """
        connection = self.session.connection()
        dialect = connection.dialect.name
        if dialect == "postgresql":
            # Under READ COMMITTED the next statement sees whatever the previous holder committed.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LEDGER_LOCK_KEY})
        elif dialect == "sqlite":
            # A write that touches no row still takes SQLite's database write lock (waiting up
            # to busy_timeout) and keeps it to the end of the transaction; no trigger fires.
            connection.execute(text("DELETE FROM consents WHERE 0"))
