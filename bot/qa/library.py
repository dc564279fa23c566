"""The recording library (issue 15 item 6): QA reviewers and supervisors mark a sampled call
as exemplary or as a problem, with a note and tags, and play the marked calls back for
training (the library lists them; each opens on its review page, where the recording plays).

Database work only, called by the console (bot/console/library_pages.py) in a thread.  Only
calls drawn into a QA sample can be marked (they are the calls whose review page exists).
A note is stored with anything that looks like a phone or ID number masked, as the review
page shows a call's turns.  Every change is in the audit log (``library.marked``,
``library.removed``) with what the entry was before.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.console.call_pop import mask_text
from bot.qa.review import agents_of_calls, sampled_call
from bot.store import Database
from bot.store.models import LIBRARY_KINDS
from bot.store.repos.audit import AuditRepo
from bot.store.repos.library import LibraryRepo, describe

log = logging.getLogger("waihu.qa")
KIND_LABELS = {"exemplary": ("优秀录音", "Exemplary"), "problem": ("问题录音", "Problem")}
MAX_NOTE = 2000
MAX_TAGS = 10
MAX_TAG = 40  # library_tags.tag
_TAG_SPLIT = re.compile(r"[\s,，、;；]+")


class LibraryFormError(ValueError):
    """A mark that cannot be stored as given (the message says why, in both languages)."""


@dataclass(frozen=True)
class Mark:
    kind: str
    note: str
    tags: tuple[str, ...]


def parse_tags(text: str) -> tuple[str, ...]:
    """Tags from what a reviewer typed: separated by spaces, commas (also ，、) or
    semicolons; a leading ``#`` dropped; Latin letters in lower case; duplicates once."""
    tags = []
    for word in _TAG_SPLIT.split(text):
        tag = word.strip().lstrip("#").lower()
        if not tag:
            continue
        if len(tag) > MAX_TAG:
            raise LibraryFormError(f"标签过长 A tag is longer than {MAX_TAG} characters: "
                                   f"{tag[:20]}…")
        tags.append(tag)
    unique = tuple(dict.fromkeys(tags))
    if len(unique) > MAX_TAGS:
        raise LibraryFormError(f"标签最多 {MAX_TAGS} 个 At most {MAX_TAGS} tags")
    return unique


def parse_mark(form: Mapping[str, Any]) -> Mark:
    kind = str(form.get("kind", ""))
    if kind not in LIBRARY_KINDS:
        raise LibraryFormError("请选择优秀录音或问题录音 Choose exemplary or problem")
    note = str(form.get("note", "")).strip()
    if not note:
        raise LibraryFormError("请写明原因 A note is needed: what to learn from this call")
    if len(note) > MAX_NOTE:
        raise LibraryFormError(f"备注最多 {MAX_NOTE} 字 The note is longer than {MAX_NOTE}")
    return Mark(kind, mask_text(note), parse_tags(str(form.get("tags", ""))))


def mark_call(db: Database, call_id: str, user: str, mark: Mark, now: datetime
              ) -> dict[str, Any]:
    """Put a sampled call in the library or change its entry (NotSampled otherwise);
    audited as ``library.marked``.  Returns the entry as stored."""
    with db.session(write=True) as session:
        sampled_call(session, call_id)
        entry, before = LibraryRepo(session).mark(call_id, mark.kind, mark.note, mark.tags,
                                                  user, now)
        after = describe(entry)
        AuditRepo(session).record(f"user:{user}", "library.marked", call_id, at=now,
                                  kind=mark.kind, tags=list(mark.tags), note=mark.note,
                                  previous=before)
    log.info("library.marked call_id=%s kind=%s by=%s", call_id, mark.kind, user)
    return after


def unmark_call(db: Database, call_id: str, user: str, now: datetime) -> bool:
    """Take a call out of the library; False when it was not in it.  Audited as
    ``library.removed`` with the entry it was."""
    with db.session(write=True) as session:
        sampled_call(session, call_id)
        before = LibraryRepo(session).remove(call_id)
        if before is None:
            return False
        AuditRepo(session).record(f"user:{user}", "library.removed", call_id, at=now,
                                  previous=before)
    log.info("library.removed call_id=%s by=%s", call_id, user)
    return True


def library(db: Database, kind: str | None = None, tag: str | None = None
            ) -> dict[str, Any]:
    """The library's entries (newest first) of one kind and/or tag, with every tag in use
    and the number of entries of each kind."""
    if kind is not None and kind not in LIBRARY_KINDS:
        raise LibraryFormError(f"unknown kind {kind[:20]!r}")
    with db.session() as session:
        repo = LibraryRepo(session)
        rows = repo.entries(kind, tag)
        agents = agents_of_calls(session, [call.id for _, call, _ in rows])
        return {
            "entries": [{"call_id": call.id, "campaign": campaign, "kind": entry.kind,
                         "note": entry.note, "tags": sorted(t.tag for t in entry.tags),
                         "marked_by": entry.marked_by, "marked_at": entry.marked_at,
                         "started_at": call.started_at, "outcome": call.outcome,
                         "duration_s": None if call.ended_at is None else
                         round((call.ended_at - call.started_at).total_seconds()),
                         "agent": agents.get(call.id), "has_recording":
                         bool(call.recording_path)}
                        for entry, call, campaign in rows],
            "tags": repo.tag_counts(),
            "kinds": repo.kind_counts(),
        }
