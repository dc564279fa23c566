"""A call's `CallView` (bot/qa/flags.py) from its database rows: the transcript with each
bot turn's response recognised from its words, the consents in the ledger, what the call's
records say it acted on, and the campaign's rules.

The transcript stores what the bot said, not which response it was: `ResponseBook` turns
domain.yml's response templates into patterns (a ``{slot}`` matches any words) and names
the response a bot turn says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.flowtypes import Script
from bot.campaigns.registry import definition_or_none
from bot.qa.flags import CUT_OFF_SUFFIX, CallView, ConsentMark, Turn
from bot.store.models import (
    Call,
    Campaign,
    Consent,
    Disposition,
    DncEntry,
    Escalation,
    TranscriptTurn,
)

DOMAIN = Path(__file__).resolve().parents[2] / "domain.yml"
_SLOT = re.compile(r"\{[a-z_][a-z0-9_]*\}")
_MIN_LITERAL = 4  # a template of little but slots ("{notice_text}") would match anything


@dataclass(frozen=True)
class ResponseBook:
    patterns: tuple[tuple[str, re.Pattern[str]], ...]  # most specific first

    @classmethod
    def from_domain(cls, path: Path = DOMAIN) -> ResponseBook:
        responses = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("responses")
        found: list[tuple[int, str, re.Pattern[str]]] = []
        for name, variants in (responses or {}).items():
            for variant in variants or ():
                text = str((variant or {}).get("text") or "")
                literal = _SLOT.sub("", text)
                if len(literal) < _MIN_LITERAL:
                    continue
                parts = [re.escape(p) for p in _SLOT.split(text)]
                found.append((len(literal), str(name),
                              re.compile("(?s)" + "(.+?)".join(parts) + r"\Z")))
        found.sort(key=lambda f: -f[0])
        return cls(tuple((name, pattern) for _, name, pattern in found))

    def name(self, text: str) -> str | None:
        said = text.removesuffix(CUT_OFF_SUFFIX).strip()
        return next((name for name, pattern in self.patterns if pattern.match(said)), None)


@lru_cache(maxsize=1)
def default_book() -> ResponseBook:
    return ResponseBook.from_domain()


def _ms(at: datetime | None, origin: datetime) -> int | None:
    return None if at is None else int((at - origin).total_seconds() * 1000)


def call_view(session: Session, call_id: str, book: ResponseBook | None = None) -> CallView:
    """The view of a stored call (LookupError if there is none)."""
    call = session.get(Call, call_id)
    if call is None:
        raise LookupError(f"no call {call_id}")
    book = book or default_book()
    campaign = session.get(Campaign, call.campaign_id)
    assert campaign is not None  # foreign key
    defn = definition_or_none(campaign)
    origin = call.started_at
    rows = session.scalars(select(TranscriptTurn).where(TranscriptTurn.call_id == call_id)
                           .order_by(TranscriptTurn.seq)).all()
    turns = tuple(Turn(
        seq=r.seq, speaker=r.speaker, text=r.text, start_ms=_ms(r.started_at, origin) or 0,
        end_ms=_ms(r.ended_at, origin), response=book.name(r.text) if r.speaker == "bot"
        else None, intent=r.intent, input_mode=r.input_mode, asr_confidence=r.asr_confidence,
        asr_snapped=r.asr_snapped, unheard_disclosures=tuple(r.unheard_disclosures or ()))
        for r in rows)
    by_seq = {t.seq: t for t in turns}
    # The ledger entry says how sure the recogniser was; whether it snapped the words is on
    # the consent's transcript turn.
    consents = tuple(ConsentMark(
        start_ms=by_seq[c.turn_seq].start_ms if c.turn_seq in by_seq
        else c.audio_start_ms or 0, input_mode=c.input_mode, asr_confidence=c.asr_confidence,
        disclosures=tuple(c.disclosures or ()),
        asr_snapped=by_seq[c.turn_seq].asr_snapped if c.turn_seq in by_seq else None)
        for c in session.scalars(select(Consent).where(Consent.call_id == call_id,
                                                       Consent.kind == "consent")))
    acted = {"do_not_call" if kind == "do_not_call" else "complaint"
             for kind in session.scalars(select(DncEntry.kind)
                                         .where(DncEntry.call_id == call_id))}
    if session.scalar(select(Escalation.id).where(Escalation.call_id == call_id,
                                                  Escalation.reason == "complaint")):
        acted.add("complaint")
    required: frozenset[str] = frozenset()
    if defn is not None and defn.type in ("marketing", "second_confirmation"):
        required = Script(defn.type, has_trial=defn.has_trial).required_disclosures
    return CallView(
        call_id=call.id, started_at=call.started_at, turns=turns, consents=consents,
        outcome=call.outcome, required_disclosures=required,
        min_asr_confidence=defn.consent.min_asr_confidence if defn else 0.75,
        definition=defn, acted_on=frozenset(acted), verified=call.verified,
        dispositions=tuple(session.scalars(select(Disposition.disposition)
                                           .where(Disposition.call_id == call_id)
                                           .order_by(Disposition.id))))
