"""The SIP stack of one gateway process, on baresip-python 0.5.2a3 (bindings to the
baresip/libre SIP stack).

One `BaresipTelephony` per process owns the single `baresip.Runtime` (the library allows one
per process), one `UserAgent` per (caller id, digest username, password), and the
`AudioClock` thread that moves every call's audio; it dials and hands out a `BaresipLeg` per
call.  A `DialRequest` that carries credentials (a campaign trunk's `username` and
`password_env`) is dialled with them; one without uses the stack's own, if any.  The
password reaches the SIP stack and nothing else: it is never logged.  The measured behaviour and
traps behind the choices here are in docs/research/baresip-python.md; in short:

- `max_concurrent_calls` defaults to 2 in the library: we pass ours (None = unlimited);
- codecs are offered PCMA first (the library default is PCMU first);
- `net_interface` is pinned to the listen host (loopback needs it) and `sip_listen` is set;
- a small fixed jitter buffer (20-60 ms) halves the audio round trip against the default.

Stack events are taken from one runtime-wide listener and routed to legs by call handle, so
events that arrive between the INVITE going out and the leg existing (a fast 180 or 404 on
loopback) are buffered, not lost, and replayed into baresip-python's own `Call` too (it
subscribes only when `dial()` returns; without the replay a peer answering within a few ms
left it OUTGOING and `transfer()` refused).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict

from baresip.config import Account, Config
from baresip.events import Event, StackEvent
from baresip.runtime import Runtime
from baresip.ua import UserAgent

from bot.privacy import mask_phone
from voice.telephony.audio_clock import AudioClock
from voice.telephony.baresip_leg import BaresipLeg, mask_uri
from voice.telephony.base import DialRequest, Telephony, free_port

log = logging.getLogger("waihu.sip")

_ORPHAN_HANDLES = 64


class BaresipTelephony(Telephony):
    """The SIP stack of one gateway process.

    listen: (host, port) to bind SIP (UDP and TCP) and RTP on; port 0 picks a free one.
    username / password: digest credentials for requests that bring none of their own
        (401/407 are answered by the stack).
    outbound_proxy: host[:port] or sip: URI every INVITE goes through (the trunk's SBC).
    max_calls: concurrent calls (None = unlimited; the library's own default is 2).
    rtp_timeout: seconds without RTP after which a call ends as `rtp_timeout` (0 = never).
    domain: From domain (default: the proxy's host, else the listen address).
    default_caller_id: From user when a DialRequest has no caller_id (else the username).
    jitter_ms: the fixed jitter buffer's (min, max).
    """

    def __init__(
        self,
        listen: tuple[str, int] = ("127.0.0.1", 0),
        *,
        username: str | None = None,
        password: str | None = None,
        outbound_proxy: str | None = None,
        max_calls: int | None = None,
        rtp_timeout: int = 10,
        domain: str | None = None,
        default_caller_id: str | None = None,
        jitter_ms: tuple[int, int] = (20, 60),
    ) -> None:
        self.listen = listen
        self.username = username
        self.password = password or ""
        self.outbound_proxy = outbound_proxy
        self.max_calls = max_calls
        self.rtp_timeout = rtp_timeout
        self._domain = domain
        self.default_caller_id = default_caller_id or username or "waihu"
        self.jitter_ms = jitter_ms
        self.runtime: Runtime | None = None
        # (caller id, username, password) -> its user agent; the password only as a key.
        self._agents: dict[tuple[str, str | None, str], UserAgent] = {}
        self._agent_lock = asyncio.Lock()
        self._legs: dict[int, BaresipLeg] = {}
        self._orphans: OrderedDict[int, list[StackEvent]] = OrderedDict()
        self.clock: AudioClock | None = None

    @property
    def domain(self) -> str:
        if self._domain:
            return self._domain
        if self.outbound_proxy:
            return re.sub(r"^sips?:", "", self.outbound_proxy).split(";")[0]
        return f"{self.listen[0]}:{self.listen[1]}"

    async def start(self) -> None:
        """Start the runtime on the running loop (its callbacks will run there)."""
        if self.runtime is not None:
            raise RuntimeError("BaresipTelephony already started")
        host, port = self.listen
        if port == 0:
            port = free_port(host)
            self.listen = (host, port)
        lo, hi = self.jitter_ms
        runtime = Runtime()
        await runtime.start(Config(
            net_interface=host,
            max_concurrent_calls=self.max_calls,
            rtp_timeout=self.rtp_timeout,
            extra_config_text=(f"sip_listen {host}:{port}\n"
                               "audio_jitter_buffer_type fixed\n"
                               f"audio_jitter_buffer_ms {lo}-{hi}\n"),
        ))
        runtime.subscribe(self._route)
        self.runtime = runtime
        self.clock = AudioClock(asyncio.get_running_loop())
        self.clock.start()
        log.info("sip.started listen=%s:%d proxy=%s auth=%s", host, port, self.outbound_proxy,
                 bool(self.password))

    def credentials(self, request: DialRequest) -> tuple[str | None, str]:
        """(digest username, password) to answer a 401/407 for *request* with: the
        request's own when it names a username (its trunk's), else the stack's."""
        if request.username:
            return request.username, request.password or ""
        return self.username, self.password

    async def _agent(self, caller_id: str, username: str | None, password: str) -> UserAgent:
        key = (caller_id, username, password)
        async with self._agent_lock:
            agent = self._agents.get(key)
            if agent is None:
                assert self.runtime is not None
                auth_user = username if username and username != caller_id else None
                agent = await UserAgent.create(self.runtime, Account(
                    user=caller_id, domain=self.domain, password=password,
                    registrar=self.outbound_proxy, reg_interval=0,
                    audio_codecs=("PCMA", "PCMU"), auth_user=auth_user))
                self._agents[key] = agent
            return agent

    async def dial(self, request: DialRequest) -> BaresipLeg:
        if self.runtime is None:
            raise RuntimeError("BaresipTelephony.start() first")
        caller_id = request.caller_id or self.default_caller_id
        username, password = self.credentials(request)
        if request.username and not request.password:
            log.warning("sip.no_password call_id=%s user=%s: the trunk names a username but "
                        "no password reached the gateway (is its password_env set?)",
                        request.call_id, username)
        agent = await self._agent(caller_id, username, password)
        headers = {"X-Waihu-Call-Id": request.call_id, **request.headers}
        log.info("sip.dial call_id=%s to=%s from=%s auth=%s", request.call_id,
                 mask_uri(request.uri), mask_phone(caller_id),
                 f"digest:{username}" if password else "none")
        dialled_at = time.monotonic()
        call = await agent.dial(request.uri, headers=headers)
        assert self.clock is not None
        leg = BaresipLeg(request, call, dialled_at, clock=self.clock)
        self._legs[call.handle] = leg
        for event in self._orphans.pop(call.handle, []):
            # baresip-python 0.5.2a3 subscribes its Call to events only once dial() has
            # returned: a peer answering within milliseconds leaves the Call OUTGOING for
            # good, and transfer()/hold() then refuse.  Its own listener is idempotent and
            # filters by handle, so replaying the missed events keeps its state truthful.
            replay = getattr(call, "_on_stack_event", None)
            if replay is not None:
                replay(event)
            self._deliver(leg, event)
        return leg

    def _route(self, event: StackEvent) -> None:
        if not event.call:
            return
        leg = self._legs.get(event.call)
        if leg is not None:
            self._deliver(leg, event)
            return
        # The INVITE is out but dial() has not returned yet: keep the events for the leg.
        self._orphans.setdefault(event.call, []).append(event)
        while len(self._orphans) > _ORPHAN_HANDLES:
            self._orphans.popitem(last=False)

    def _deliver(self, leg: BaresipLeg, event: StackEvent) -> None:
        leg._on_stack_event(event)
        if event.event is Event.CALL_CLOSED:
            self._legs.pop(event.call, None)

    @property
    def legs(self) -> list[BaresipLeg]:
        """The legs still up."""
        return list(self._legs.values())

    async def close(self) -> None:
        """Hang up every leg and stop the runtime."""
        runtime, self.runtime = self.runtime, None
        if runtime is None:
            return
        legs = list(self._legs.values())
        await asyncio.gather(*(leg.hangup() for leg in legs), return_exceptions=True)
        if self.clock is not None:  # before the runtime goes: no audio calls into it after
            await self.clock.stop()
            self.clock = None
        runtime.unsubscribe(self._route)
        await runtime.close()
        for leg in legs:
            leg._abandon("runtime closed")
        self._legs.clear()
        self._agents.clear()
        log.info("sip.stopped")
