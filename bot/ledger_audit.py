"""The consent ledger's audit: the chain, the anchor file, and the evidence each entry binds.

`bot.store.ledger` walks the chain (edited, deleted, forged, unsigned entries).  This adds
what the database alone cannot tell:

- **the anchor** (`bot.ledger_anchor`): the head (hash, count) exported earlier to a file the
  database's users cannot write.  Fewer entries than anchored is a cut-off tail (or a
  deletion); another hash at the anchored position is a rewritten history (even one made
  with the key); more unsigned legacy entries than anchored is a chain stripped of its
  signatures and re-hashed;
- **the recording seals**: every call with a consent that has ended has a seal; the call's
  row still names the sealed recording, and the recording file, where it is on this
  machine, still has the sealed sha256;
- **the transcript turn** of each consent still reads as it did, and the contact's phone
  number still has the entry's keyed hash (with the keyring; an auditor holding only the
  public keys checks the signatures, not the phone hashes).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.ledger_anchor import Anchor
from bot.store.ledger import (
    CONSENT,
    RECORDING_SEAL,
    UNSIGNED,
    ConsentLedger,
    LedgerCheck,
    Problem,
)
from bot.store.ledger_signer import LedgerSigner
from bot.store.models import Call, Consent, Contact, TranscriptTurn

CUT_OFF = "cut_off"  # fewer entries than the anchor counted: the tail (or more) is gone
REWRITTEN = "rewritten"  # the anchored position holds another entry
MISSING_SEAL = "missing_seal"  # an ended call with a consent has no recording seal
RECORDING_CHANGED = "recording_changed"  # the recording file's sha256 is not the sealed one
RECORDING_ROW_CHANGED = "recording_row_changed"  # the call row names another recording
TRANSCRIPT_CHANGED = "transcript_changed"  # the consent's transcript turn reads otherwise
PHONE_CHANGED = "phone_changed"  # the contact's number does not have the entry's hash


@dataclass
class AuditReport:
    chain: LedgerCheck
    anchor: Anchor | None
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.chain.entries,
            "legacy": self.chain.legacy,
            "head": self.chain.head,
            "head_id": self.chain.head_id,
            "anchor": None if self.anchor is None else self.anchor.as_json(),
            "problems": [p.as_json() for p in self.problems],
            "notes": self.notes,
            # kept from the first version of `waihu audit verify --json`
            "first_bad_id": self.problems[0].entry_id if self.problems else None,
            "problem": f"{self.problems[0].kind}: {self.problems[0].detail}"
            if self.problems else None,
        }


def audit(session: Session, signer: LedgerSigner, anchor: Anchor | None) -> AuditReport:
    """Every check of the module docstring; the report names each problem found."""
    chain = ConsentLedger(session, signer).verify(
        positions=() if anchor is None else (anchor.count,))
    report = AuditReport(chain, anchor, list(chain.problems))
    if chain.legacy:
        report.notes.append(f"{chain.legacy} legacy entries (before signatures) at the start "
                            "of the chain: covered by the first signed entry after them")
    if anchor is None:
        report.notes.append("no anchor: a cut-off tail cannot be detected (run `waihu audit "
                            "anchor` regularly)")
    else:
        _check_anchor(report, chain, anchor)
    _check_evidence(session, signer, report)
    return report


def _check_anchor(report: AuditReport, chain: LedgerCheck, anchor: Anchor) -> None:
    if chain.entries < anchor.count:
        report.problems.append(Problem(
            CUT_OFF, None, f"the anchor of {anchor.at} counted {anchor.count} entries, the "
            f"ledger has {chain.entries}: entries after id {chain.head_id} (up to the "
            f"anchored head id {anchor.head_id}) or before them were removed"))
    elif chain.hash_at.get(anchor.count) != anchor.head:
        report.problems.append(Problem(
            REWRITTEN, anchor.head_id, f"entry {anchor.count} is not the head anchored on "
            f"{anchor.at} ({anchor.head[:16]}…): the history up to it was rewritten"))
    if chain.legacy > anchor.legacy:
        report.problems.append(Problem(
            UNSIGNED, None, f"{chain.legacy} unsigned legacy entries, the anchor of "
            f"{anchor.at} counted {anchor.legacy}: signatures were stripped"))


def _check_evidence(session: Session, signer: LedgerSigner, report: AuditReport) -> None:
    entries = session.scalars(select(Consent).where(Consent.key_id.is_not(None))
                              .order_by(Consent.id)).all()
    by_call: dict[str, list[Consent]] = {}
    for entry in entries:
        by_call.setdefault(entry.call_id, []).append(entry)
    phones_checked = False
    for call_id, call_entries in by_call.items():
        consents = [e for e in call_entries if e.kind == CONSENT]
        seals = [e for e in call_entries if e.kind == RECORDING_SEAL]
        for consent in consents:
            _check_turn(session, report, consent)
            phones_checked |= _check_phone(session, signer, report, consent)
        if consents:
            _check_seal(session, report, call_id, seals)
    if entries and not phones_checked:
        report.notes.append("phone hashes not checked: only public keys are at hand")


def _check_turn(session: Session, report: AuditReport, consent: Consent) -> None:
    if consent.turn_seq is None:
        return
    turn = session.scalar(select(TranscriptTurn).where(
        TranscriptTurn.call_id == consent.call_id, TranscriptTurn.seq == consent.turn_seq))
    if turn is None or turn.text != consent.turn_text:
        report.problems.append(Problem(
            TRANSCRIPT_CHANGED, consent.id, f"transcript turn {consent.turn_seq} "
            + ("is gone" if turn is None else "no longer reads as the consent recorded it"),
            consent.call_id))


def _check_phone(session: Session, signer: LedgerSigner, report: AuditReport,
                 consent: Consent) -> bool:
    """Whether the phone hash could be checked (it needs the key, not only the public one)."""
    contact = session.get(Contact, consent.contact_id)
    expected = None if contact is None else signer.phone_hash(contact.phone, consent.key_id)
    if contact is not None and expected is None:
        return False
    if expected != consent.phone_hash:
        report.problems.append(Problem(
            PHONE_CHANGED, consent.id, "the contact's phone number does not have the "
            "entry's phone hash", consent.call_id))
    return True


def _check_seal(session: Session, report: AuditReport, call_id: str,
                seals: list[Consent]) -> None:
    call = session.get(Call, call_id)
    if not seals:
        if call is None or call.ended_at is not None:
            report.problems.append(Problem(MISSING_SEAL, None, "the call has a consent but "
                                           "no recording seal", call_id))
        else:
            report.notes.append(f"call {call_id} has not ended: its recording is not sealed "
                                "yet")
        return
    sealed = seals[-1]
    if call is None or call.recording_sha256 != sealed.recording_sha256:
        report.problems.append(Problem(RECORDING_ROW_CHANGED, sealed.id, "the call's row "
                                       "no longer names the sealed recording", call_id))
        return
    if sealed.recording_sha256 is None:
        report.notes.append(f"call {call_id} ended without a recording (sealed as such)")
        return
    path = Path(call.recording_path or "")
    if not call.recording_path or not path.is_file():
        report.notes.append(f"call {call_id}: recording {call.recording_path} is not on this "
                            "machine (sha256 not checked)")
        return
    with path.open("rb") as recording:
        actual = hashlib.file_digest(recording, "sha256").hexdigest()
    if actual != sealed.recording_sha256:
        report.problems.append(Problem(RECORDING_CHANGED, sealed.id, f"recording {path} "
                                       "does not have the sealed sha256", call_id))
