"""The consent ledger: hash chain, tamper detection, append-only triggers, concurrency."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from bot.store import Call, Consent, ConsentLedger, Database, LedgerCheck
from bot.store.ledger import canonical_json, entry_hash
from bot.store.models import GENESIS_HASH

DISCLOSURES = ["price", "trial_end", "cancel", "usage", "features"]


def append(ledger: ConsentLedger, call: Call, utterance: str = "好的我同意") -> Consent:
    return ledger.append(
        call_id=call.id,
        contact_id=call.contact_id,
        campaign_id=call.campaign_id,
        product="视频彩铃 15元/月",
        script_hash="b" * 64,
        disclosures=DISCLOSURES,
        utterance=utterance,
        input_mode="speech",
        asr_confidence=0.93,
    )


def test_append_chains_entries_and_verify_passes(db: Database, call: Call) -> None:
    with db.session() as session:
        ledger = ConsentLedger(session)
        assert ledger.verify() == LedgerCheck(ok=True, entries=0)
        first = append(ledger, call)
        second = ledger.append(
            call.id,
            call.contact_id,
            call.campaign_id,
            "彩铃",
            "c" * 64,
            ["price"],
            "DTMF 1",
            "dtmf",
            1,
            created_at=datetime(2030, 1, 1, tzinfo=UTC),
        )
        assert first.prev_hash == GENESIS_HASH
        assert second.prev_hash == first.entry_hash
        assert second.asr_confidence == 1.0 and isinstance(second.asr_confidence, float)
    with db.session() as session:
        ledger = ConsentLedger(session)
        third = append(ledger, call, "可以，给我开通")
        assert third.prev_hash == second.entry_hash
    with db.session() as session:
        check = ConsentLedger(session).verify()
        assert (check.ok, check.entries, check.first_bad_id, check.problem) == (True, 3, None, None)
        stored = session.scalars(select(Consent).order_by(Consent.id)).all()
        assert stored[0].disclosures == DISCLOSURES
        assert all(entry_hash(c) == c.entry_hash for c in stored)  # after the round trip


def test_canonical_json_is_compact_sorted_and_unescaped(db: Database, call: Call) -> None:
    with db.session() as session:
        consent = append(ConsentLedger(session), call)
        canonical = canonical_json(consent)
    assert canonical.startswith('{"asr_confidence":0.93,"audio_end_ms":null,')
    assert "好的我同意" in canonical and ", " not in canonical and '"id"' not in canonical
    assert '"prev_hash":"' + GENESIS_HASH in canonical and "entry_hash" not in canonical
    assert '"key_id":"' in canonical and "signature" not in canonical


def test_input_mode_is_validated(db: Database, call: Call) -> None:
    with db.session() as session, pytest.raises(ValueError, match="input mode"):
        ConsentLedger(session).append(
            call.id, call.contact_id, call.campaign_id, "p", "h", [], "嗯", "telepathy", None
        )


def test_updates_and_deletes_are_refused_by_the_database(db: Database, call: Call) -> None:
    with db.session() as session:
        append(ConsentLedger(session), call)
    with pytest.raises(IntegrityError, match="append-only"), db.session() as session:
        session.execute(text("UPDATE consents SET utterance = '嗯'"))
    with pytest.raises(IntegrityError, match="append-only"), db.session() as session:
        session.execute(text("DELETE FROM consents"))
    with pytest.raises(IntegrityError, match="append-only"), db.session() as session:
        consent = session.scalars(select(Consent)).one()
        consent.product = "something else"  # through the ORM too
    if db.engine.dialect.name == "postgresql":
        with pytest.raises(IntegrityError, match="append-only"), db.session() as session:
            session.execute(text("TRUNCATE consents"))
    with db.session() as session:
        assert session.scalars(select(Consent.utterance)).all() == ["好的我同意"]


def test_a_fork_is_impossible(db: Database, call: Call) -> None:
    with db.session() as session:
        head = append(ConsentLedger(session), call)
    with pytest.raises(IntegrityError), db.session() as session:
        forged = Consent(
            call_id=call.id,
            contact_id=call.contact_id,
            campaign_id=call.campaign_id,
            product="p",
            script_hash="h",
            disclosures=[],
            utterance="x",
            input_mode="text",
            prev_hash=head.prev_hash,
            entry_hash="f" * 64,
        )
        session.add(forged)


def _tamper(db: Database, sql: str, params: dict[str, object]) -> None:
    """Run *sql* on ``consents`` past the append-only triggers, as an attacker with DDL rights."""
    with db.session() as session:
        if db.is_sqlite:
            session.execute(text("DROP TRIGGER consents_no_update"))
            session.execute(text("DROP TRIGGER consents_no_delete"))
            session.execute(text(sql), params)
        else:  # one transaction: the shared test database keeps its trigger
            session.execute(text("ALTER TABLE consents DISABLE TRIGGER consents_append_only"))
            session.execute(text(sql), params)
            session.execute(text("ALTER TABLE consents ENABLE TRIGGER consents_append_only"))


def test_verify_reports_the_first_tampered_entry(db: Database, call: Call) -> None:
    with db.session() as session:
        ledger = ConsentLedger(session)
        ids = [append(ledger, call, f"同意 {i}").id for i in range(4)]
    _tamper(db, "UPDATE consents SET utterance = '嗯' WHERE id = :id", {"id": ids[2]})
    with db.session() as session:
        check = ConsentLedger(session).verify()
    assert (check.ok, check.first_bad_id, check.entries) == (False, ids[2], 4)
    assert check.problem is not None and check.problem.startswith("edited: entry_hash")


def test_verify_reports_a_removed_entry(db: Database, call: Call) -> None:
    with db.session() as session:
        ledger = ConsentLedger(session)
        ids = [append(ledger, call, f"同意 {i}").id for i in range(3)]
    _tamper(db, "DELETE FROM consents WHERE id = :id", {"id": ids[1]})
    with db.session() as session:
        check = ConsentLedger(session).verify()
    assert (check.ok, check.first_bad_id) == (False, ids[2])
    assert check.problem is not None and check.problem.startswith("deleted: prev_hash")


def _append_concurrently(db: Database, call: Call, threads: int, each: int) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def worker(n: int) -> None:
        try:
            start.wait()
            for i in range(each):
                with db.session() as session:  # one unit of work per append, as in a call
                    append(ConsentLedger(session), call, f"thread {n} #{i}")
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=60)
    return errors


@pytest.mark.postgres
def test_concurrent_appends_keep_one_chain_on_postgresql(
    pg_db: Database, seeder: Callable[..., Call]
) -> None:
    call = seeder(pg_db)
    assert _append_concurrently(pg_db, call, threads=4, each=10) == []
    with pg_db.session() as session:
        check = ConsentLedger(session).verify()
    assert (check.ok, check.entries) == (True, 40)


def test_concurrent_appends_keep_one_chain_on_sqlite(
    sqlite_db: Database, seeder: Callable[..., Call]
) -> None:
    call = seeder(sqlite_db)
    assert _append_concurrently(sqlite_db, call, threads=4, each=10) == []
    with sqlite_db.session() as session:
        check = ConsentLedger(session).verify()
    assert (check.ok, check.entries) == (True, 40)
