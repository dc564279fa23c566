"""What someone with database access can do to the consent ledger, and how the audit names it.

Every change is made past the triggers, as the table's owner or a superuser would (SQLite:
the triggers dropped; PostgreSQL: switched off inside the transaction), then
`bot.ledger_audit.audit` must name it: an edited entry, a deleted one, a cut-off tail, a
re-chained forgery, stripped signatures, a missing recording seal, a recording or a
transcript turn that changed, a phone number that is not the consenting one.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text

from bot import callrecord
from bot.ledger_anchor import Anchor, make_anchor
from bot.ledger_audit import AuditReport, audit
from bot.store import Call, CallRepo, Consent, ConsentLedger, Database
from bot.store.ledger import entry_hash
from bot.store.ledger_signer import LedgerSigner
from bot.store.models import GENESIS_HASH

AT = datetime(2030, 5, 6, 10, 0, tzinfo=UTC)


def consent(db: Database, call: Call, words: str = "好的我同意") -> Consent:
    """A consent as the actions append it: with its transcript turn and audio span."""
    with db.session() as session:
        turn = CallRepo(session).add_turn(call.id, "customer", words, input_mode="speech",
                                          asr_confidence=0.9)
        return ConsentLedger(session).append(
            call.id, call.contact_id, call.campaign_id, "彩铃 5元/月", "b" * 64,
            ["price", "cancel"], words, "speech", 0.9, turn_seq=turn.seq, turn_text=turn.text,
            audio_start_ms=41_000, audio_end_ms=42_300)


def close(db: Database, call: Call, recording: Path | None = None) -> None:
    sha = None if recording is None else hashlib.sha256(recording.read_bytes()).hexdigest()
    with db.session() as session:
        callrecord.close(session, call.id, ended_at=AT, ended_by="bot",
                         recording_path=None if recording is None else str(recording),
                         recording_sha256=sha)


def run_audit(db: Database, anchor: Anchor | None = None) -> AuditReport:
    with db.session() as session:
        return audit(session, LedgerSigner.load(), anchor)


def kinds(report: AuditReport) -> list[str]:
    return [p.kind for p in report.problems]


def tamper(db: Database, *statements: tuple[str, dict[str, object]]) -> None:
    """Run *statements* past the ledger's triggers, as the owner of the table could."""
    with db.session() as session:
        if db.is_sqlite:
            for name in ("consents_no_update", "consents_no_delete", "consents_at_head",
                         "consents_id_at_head"):
                session.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
            for sql, params in statements:
                session.execute(text(sql), params)
        else:  # one transaction: the shared test database keeps its triggers
            session.execute(text("ALTER TABLE consents DISABLE TRIGGER USER"))
            for sql, params in statements:
                session.execute(text(sql), params)
            session.execute(text("ALTER TABLE consents ENABLE TRIGGER USER"))


def anchor_now(db: Database) -> Anchor:
    signer = LedgerSigner.load()
    with db.session() as session:
        return make_anchor(ConsentLedger(session, signer).verify(), signer, AT, "test")


def three_sealed_calls(db: Database, seeder, tmp_path: Path) -> list[Call]:  # type: ignore[no-untyped-def]
    calls = [seeder(db, phone=f"1381234560{n}") for n in range(3)]
    for n, call in enumerate(calls):
        consent(db, call)
        wav = tmp_path / f"call{n}.wav"
        wav.write_bytes(b"RIFF-not-really-a-wav" + bytes([n]))
        close(db, call, wav)
    return calls


def test_an_intact_ledger_passes_with_its_seals(db: Database, seeder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    three_sealed_calls(db, seeder, tmp_path)
    report = run_audit(db, anchor_now(db))
    assert report.ok, report.as_json()
    assert report.chain.entries == 6 and report.chain.legacy == 0
    with db.session() as session:
        entries = session.scalars(select(Consent).order_by(Consent.id)).all()
        assert [e.kind for e in entries] == ["consent", "recording_seal"] * 3
        assert all(e.key_id and e.signature and len(e.signature) == 128 for e in entries)
        assert entries[0].turn_text == "好的我同意" and entries[0].audio_end_ms == 42_300
        assert entries[0].phone_hash == LedgerSigner.load().phone_hash("13812345600")
        assert entries[0].phone_hash != hashlib.sha256(b"13812345600").hexdigest()


def test_an_edited_entry_is_named(db: Database, seeder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    three_sealed_calls(db, seeder, tmp_path)
    with db.session() as session:
        target = session.scalars(select(Consent.id).order_by(Consent.id)).all()[2]
    tamper(db, ("UPDATE consents SET utterance = '嗯' WHERE id = :id", {"id": target}))
    report = run_audit(db)
    assert kinds(report) == ["edited"] and report.problems[0].entry_id == target


def test_a_deleted_entry_in_the_middle_is_named(db: Database, seeder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    calls = three_sealed_calls(db, seeder, tmp_path)
    anchor = anchor_now(db)
    with db.session() as session:
        ids = session.scalars(select(Consent.id).order_by(Consent.id)).all()
    tamper(db, ("DELETE FROM consents WHERE id = :id", {"id": ids[3]}))  # call 1's seal
    report = run_audit(db, anchor)
    assert kinds(report) == ["deleted", "cut_off", "missing_seal"]
    assert report.problems[0].entry_id == ids[4]
    assert f"between id {ids[2]} and id {ids[4]}" in report.problems[0].detail
    assert report.problems[2].call_id == calls[1].id


def test_a_cut_off_tail_is_caught_by_the_anchor(db: Database, seeder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    three_sealed_calls(db, seeder, tmp_path)
    anchor = anchor_now(db)
    with db.session() as session:
        ids = session.scalars(select(Consent.id).order_by(Consent.id)).all()
    tamper(db, ("DELETE FROM consents WHERE id = :id", {"id": ids[5]}))  # the last seal
    assert kinds(run_audit(db)) == ["missing_seal"]  # its call has ended
    assert kinds(run_audit(db, anchor)) == ["cut_off", "missing_seal"]
    # Cut after a seal, what is left is a valid chain: only the anchor tells.
    tamper(db, ("DELETE FROM consents WHERE id >= :id", {"id": ids[2]}))
    assert run_audit(db).ok
    report = run_audit(db, anchor)
    assert kinds(report) == ["cut_off"]
    assert "counted 6 entries, the ledger has 2" in report.problems[0].detail


def rechain(db: Database, edit_id: int, column: str, value: object,
            strip_signatures: bool = False) -> None:
    """Edit one entry and recompute every hash from it on, as an attacker without the key
    can (the signatures cannot be remade: they are kept, or stripped)."""
    with db.session() as session:
        entries = session.scalars(select(Consent).order_by(Consent.id)).all()
        for entry in entries:
            session.expunge(entry)
    updates: list[tuple[str, dict[str, object]]] = []
    prev = GENESIS_HASH
    for entry in entries:
        if entry.id == edit_id:
            setattr(entry, column, value)
        if entry.id >= edit_id:
            entry.prev_hash = prev
            if strip_signatures:
                entry.key_id, entry.signature = None, None
            entry.entry_hash = entry_hash(entry)
            updates.append((f"UPDATE consents SET {column} = :value, prev_hash = :prev, "
                            "entry_hash = :hash, key_id = :key, signature = :sig "
                            "WHERE id = :id",
                            {"value": getattr(entry, column), "prev": entry.prev_hash,
                             "hash": entry.entry_hash, "key": entry.key_id,
                             "sig": entry.signature, "id": entry.id}))
        prev = entry.entry_hash
    tamper(db, *updates)


def test_a_rechained_forgery_is_caught_by_the_signatures_and_the_anchor(
        db: Database, seeder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    three_sealed_calls(db, seeder, tmp_path)
    anchor = anchor_now(db)
    with db.session() as session:
        ids = session.scalars(select(Consent.id).order_by(Consent.id)).all()
    rechain(db, ids[2], "product", "彩铃 50元/月")
    report = run_audit(db, anchor)
    assert kinds(report) == ["forged"] * 4 + ["rewritten"]
    assert [p.entry_id for p in report.problems[:4]] == ids[2:]
    assert "re-chained forgery" in report.problems[0].detail


def test_stripped_signatures_are_caught(db: Database, seeder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    three_sealed_calls(db, seeder, tmp_path)
    anchor = anchor_now(db)
    with db.session() as session:
        ids = session.scalars(select(Consent.id).order_by(Consent.id)).all()
    rechain(db, ids[2], "product", "彩铃 50元/月", strip_signatures=True)
    assert kinds(run_audit(db)) == ["unsigned"] * 4
    # All of them stripped: without the anchor they pass for legacy entries; the anchor tells.
    rechain(db, ids[0], "product", "彩铃 50元/月", strip_signatures=True)
    assert run_audit(db).chain.legacy == 6
    assert set(kinds(run_audit(db, anchor))) == {"rewritten", "unsigned"}


def test_a_changed_recording_or_call_row_is_named(db: Database, seeder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    calls = three_sealed_calls(db, seeder, tmp_path)
    (tmp_path / "call0.wav").write_bytes(b"another recording")
    with db.session() as session:
        session.execute(text("UPDATE calls SET recording_sha256 = :sha WHERE id = :id"),
                        {"sha": "e" * 64, "id": calls[1].id})
    report = run_audit(db)
    assert [(p.kind, p.call_id) for p in report.problems] == [
        ("recording_changed", calls[0].id), ("recording_row_changed", calls[1].id)]
    (tmp_path / "call2.wav").unlink()
    assert any("not on this machine" in note for note in run_audit(db).notes)


def test_a_changed_transcript_turn_or_phone_is_named(db: Database, seeder,
                                                     tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    calls = three_sealed_calls(db, seeder, tmp_path)
    with db.session() as session:
        session.execute(text("UPDATE transcript_turns SET text = '不要' WHERE call_id = :id"),
                        {"id": calls[0].id})
        session.execute(text("UPDATE contacts SET phone = '13900000000' WHERE id = :id"),
                        {"id": calls[2].contact_id})
    report = run_audit(db)
    assert [(p.kind, p.call_id) for p in report.problems] == [
        ("transcript_changed", calls[0].id), ("phone_changed", calls[2].id)]


def test_a_call_with_a_consent_is_sealed_once_when_it_closes(db: Database, call: Call,
                                                             tmp_path: Path) -> None:
    consent(db, call)
    assert run_audit(db).ok  # not ended yet: pending, noted
    assert any("not sealed yet" in note for note in run_audit(db).notes)
    close(db, call)  # the channel's close, without a recording (a text call)
    close(db, call)  # the dialer's close after it
    wav = tmp_path / "late.wav"
    wav.write_bytes(b"finalised after a crash")
    close(db, call, wav)  # the recording linked later: a second seal binds it
    with db.session() as session:
        seals = session.scalars(select(Consent).where(Consent.kind == "recording_seal")
                                .order_by(Consent.id)).all()
    assert [s.recording_sha256 for s in seals] == [
        None, hashlib.sha256(b"finalised after a crash").hexdigest()]
    assert run_audit(db).ok


def test_a_call_without_consent_gets_no_seal(db: Database, call: Call) -> None:
    close(db, call)
    with db.session() as session:
        assert session.scalars(select(Consent)).all() == []


def test_an_ended_call_whose_seal_is_missing_is_named(db: Database, call: Call,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    consent(db, call)
    monkeypatch.setenv("WAIHU_KEYS_DIR", "/nonexistent")  # this machine has no ledger key
    close(db, call)  # the call still closes
    monkeypatch.undo()
    with db.session() as session:
        assert session.get(Call, call.id).ended_at is not None  # type: ignore[union-attr]
    assert kinds(run_audit(db)) == ["missing_seal"]
