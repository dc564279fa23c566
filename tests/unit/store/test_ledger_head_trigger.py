"""The database itself only lets the ledger grow at its head (migration 0007), and entries
written before signatures existed stay valid after the migration."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from bot.store import Call, Consent, ConsentLedger, Database
from bot.store.ledger import canonical_json
from bot.store.models import GENESIS_HASH
from tests.conftest import seed_call

NOT_HEAD = "only be appended at the head"


def append(db: Database, call: Call, words: str = "好的") -> Consent:
    with db.session() as session:
        return ConsentLedger(session).append(call.id, call.contact_id, call.campaign_id,
                                             "p", "h" * 64, [], words, "text", None)


def insert_sql(**values: object) -> tuple[str, dict[str, object]]:
    row = {"call_id": None, "contact_id": None, "campaign_id": None, "product": "p",
           "script_hash": "h", "disclosures": "[]", "utterance": "x", "input_mode": "text",
           "created_at": "2030-01-01 00:00:00", "kind": "consent", **values}
    names = ", ".join(row)
    return (f"INSERT INTO consents ({names}) VALUES ({', '.join(':' + n for n in row)})",
            row)


def test_an_insert_that_is_not_at_the_head_is_refused(db: Database, call: Call) -> None:
    first = append(db, call)
    second = append(db, call)
    ids = {"call_id": call.id, "contact_id": call.contact_id, "campaign_id": call.campaign_id}
    for prev in (GENESIS_HASH, first.entry_hash, "f" * 64):  # a fork, or a made-up link
        sql, params = insert_sql(**ids, prev_hash=prev, entry_hash="e" * 64)
        with pytest.raises(IntegrityError), db.session() as session:
            session.execute(text(sql), params)
    # At the head, but with an id below the head's (a gap left by a rolled-back append).
    sql, params = insert_sql(**ids, id=second.id - 10, prev_hash=second.entry_hash,
                             entry_hash="e" * 64)
    with pytest.raises(IntegrityError, match=NOT_HEAD), db.session() as session:
        session.execute(text(sql), params)
    assert append(db, call).prev_hash == second.entry_hash  # the real head still appends


def _raw_sqlite(db: Database, recursive_triggers: bool) -> sqlite3.Connection:
    """A connection of someone else's, with SQLite's default PRAGMAs (not bot.store's)."""
    assert db.url.database
    connection = sqlite3.connect(db.url.database, isolation_level=None)
    connection.execute(f"PRAGMA recursive_triggers={'ON' if recursive_triggers else 'OFF'}")
    return connection


@pytest.mark.parametrize("recursive_triggers", [False, True])
def test_insert_or_replace_cannot_replace_an_entry_on_sqlite(
        sqlite_db: Database, recursive_triggers: bool) -> None:
    call = seed_call(sqlite_db)
    first, head = append(sqlite_db, call, "第一"), append(sqlite_db, call, "第二")
    connection = _raw_sqlite(sqlite_db, recursive_triggers)
    ids = {"call_id": call.id, "contact_id": call.contact_id, "campaign_id": call.campaign_id}
    attempts: list[dict[str, object]] = [  # each collides with a row REPLACE would delete
        {"id": first.id, "prev_hash": head.entry_hash, "entry_hash": "e" * 64},
        {"id": head.id, "prev_hash": head.entry_hash, "entry_hash": "e" * 64},
        {"prev_hash": head.entry_hash, "entry_hash": head.entry_hash},
        {"prev_hash": first.prev_hash, "entry_hash": "e" * 64},
    ]
    for values in attempts:
        sql, params = insert_sql(**ids, **values)
        with pytest.raises(sqlite3.IntegrityError):
            connection.execute(sql.replace("INSERT INTO", "INSERT OR REPLACE INTO"), params)
    connection.close()
    with sqlite_db.session() as session:
        assert session.scalars(select(Consent.utterance).order_by(Consent.id)).all() == [
            "第一", "第二"]
        assert ConsentLedger(session).verify().ok


def test_our_sqlite_connections_fire_delete_triggers_on_replace(sqlite_db: Database) -> None:
    """bot.store turns recursive_triggers on, so a REPLACE into an insert-only table that
    has no insert trigger of its own (the audit log) is refused too."""
    with sqlite_db.session() as session:
        assert session.execute(text("PRAGMA recursive_triggers")).scalar() == 1
        session.execute(text("INSERT INTO audit_log (id, actor, action, detail) "
                             "VALUES (1, 'a', 'b', '{}')"))
    with pytest.raises(IntegrityError, match="insert-only"), sqlite_db.session() as session:
        session.execute(text("INSERT OR REPLACE INTO audit_log (id, actor, action, detail) "
                             "VALUES (1, 'x', 'y', '{}')"))


def test_entries_from_before_0007_stay_valid_as_legacy(fresh_db: Database) -> None:
    fresh_db.downgrade("0006")
    call = seed_call(fresh_db)
    created = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    legacy = Consent(call_id=call.id, contact_id=call.contact_id, campaign_id=call.campaign_id,
                     product="彩铃", script_hash="a" * 64, disclosures=["price"],
                     utterance="我同意", input_mode="speech", asr_confidence=0.9,
                     created_at=created, prev_hash=GENESIS_HASH)
    digest = hashlib.sha256(canonical_json(legacy).encode()).hexdigest()
    with fresh_db.engine.begin() as connection:  # the 0006 schema, as the old code wrote it
        connection.execute(text(
            "INSERT INTO consents (call_id, contact_id, campaign_id, product, script_hash, "
            "disclosures, utterance, input_mode, asr_confidence, created_at, prev_hash, "
            "entry_hash) VALUES (:call, :contact, :campaign, '彩铃', :script, :disclosures, "
            "'我同意', 'speech', 0.9, :created, :prev, :hash)"),
            {"call": call.id, "contact": call.contact_id, "campaign": call.campaign_id,
             "script": "a" * 64, "disclosures": json.dumps(["price"]),
             "created": created if not fresh_db.is_sqlite
             else created.strftime("%Y-%m-%d %H:%M:%S.%f"),
             "prev": GENESIS_HASH, "hash": digest})
    fresh_db.upgrade()
    signed = append(fresh_db, call)
    with fresh_db.session() as session:
        check = ConsentLedger(session).verify()
        kinds = session.scalars(select(Consent.kind).order_by(Consent.id)).all()
    assert (check.ok, check.entries, check.legacy) == (True, 2, 1), check.problems
    assert signed.prev_hash == digest and kinds == ["consent", "consent"]
