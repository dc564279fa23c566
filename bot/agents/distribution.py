"""Who gets the next escalated call: the three strategies of a bank's outbound desk.

Pure functions of the team's state today (a list of :class:`AgentSnapshot`), so a choice can
be replayed from the snapshot stored with the offer (:func:`replay`) and always comes out
the same: there is no randomness, and every tie is broken by a stated rule, the last one
being the agent's id.

- ``equal_share``: spread calls evenly: the fewest offers today, then the longest idle.
- ``equal_results``: spread results evenly: the agent furthest below the team's outcome
  rate today (successes ÷ calls taken, pooled over the team) gets the next call; ties go to
  the fewest calls taken, then the longest idle.
- ``weight``: offers in proportion to each agent's weight: the agent with the fewest offers
  per unit of weight, counting the one being made ((offers + 1) ÷ weight), gets it; ties go
  to the heavier weight, then the longest idle.  Over a day with everyone available this
  deals calls exactly in proportion (weights 1, 2, 3 get 10, 20, 30 of 60) and in a smooth
  order; an agent who was away does not catch up in a burst beyond their share of the
  calls still to come (their count only lags).

Only available agents who serve the campaign are candidates; agents who already declined
this escalation are left out.  The *team* (the means in the reasons) is every agent in the
snapshot who serves the campaign.  Counts are the agent's whole day, all campaigns: it is the
person's load that is shared.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import Any

from bot.store.vocab import DISTRIBUTION_STRATEGIES, require

SNAPSHOT_VERSION = 1
# Dispositions that count as a good result for ``equal_results``.
SUCCESS_DISPOSITIONS = ("resolved", "sale")


@dataclass(frozen=True)
class AgentSnapshot:
    """One agent as the distribution sees them at the moment of the choice."""

    agent_id: int
    state: str
    offers_today: int = 0
    accepted_today: int = 0
    successes_today: int = 0  # calls taken today with a successful disposition
    idle_since: datetime | None = None  # when they last became available (available only)
    weight: int = 1
    campaigns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if min(self.offers_today, self.accepted_today, self.successes_today, self.weight) < 0:
            raise ValueError(f"agent {self.agent_id}: counts and weight cannot be negative")
        if self.successes_today > self.accepted_today:
            raise ValueError(f"agent {self.agent_id}: more successes than calls taken")
        if self.accepted_today > self.offers_today:
            raise ValueError(f"agent {self.agent_id}: more calls taken than offered")

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["idle_since"] = self.idle_since.isoformat() if self.idle_since else None
        body["campaigns"] = list(self.campaigns)
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> AgentSnapshot:
        idle = body.get("idle_since")
        return cls(agent_id=int(body["agent_id"]), state=str(body["state"]),
                   offers_today=int(body["offers_today"]),
                   accepted_today=int(body["accepted_today"]),
                   successes_today=int(body["successes_today"]),
                   idle_since=datetime.fromisoformat(idle) if idle else None,
                   weight=int(body["weight"]), campaigns=tuple(body["campaigns"]))


@dataclass(frozen=True)
class Decision:
    """The agent chosen (None: nobody can take the call now) and why, in words a supervisor
    reads; ``snapshot`` holds every input, to be stored with the offer."""

    strategy: str
    campaign: str
    at: datetime
    agent_id: int | None
    reason: str
    snapshot: dict[str, Any] = field(repr=False)


def choose(strategy: str, campaign: str, agents: Sequence[AgentSnapshot], at: datetime,
           exclude: Collection[int] = ()) -> Decision:
    """The agent who gets the next offer of an escalation of *campaign* at *at*.
    *exclude*: agents who already declined (or missed) this escalation."""
    require(strategy, DISTRIBUTION_STRATEGIES, "distribution strategy")
    snapshot = {"version": SNAPSHOT_VERSION, "strategy": strategy, "campaign": campaign,
                "at": at.isoformat(), "exclude": sorted(exclude),
                "agents": [a.to_json() for a in sorted(agents, key=lambda a: a.agent_id)]}
    team = [a for a in agents if campaign in a.campaigns]
    candidates = [a for a in team if a.state == "available" and a.agent_id not in exclude]
    if strategy == "weight":
        candidates = [a for a in candidates if a.weight > 0]
    if not candidates:
        return Decision(strategy, campaign, at, None, _nobody(campaign, team, exclude, strategy),
                        snapshot)
    chooser = _STRATEGIES[strategy]
    agent, reason = chooser(team, candidates, at)
    return Decision(strategy, campaign, at, agent.agent_id, reason, snapshot)


def replay(snapshot: dict[str, Any]) -> Decision:
    """The decision a stored snapshot leads to (the same one, whenever it is replayed)."""
    if snapshot.get("version") != SNAPSHOT_VERSION:
        raise ValueError(f"unknown distribution snapshot version {snapshot.get('version')!r}")
    return choose(str(snapshot["strategy"]), str(snapshot["campaign"]),
                  [AgentSnapshot.from_json(a) for a in snapshot["agents"]],
                  datetime.fromisoformat(str(snapshot["at"])),
                  exclude=[int(x) for x in snapshot["exclude"]])


# --- the strategies -------------------------------------------------------------------------

Chooser = Callable[[Sequence[AgentSnapshot], Sequence[AgentSnapshot], datetime],
                   tuple[AgentSnapshot, str]]


def _idle_key(agent: AgentSnapshot, at: datetime) -> tuple[datetime, int]:
    """Longest idle first (an unknown idle start counts as idle from *at*), then the id."""
    return (agent.idle_since or at, agent.agent_id)


def _equal_share(team: Sequence[AgentSnapshot], candidates: Sequence[AgentSnapshot],
                 at: datetime) -> tuple[AgentSnapshot, str]:
    best = min(candidates, key=lambda a: (a.offers_today, *_idle_key(a, at)))
    tied = [a for a in candidates if a.offers_today == best.offers_today]
    mean = _mean(a.offers_today for a in team)
    reason = (f"fewest offers today: {best.offers_today} (team mean {mean} over "
              f"{_agents(len(team))})")
    return best, reason + _tie_note(tied, best, at)


def _rate(agent: AgentSnapshot) -> Fraction:
    return Fraction(agent.successes_today, agent.accepted_today or 1)


def _equal_results(team: Sequence[AgentSnapshot], candidates: Sequence[AgentSnapshot],
                   at: datetime) -> tuple[AgentSnapshot, str]:
    successes = sum(a.successes_today for a in team)
    taken = sum(a.accepted_today for a in team)
    team_rate = Fraction(successes, taken or 1)
    best = min(candidates,
               key=lambda a: (_rate(a) - team_rate, a.accepted_today, *_idle_key(a, at)))
    gap = _rate(best) - team_rate
    tied = [a for a in candidates if _rate(a) - team_rate == gap
            and a.accepted_today == best.accepted_today]
    mine = (f"{best.successes_today} successful of {best.accepted_today} calls taken today "
            f"({_pct(_rate(best))})")
    theirs = f"the team's {_pct(team_rate)} ({successes} of {taken})"
    if taken == 0:
        reason = f"no calls taken in the team today yet: {_agents(len(team))}, all at 0"
    elif gap < 0:
        reason = f"furthest below the team's outcome rate today: {mine} against {theirs}"
    else:
        reason = f"nobody available is below the team's outcome rate today: closest, {mine}"
        reason += f" against {theirs}"
    return best, reason + _tie_note(tied, best, at)


def _weight(team: Sequence[AgentSnapshot], candidates: Sequence[AgentSnapshot],
            at: datetime) -> tuple[AgentSnapshot, str]:
    def due(agent: AgentSnapshot) -> Fraction:
        return Fraction(agent.offers_today + 1, agent.weight)

    best = min(candidates, key=lambda a: (due(a), -a.weight, *_idle_key(a, at)))
    weights = sum(a.weight for a in team)
    offers = sum(a.offers_today for a in team)
    tied = [a for a in candidates if due(a) == due(best) and a.weight == best.weight]
    reason = (f"weight {best.weight} of the team's {weights} "
              f"(share {_pct(Fraction(best.weight, weights or 1))}): {best.offers_today} of the "
              f"team's {offers} offers today, the fewest per unit of weight counting this one "
              f"(({best.offers_today} + 1) / {best.weight} = {float(due(best)):.2f})")
    return best, reason + _tie_note(tied, best, at)


_STRATEGIES: dict[str, Chooser] = {"equal_share": _equal_share,
                                   "equal_results": _equal_results, "weight": _weight}


# --- the words ------------------------------------------------------------------------------


def _mean(values: Iterable[int]) -> str:
    listed = list(values)
    return f"{sum(listed) / len(listed):.1f}" if listed else "0"


def _pct(value: Fraction) -> str:
    return f"{float(value) * 100:.0f}%"


def _agents(n: int) -> str:
    return f"{n} agent" + ("" if n == 1 else "s")


def _idle_for(agent: AgentSnapshot, at: datetime) -> str:
    if agent.idle_since is None:
        return "idle time unknown"
    seconds = max(0, int((at - agent.idle_since).total_seconds()))
    minutes, seconds = divmod(seconds, 60)
    return f"idle {minutes} min {seconds} s" if minutes else f"idle {seconds} s"


def _tie_note(tied: Sequence[AgentSnapshot], best: AgentSnapshot, at: datetime) -> str:
    if len(tied) < 2:
        return ""
    others = len(tied) - 1
    same_idle = [a for a in tied if (a.idle_since or at) == (best.idle_since or at)]
    note = (f"; tied with {others} other{'s' if others > 1 else ''}, idle longest "
            f"({_idle_for(best, at)})")
    if len(same_idle) > 1:
        note += f"; as long as {len(same_idle) - 1} other(s): lowest agent id"
    return note


def _nobody(campaign: str, team: Sequence[AgentSnapshot], exclude: Collection[int],
            strategy: str) -> str:
    if not team:
        return f"no agent serves campaign {campaign}"
    states: dict[str, int] = {}
    for agent in team:
        key = ("declined or missed this call" if agent.agent_id in exclude
               else "weight 0" if strategy == "weight" and agent.state == "available"
               else agent.state)
        states[key] = states.get(key, 0) + 1
    listed = ", ".join(f"{n} {what}" for what, n in sorted(states.items()))
    return f"no available agent for campaign {campaign}: {listed}"
