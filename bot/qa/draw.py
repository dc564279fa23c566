"""The QA draw itself, pure: which calls of a population a sample takes, and why.

Nothing here reads the database or the clock, so an auditor (or a test) can draw a sample
again from what the sample records (:mod:`bot.qa.sampling` stores it):

- **seed**: ``sha256("waihu-qa-sample/v1" | campaign id | kind | period | rule | nonce)``,
  the fields joined by ``\\n``, the rule as canonical JSON.  The *nonce* is 16 random bytes
  drawn once, when the period is over and the sample is first drawn, and stored with it:
  nobody can tell beforehand which call will be drawn (an agent who knows a call's id
  cannot), and drawing again returns the stored sample, so the draw cannot be repeated
  until it suits someone.
- **rank** of a call: ``sha256(seed | ":" | call id)`` in hex; lower ranks are drawn first.
  It depends on no ordering of the population and on no random-number library, so any
  language re-derives it.
- **random** picks: the ``ceil(rate × population)`` lowest-ranked eligible calls (exact
  decimal arithmetic on the rate as written, so 10 % of 200 is 20).
- **always:<kind>**: every eligible call of an always-included kind not drawn yet, in rank
  order (the reason is the first of the rule's kinds the call has).
- **min_per_agent**: for each agent (by id), while they have fewer drawn calls than the
  minimum, their lowest-ranked call not drawn yet.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

ALGORITHM = "waihu-qa-sample/v1"
ALWAYS_KINDS = ("consent", "complaint", "escalated", "do_not_call")


@dataclass(frozen=True)
class Candidate:
    """A valid call of the period: its id, the kinds it is (``consent``, ``complaint``,
    ``escalated``, ``do_not_call``) and the agents who took it."""

    call_id: str
    kinds: frozenset[str] = frozenset()
    agents: tuple[int, ...] = ()


@dataclass(frozen=True)
class Rule:
    """How a sample is drawn: the random rate, the always-included kinds and the minimum
    per agent (a weekly draw has neither), and what counted as a valid call (recorded so
    that the population can be found again)."""

    rate: float
    always_include: tuple[str, ...] = ()
    min_per_agent: int = 0
    valid_call: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"algorithm": ALGORITHM, "rate": self.rate,
                "always_include": list(self.always_include),
                "min_per_agent": self.min_per_agent, "valid_call": self.valid_call}

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Rule:
        if body.get("algorithm") != ALGORITHM:
            raise ValueError(f"unknown QA sampling algorithm {body.get('algorithm')!r}")
        return cls(float(body["rate"]), tuple(body.get("always_include") or ()),
                   int(body.get("min_per_agent") or 0), dict(body.get("valid_call") or {}))


@dataclass(frozen=True)
class Pick:
    call_id: str
    reason: str  # random | always:<kind> | min_per_agent


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def derive_seed(campaign_id: int, kind: str, period_start: date, rule: Rule,
                nonce: str) -> str:
    """The seed of one sample, from what the sample records (see the module's doc)."""
    text = "\n".join((ALGORITHM, str(campaign_id), kind, period_start.isoformat(),
                      canonical(rule.as_json()), nonce))
    return hashlib.sha256(text.encode()).hexdigest()


def rank(seed: str, call_id: str) -> str:
    return hashlib.sha256(f"{seed}:{call_id}".encode()).hexdigest()


def random_count(rate: float, population: int) -> int:
    """``ceil(rate × population)``, on the rate as written (no binary rounding)."""
    return math.ceil(Decimal(str(rate)) * population)


def population_digest(call_ids: Iterable[str]) -> str:
    """sha256 of the sorted call ids, one a line: tells whether the population an auditor
    finds is the one drawn from."""
    return hashlib.sha256("\n".join(sorted(call_ids)).encode()).hexdigest()


def draw(eligible: Sequence[Candidate], rule: Rule, seed: str, *,
         population_size: int | None = None) -> list[Pick]:
    """The sample of *eligible* by *rule* and *seed*, in draw order.  The random count is
    taken of *population_size* (default: the eligible calls), so a weekly draw takes its
    rate of the whole week while drawing only among the calls not drawn on a day."""
    ordered = sorted(eligible, key=lambda c: rank(seed, c.call_id))
    size = len(eligible) if population_size is None else population_size
    picks = [Pick(c.call_id, "random")
             for c in ordered[:min(random_count(rule.rate, size), len(ordered))]]
    drawn = {p.call_id for p in picks}
    for candidate in ordered:
        kind = next((k for k in rule.always_include if k in candidate.kinds), None)
        if kind is not None and candidate.call_id not in drawn:
            picks.append(Pick(candidate.call_id, f"always:{kind}"))
            drawn.add(candidate.call_id)
    if rule.min_per_agent > 0:
        agents = sorted({a for c in ordered for a in c.agents})
        for agent in agents:
            theirs = [c for c in ordered if agent in c.agents]
            short = rule.min_per_agent - sum(c.call_id in drawn for c in theirs)
            for candidate in (c for c in theirs if c.call_id not in drawn):
                if short <= 0:
                    break
                picks.append(Pick(candidate.call_id, "min_per_agent"))
                drawn.add(candidate.call_id)
                short -= 1
    return picks
