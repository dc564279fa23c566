"""The consent ledger: an append-only, hash-chained, signed table of explicit consents.

Each entry's ``entry_hash`` is the SHA-256 of a canonical JSON of its content *and* the
previous entry's hash, so changing, removing or re-ordering any entry breaks the chain from
there on; each entry is signed (Ed25519, `bot.store.ledger_signer`) with a key the database
does not hold, so someone who can write the table cannot recompute the hashes after an edit
(a re-chained forgery) without the signatures giving it away.

What a consent binds: the call, contact and campaign, the product and approved script, the
disclosures said, the customer's words and how they came (speech with its ASR confidence,
keys, text), the transcript turn (its ``seq`` and text), the span of the consenting audio on
the call's clock, and a keyed hash of the phone number.  The recording is only finished
when the call ends, so the call's close appends a second entry, the ``recording_seal``: the
recording's sha256 and length, chained and signed like a consent (`seal_recording`).

Database triggers refuse UPDATE and DELETE (migration 0001) and any insert that is not at
the head (0007); `verify` walks the chain and names what someone with enough rights to get
past them changed anyway.  `bot.ledger_audit` adds the checks against the anchor file, the
recordings and the transcript.

Entries written before migration 0007 have no ``key_id``: legacy entries, hashed over the
fields they had and unsigned.  The first signed entry after them covers them too (its
``prev_hash`` commits to the whole chain before it); an unsigned entry after a signed one is
a forgery.
"""

from __future__ import annotations

import hashlib
import json
import logging
import wave
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from bot.store.base import utcnow
from bot.store.ledger_signer import LedgerSigner
from bot.store.models import GENESIS_HASH, Call, Consent, Contact
from bot.store.vocab import INPUT_MODES, require

log = logging.getLogger("waihu.ledger")

# Key of the PostgreSQL advisory lock that serialises appends across processes.
LEDGER_LOCK_KEY = int.from_bytes(b"waihuLDG", "big")
_IN_CHUNK = 500  # SQLite limits the bound parameters of one IN list

# Hashed fields of legacy entries (before migration 0007): never change this list.
_LEGACY_FIELDS = (
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
# Hashed fields of signed entries: everything but id, entry_hash and the signature.
_SIGNED_FIELDS = (*_LEGACY_FIELDS, "kind", "key_id", "phone_hash", "audio_start_ms",
                  "audio_end_ms", "turn_seq", "turn_text", "recording_sha256", "recording_ms")

# Hashed only when set (migration 0019), so that the entries written before keep their hash.
_OPTIONAL_FIELDS = ("closed_by",)

CONSENT, RECORDING_SEAL = "consent", "recording_seal"

# What `verify` names (bot.ledger_audit adds the checks outside the chain).
EDITED = "edited"  # the content no longer hashes to entry_hash
FORGED = "forged"  # hashes, but the signature is not the key's: re-hashed without the key
UNKNOWN_KEY = "unknown_key"  # signed with a key the keyring does not hold
DELETED = "deleted"  # prev_hash names an entry that is not there
UNSIGNED = "unsigned"  # an entry without signature after the signed ones began

_BAD_PREV = "prev_hash does not match the previous entry"
_BAD_HASH = "entry_hash does not match the entry's content"


@dataclass(frozen=True)
class Problem:
    kind: str
    entry_id: int | None
    detail: str
    call_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "entry_id": self.entry_id, "call_id": self.call_id,
                "detail": self.detail}


@dataclass(frozen=True)
class LedgerCheck:
    """Result of :meth:`ConsentLedger.verify`: *entries* read (all of them), the first
    problem's entry and text (``first_bad_id``, ``problem``) and every problem found."""

    ok: bool
    entries: int
    first_bad_id: int | None = None
    problem: str | None = None
    problems: tuple[Problem, ...] = ()
    legacy: int = 0  # unsigned entries from before migration 0007
    head: str = GENESIS_HASH  # entry_hash of the last entry
    head_id: int | None = None
    head_key_id: str | None = None
    # The entry_hash at each position asked for (1 = the first entry): the anchor check.
    hash_at: dict[int, str] = field(default_factory=dict)


def canonical_json(consent: Consent) -> str:
    """The exact text that is hashed (legacy entries: the fields they had)."""
    fields = _LEGACY_FIELDS if consent.key_id is None else _SIGNED_FIELDS
    payload: dict[str, Any] = {name: getattr(consent, name) for name in fields}
    if consent.key_id is not None:
        payload.update({name: getattr(consent, name) for name in _OPTIONAL_FIELDS
                        if getattr(consent, name) is not None})
    created_at: datetime = payload["created_at"]
    payload["created_at"] = created_at.astimezone(UTC).isoformat(timespec="microseconds")
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def entry_hash(consent: Consent) -> str:
    return hashlib.sha256(canonical_json(consent).encode("utf-8")).hexdigest()


def wav_duration_ms(path: str | None) -> int | None:
    """The length of a WAV recording, or None when there is none to read."""
    if not path:
        return None
    try:
        with wave.open(path, "rb") as audio:
            return round(audio.getnframes() * 1000 / audio.getframerate())
    except (OSError, EOFError, wave.Error, ZeroDivisionError):
        return None


class ConsentLedger:
    """Appends to and verifies the ledger inside the caller's unit of work (flushes only).

    *signer*: the ledger keys (default: this machine's keyring, loaded on first use)."""

    def __init__(self, session: Session, signer: LedgerSigner | None = None) -> None:
        self.session = session
        self._signer = signer

    @property
    def signer(self) -> LedgerSigner:
        if self._signer is None:
            self._signer = LedgerSigner.load()
        return self._signer

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
        *,
        turn_seq: int | None = None,
        turn_text: str | None = None,
        audio_start_ms: int | None = None,
        audio_end_ms: int | None = None,
        closed_by: str | None = None,
    ) -> Consent:
        """A consent, bound to the contact's phone number (keyed hash), the transcript turn
        and the consenting audio's span on the call's clock; *closed_by*: the agent who
        closed the sale the bot confirmed (``agent:USERNAME``), None for the bot's own."""
        require(input_mode, INPUT_MODES, "input mode")
        return self._append(Consent(
            kind=CONSENT,
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
            turn_seq=turn_seq,
            turn_text=turn_text,
            audio_start_ms=None if audio_start_ms is None else int(audio_start_ms),
            audio_end_ms=None if audio_end_ms is None else int(audio_end_ms),
            closed_by=closed_by,
            created_at=(created_at or utcnow()).astimezone(UTC),
        ))

    def seal_recording(self, call: Call, at: datetime) -> Consent | None:
        """The call's recording seal, if the call has a consent and no seal binds its
        current recording yet (a call closed first without its recording, then with it —
        a recording finalised after a crash — gets a second seal).  None otherwise."""
        consents = self._entries(call.id, CONSENT)
        if not consents:
            return None
        seals = self._entries(call.id, RECORDING_SEAL)
        if any(seal.recording_sha256 == call.recording_sha256 for seal in seals) or (
                seals and call.recording_sha256 is None):
            return None
        return self._append(Consent(
            kind=RECORDING_SEAL,
            call_id=call.id,
            contact_id=call.contact_id,
            campaign_id=call.campaign_id,
            recording_sha256=call.recording_sha256,
            recording_ms=wav_duration_ms(call.recording_path),
            created_at=at.astimezone(UTC),
        ))

    def verify(self, positions: Sequence[int] = ()) -> LedgerCheck:
        """Walk the chain in id order: recompute every hash, check every signature and
        link, and name every problem found (not only the first).  *positions*: entries
        (counted from 1) whose hash the result reports in ``hash_at``."""
        walk = _ChainWalk(self.signer, set(positions))
        rows = self.session.scalars(
            select(Consent)
            .order_by(Consent.id)
            .execution_options(populate_existing=True, yield_per=500)
        )
        try:
            for consent in rows:
                walk.check(consent)
        finally:
            rows.close()
        return walk.result()

    def _append(self, entry: Consent) -> Consent:
        signer = self.signer  # a missing keyring fails here, before anything is written
        self._lock()
        entry.key_id = signer.key_id
        contact = self.session.get(Contact, entry.contact_id)
        entry.phone_hash = None if contact is None else signer.phone_hash(contact.phone)
        entry.prev_hash = self._head()
        entry.entry_hash = entry_hash(entry)
        entry.signature = signer.sign(entry.entry_hash)
        self.session.add(entry)
        self.session.flush()
        return entry

    def consented_calls(self, call_ids: Iterable[str]) -> set[str]:
        """Those of *call_ids* for which the ledger holds a consent (the proof a sale
        needs, whoever closed it: the bot, or an agent who handed the call back)."""
        ids = sorted(set(call_ids))
        found: set[str] = set()
        for start in range(0, len(ids), _IN_CHUNK):
            found.update(self.session.scalars(
                select(Consent.call_id).where(Consent.call_id.in_(ids[start:start + _IN_CHUNK]),
                                              Consent.kind == "consent")))
        return found

    def _entries(self, call_id: str, kind: str) -> list[Consent]:
        return list(self.session.scalars(
            select(Consent).where(Consent.call_id == call_id, Consent.kind == kind)
            .order_by(Consent.id)))

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


class _ChainWalk:
    """The chain checks of one entry after another (see `ConsentLedger.verify`)."""

    def __init__(self, signer: LedgerSigner, positions: set[int]) -> None:
        self.signer = signer
        self.positions = positions
        self.problems: list[Problem] = []
        self.count = 0
        self.hash_at: dict[int, str] = {}
        self.legacy = 0
        self.signed_seen = False
        self.expected_prev = GENESIS_HASH
        self.previous_bad = False
        self.last: Consent | None = None

    def check(self, entry: Consent) -> None:
        found = len(self.problems)
        if entry.prev_hash != self.expected_prev and not self.previous_bad:
            after = self.last.id if self.last is not None else "the start"
            self._add(DELETED, entry, f"{_BAD_PREV}: entries are missing between id {after} "
                      f"and id {entry.id}")
        if entry_hash(entry) != entry.entry_hash:
            self._add(EDITED, entry, _BAD_HASH)
        elif entry.key_id is None:
            if self.signed_seen:
                self._add(UNSIGNED, entry, "an unsigned entry after signed ones")
            else:
                self.legacy += 1
        elif not self.signer.knows(entry.key_id):
            self._add(UNKNOWN_KEY, entry, f"signed with key {entry.key_id!r}, which the "
                      "keyring does not hold")
        elif not self.signer.verify(entry.key_id, entry.entry_hash, entry.signature or ""):
            self._add(FORGED, entry, "the hash matches the content but the signature does "
                      "not: re-hashed without the ledger key (a re-chained forgery)")
        if entry.key_id is not None:
            self.signed_seen = True
        # A link broken because the entry before was rewritten is that entry's problem.
        self.previous_bad = len(self.problems) > found and self.problems[-1].kind != DELETED
        self.expected_prev = entry.entry_hash
        self.count += 1
        if self.count in self.positions:
            self.hash_at[self.count] = entry.entry_hash
        self.last = entry

    def _add(self, kind: str, entry: Consent, detail: str) -> None:
        self.problems.append(Problem(kind, entry.id, detail, entry.call_id))

    def result(self) -> LedgerCheck:
        first = self.problems[0] if self.problems else None
        last = self.last
        return LedgerCheck(
            ok=not self.problems,
            entries=self.count,
            first_bad_id=None if first is None else first.entry_id,
            problem=None if first is None else f"{first.kind}: {first.detail}",
            problems=tuple(self.problems),
            legacy=self.legacy,
            head=GENESIS_HASH if last is None else last.entry_hash,
            head_id=None if last is None else last.id,
            head_key_id=None if last is None else last.key_id,
            hash_at=self.hash_at,
        )
