"""The figures, from what the bench committed (wall-clock milliseconds taken as each unit of
work's commit returned) and what each agent's page noted (probe.js: first time in the DOM,
and the start of the next frame, on the same machine's wall clock)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from bench.voicebench.stats import dist

# What one page noted: {"offers": {offer id: times}, "turns": {"<call>#<seq>": times},
# "offerMessages": {call id: ms}, "turnMessages": {"<call>#<seq>": ms}}, times being
# {"dom": ms, "frame": ms or None}; the messages' times are when the WebSocket brought them.
PageNotes = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Offered:
    """An offer the gateway committed: to whom, and when the commit returned."""

    offer_id: int
    agent_id: int
    call_id: str
    committed_ms: float


@dataclass(frozen=True)
class Stored:
    """A turn the transcript writer committed while the call was in *agent_id*'s hand."""

    call_id: str
    seq: int
    agent_id: int
    committed_ms: float

    @property
    def key(self) -> str:
        return f"{self.call_id}#{self.seq}"


@dataclass
class Lags:
    dom: list[float] = field(default_factory=list)  # commit -> in the page's DOM
    frame: list[float] = field(default_factory=list)  # commit -> the next frame began
    message: list[float] = field(default_factory=list)  # commit -> its WebSocket message
    missing: int = 0  # committed, never shown on the owner's page

    def add(self, committed_ms: float, times: dict[str, float | None] | None,
            message_ms: float | None = None) -> None:
        if message_ms is not None:
            self.message.append(float(message_ms) - committed_ms)
        if times is None or times.get("dom") is None:
            self.missing += 1
            return
        self.dom.append(float(times["dom"] or 0) - committed_ms)
        if times.get("frame") is not None:
            self.frame.append(float(times["frame"] or 0) - committed_ms)

    def summary(self) -> dict[str, Any]:
        shown = dist(self.dom)
        return {"p50": shown["p50"], "p95": shown["p95"], "n": shown["n"],
                "max": shown["max"], "missing": self.missing,
                "to_next_frame": dist(self.frame), "to_message": dist(self.message)}


def offer_lags(offers: list[Offered], notes: dict[int, PageNotes]) -> Lags:
    """Commit of each offer -> its pop in the chosen agent's page."""
    lags = Lags()
    for offer in offers:
        page = notes.get(offer.agent_id, {})
        lags.add(offer.committed_ms, page.get("offers", {}).get(str(offer.offer_id)),
                 page.get("offerMessages", {}).get(offer.call_id))
    return lags


def turn_lags(turns: list[Stored], notes: dict[int, PageNotes]) -> Lags:
    """Commit of each turn -> its text on the desk of the agent holding the call."""
    lags = Lags()
    for turn in turns:
        page = notes.get(turn.agent_id, {})
        lags.add(turn.committed_ms, page.get("turns", {}).get(turn.key),
                 page.get("turnMessages", {}).get(turn.key))
    return lags


def shown_elsewhere(offers: list[Offered], notes: dict[int, PageNotes]) -> int:
    """Offers or turns of a call that appeared on another agent's page, or reached it over
    its WebSocket (must be 0)."""
    owner = {offer.call_id: offer.agent_id for offer in offers}
    by_id = {str(offer.offer_id): offer.agent_id for offer in offers}
    wrong = 0
    for agent_id, page in notes.items():
        wrong += sum(by_id.get(key, agent_id) != agent_id for key in page.get("offers", {}))
        wrong += sum(owner.get(key.split("#")[0], agent_id) != agent_id
                     for kind in ("turns", "turnMessages") for key in page.get(kind, {}))
    return wrong


def clock_offset(samples: list[tuple[float, float, float]]) -> dict[str, Any]:
    """(bench before, page clock, bench after) readings, ms: how far the pages' clock is from
    the bench's (median of page - midpoint; 0 means the lags need no correction) and the
    largest round trip bounding each reading."""
    if not samples:
        return {"n": 0}
    offsets = [page - (before + after) / 2 for before, page, after in samples]
    return {"n": len(samples), "page_minus_bench_ms_median": round(statistics.median(offsets), 2),
            "page_minus_bench_ms_max_abs": round(max(abs(o) for o in offsets), 2),
            "round_trip_ms_max": round(max(after - before for before, _, after in samples), 2)}
