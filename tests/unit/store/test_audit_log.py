"""The audit log is insert-only on both databases."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from bot.store import AuditRepo, Database


def test_entries_are_recorded_and_cannot_be_changed_or_removed(db: Database) -> None:
    with db.session() as session:
        AuditRepo(session).record("os:alice", "call.forced", "c-1", phone="138****5678")
    with db.session() as session:
        [entry] = AuditRepo(session).entries(action="call.forced")
        assert (entry.actor, entry.subject, entry.detail) == (
            "os:alice", "c-1", {"phone": "138****5678"})
    for statement in ("UPDATE audit_log SET actor = 'os:mallory'", "DELETE FROM audit_log"):
        with pytest.raises(IntegrityError, match="insert-only"), db.session() as session:
            session.execute(text(statement))
    with db.session() as session:
        assert [e.actor for e in AuditRepo(session).entries()] == ["os:alice"]


def test_another_sqlite_client_cannot_replace_an_entry(sqlite_db: Database) -> None:
    """The sqlite3 shell or a script leaves recursive_triggers off: REPLACE would then
    delete the entry without firing the delete trigger, were it not for the insert one."""
    with sqlite_db.session() as session:
        AuditRepo(session).record("os:alice", "call.forced", "c-1")
    path = sqlite_db.engine.url.database
    assert path is not None
    foreign = sqlite3.connect(path)
    try:
        assert foreign.execute("PRAGMA recursive_triggers").fetchone() == (0,)
        with pytest.raises(sqlite3.IntegrityError, match="insert-only"):
            foreign.execute("INSERT OR REPLACE INTO audit_log (id, at, actor, action, detail) "
                            "SELECT id, at, 'os:mallory', action, detail FROM audit_log")
        foreign.commit()
    finally:
        foreign.close()
    with sqlite_db.session() as session:
        assert [e.actor for e in AuditRepo(session).entries()] == ["os:alice"]
