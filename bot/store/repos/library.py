"""The recording library: calls marked exemplary or as a problem, with a note and tags
(bot.store.models.LibraryEntry).  One entry per call; marking a call again changes it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.store.models import LIBRARY_KINDS, Call, Campaign, LibraryEntry, LibraryTag
from bot.store.repos.common import NotFound


def describe(entry: LibraryEntry) -> dict[str, Any]:
    """An entry as plain values (what the audit log keeps of it)."""
    return {"kind": entry.kind, "note": entry.note, "tags": sorted(t.tag for t in entry.tags),
            "marked_by": entry.marked_by, "marked_at": entry.marked_at.isoformat()}


class LibraryRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def of_call(self, call_id: str) -> LibraryEntry | None:
        return self.session.scalar(select(LibraryEntry).where(LibraryEntry.call_id == call_id))

    def mark(self, call_id: str, kind: str, note: str, tags: Sequence[str], by: str,
             at: datetime) -> tuple[LibraryEntry, dict[str, Any] | None]:
        """Put the call in the library, or change its entry; returns the entry and what it
        was before (None for a new one)."""
        if kind not in LIBRARY_KINDS:
            raise ValueError(f"unknown library kind {kind!r}")
        if self.session.get(Call, call_id) is None:
            raise NotFound(f"call {call_id}")
        entry = self.of_call(call_id)
        before = None if entry is None else describe(entry)
        if entry is None:
            entry = LibraryEntry(call_id=call_id, kind=kind, note=note, marked_by=by,
                                 marked_at=at)
            self.session.add(entry)
        else:
            entry.kind, entry.note, entry.marked_by, entry.marked_at = kind, note, by, at
        # Tags kept stay the same rows (a deleted and re-added (entry, tag) key in one flush
        # is left to the ORM's row switching otherwise).
        kept = {t.tag: t for t in entry.tags}
        entry.tags = [kept.get(tag) or LibraryTag(tag=tag) for tag in dict.fromkeys(tags)]
        self.session.flush()
        return entry, before

    def remove(self, call_id: str) -> dict[str, Any] | None:
        """Take the call out of the library; what its entry was (None: it had none)."""
        entry = self.of_call(call_id)
        if entry is None:
            return None
        before = describe(entry)
        self.session.delete(entry)
        self.session.flush()
        return before

    def entries(self, kind: str | None = None, tag: str | None = None, limit: int = 500
                ) -> list[tuple[LibraryEntry, Call, str]]:
        """Entries (newest marked first) with their call and campaign name, of one kind
        and/or with one tag."""
        query = (select(LibraryEntry, Call, Campaign.name)
                 .join(Call, Call.id == LibraryEntry.call_id)
                 .join(Campaign, Campaign.id == Call.campaign_id)
                 .order_by(LibraryEntry.marked_at.desc(), LibraryEntry.id.desc()).limit(limit))
        if kind is not None:
            query = query.where(LibraryEntry.kind == kind)
        if tag is not None:
            query = query.where(LibraryEntry.id.in_(
                select(LibraryTag.entry_id).where(LibraryTag.tag == tag)))
        return [(entry, call, name) for entry, call, name in self.session.execute(query)]

    def tag_counts(self) -> dict[str, int]:
        """Every tag in use and how many entries carry it, most used first."""
        rows = self.session.execute(select(LibraryTag.tag, func.count()).group_by(
            LibraryTag.tag).order_by(func.count().desc(), LibraryTag.tag))
        return {tag: n for tag, n in rows}

    def kind_counts(self) -> dict[str, int]:
        counts = {kind: n for kind, n in self.session.execute(
            select(LibraryEntry.kind, func.count()).group_by(LibraryEntry.kind))}
        return {kind: counts.get(kind, 0) for kind in LIBRARY_KINDS}
