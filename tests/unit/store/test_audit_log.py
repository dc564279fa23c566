"""The audit log is insert-only on both databases."""

from __future__ import annotations

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
