"""Whether the services a call needs are up: Rasa, the action server, the database.

A gateway takes no new call while one of them is down (a call that cannot go on fails, and
failing customers on purpose is no way to find out that Rasa is back).  `ServiceHealth`
runs one probe per service on an interval, each with a short timeout, logs once when a
service goes down and once when it is back (with the service's name), and keeps the state
for whoever asks (`snapshot()`, for the console).  Calls in progress are not touched: they
go on as far as they can, and the session ends one that cannot with the failure line.

A probe is an awaitable that returns when its service answers and raises otherwise.  At
most one probe per service is under way at a time: a service that hangs (a stopped
process, a database that does not answer) is reported down at the timeout, and the next
check waits on the same probe instead of piling up threads and sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from sqlalchemy import text

from bot.channel import RasaChannel
from bot.store import Database

log = logging.getLogger("waihu.health")

Probe = Callable[[], Awaitable[None]]

RASA, ACTIONS, DATABASE = "rasa", "actions", "database"


@dataclass(frozen=True)
class HealthConfig:
    interval_s: float = 5.0
    timeout_s: float = 2.0
    # The action server's base URL (its open `/health`); None: not watched.
    actions_url: str | None = None


@dataclass
class ServiceState:
    up: bool = True
    error: str | None = None
    since: float | None = None  # monotonic time of the last change
    checked: bool = False


class ServiceHealth:
    """The last seen state of each watched service; `ok` when all of them answered."""

    def __init__(self, probes: Mapping[str, Probe], config: HealthConfig | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.probes = dict(probes)
        self.config = config or HealthConfig()
        self.clock = clock
        self.states = {name: ServiceState() for name in self.probes}
        self._running: dict[str, asyncio.Future[None]] = {}

    @property
    def ok(self) -> bool:
        return all(state.up for state in self.states.values())

    @property
    def down(self) -> list[str]:
        return [name for name, state in self.states.items() if not state.up]

    async def check(self) -> bool:
        """Probe every service once (at the same time); True when all answered in time."""
        await asyncio.gather(*(self._check(name) for name in self.probes))
        return self.ok

    async def watch(self, stop: asyncio.Event) -> None:
        """Check every `interval_s` until *stop* is set; never raises."""
        while not stop.is_set():
            try:
                await self.check()
            except Exception:  # a probe's bug must not end the watch
                log.exception("health.check_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.interval_s)

    async def _check(self, name: str) -> None:
        probe = self._running.get(name)
        if probe is None or probe.done():
            probe = self._running[name] = asyncio.ensure_future(self.probes[name]())
        done, _ = await asyncio.wait({probe}, timeout=self.config.timeout_s)
        if not done:
            self._set(name, f"no answer within {self.config.timeout_s:g} s")
        elif probe.cancelled():
            self._set(name, "probe cancelled")
        elif (error := probe.exception()) is not None:
            self._set(name, f"{type(error).__name__}: {error}"[:300])
        else:
            self._set(name, None)

    def _set(self, name: str, error: str | None) -> None:
        state = self.states[name]
        was_up, state.checked = state.up, True
        state.up, state.error = error is None, error
        if was_up == state.up:
            return
        now = self.clock()
        gone_s = now - state.since if state.since is not None else None
        state.since = now
        if state.up:
            log.warning("health.up service=%s down_s=%.1f", name, gone_s or 0.0)
        else:
            log.error("health.down service=%s error=%s", name, error)

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready: `ok`, and per service `up`, `error`, seconds since it changed."""
        now = self.clock()
        return {"ok": self.ok, "services": {
            name: {"up": s.up, "error": s.error, "checked": s.checked,
                   "for_s": round(now - s.since, 1) if s.since is not None else None}
            for name, s in self.states.items()}}


# --- probes ---------------------------------------------------------------------------


def http_probe(session: aiohttp.ClientSession, url: str,
               params: Mapping[str, str] | None = None) -> Probe:
    """GET *url*: up when it answers 2xx.  The request's own limit only bounds a probe
    left running after `timeout_s` reported the service down."""
    limit = aiohttp.ClientTimeout(total=30)

    async def probe() -> None:
        async with session.get(url, params=params, timeout=limit) as response:
            response.raise_for_status()
    return probe


def rasa_probe(channel: RasaChannel) -> Probe:
    """Rasa's `/status` with the channel's auth token: the server is up and has its model
    (it needs `--enable-api`, which the gateway's Rasa always runs with)."""
    base = channel.url.rsplit("/webhooks/", 1)[0]
    return http_probe(channel.session, f"{base}/status", channel.params)


def actions_probe(session: aiohttp.ClientSession, actions_url: str) -> Probe:
    """The action server's `/health` (open without the shared secret)."""
    return http_probe(session, f"{actions_url.rstrip('/')}/health")


def database_probe(db: Database) -> Probe:
    """A trivial query through the gateway's own engine (in a thread: the engine blocks)."""
    def select_one() -> None:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    async def probe() -> None:
        await asyncio.to_thread(select_one)
    return probe


def gateway_probes(db: Database, dialogue: object, actions_url: str | None
                   ) -> dict[str, Probe]:
    """What a gateway watches: its database; Rasa when it talks to Rasa over REST; the
    action server when its URL is known."""
    probes: dict[str, Probe] = {DATABASE: database_probe(db)}
    if isinstance(dialogue, RasaChannel):
        probes[RASA] = rasa_probe(dialogue)
        if actions_url:
            probes[ACTIONS] = actions_probe(dialogue.session, actions_url)
    return probes
