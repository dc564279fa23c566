"""The telephony leg on baresip-python 0.5.2a3 (bindings to the baresip/libre SIP stack).

One `BaresipTelephony` per process owns the single `baresip.Runtime` (the library allows one
per process) and hands out a `BaresipLeg` per dial.  The measured behaviour and traps behind
the choices here are in docs/research/baresip-python.md; in short:

- `max_concurrent_calls` defaults to 2 in the library: we pass ours (None = unlimited);
- codecs are offered PCMA first (the library default is PCMU first);
- `net_interface` is pinned to the listen host (loopback needs it) and `sip_listen` is set;
- a small fixed jitter buffer (20-60 ms) halves the audio round trip against the default;
- `AudioNotActive` / `AudioRestarted` are normal (before media, at renegotiation, at the end
  of early media) and are caught in the pump; `StaleHandleError` means "already gone";
- every stack callback runs on the loop thread that started the runtime; ours only update
  state and put events in queues.

Stack events are taken from one runtime-wide listener and routed to legs by call handle, so
events that arrive between the INVITE going out and the leg existing (a fast 180 or 404 on
loopback) are buffered, not lost.

Timeline: frame timestamps count ms since the answer.  Early media before the answer goes to
`rx` stamped from the start of the early media (and is kept for `DialOutcome.early_media`);
the timeline restarts at 0 on the answer.  Event `at_ms` counts from the dial until the
answer and from the answer afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import OrderedDict

from baresip.call import Call
from baresip.config import Account, Config
from baresip.errors import (
    AudioNotActive,
    AudioRestarted,
    BaresipError,
    CallFailed,
    StaleHandleError,
    TransferFailed,
)
from baresip.events import Event, StackEvent
from baresip.runtime import Runtime
from baresip.ua import UserAgent

from bot.privacy import mask_phone
from voice.audio.frames import FRAME_BYTES, FRAME_MS, SILENCE_FRAME, Frame
from voice.telephony.base import (
    Answered,
    DialOutcome,
    DialRequest,
    Dtmf,
    EarlyMedia,
    Hangup,
    HangupBy,
    Leg,
    Ringing,
    Telephony,
    classify_failure,
    free_port,
)

log = logging.getLogger("waihu.sip")

TICK_S = FRAME_MS / 1000
LOOKAHEAD_FRAMES = 3  # keep ~60 ms queued in the stack: enough for loop hiccups, small barge-in
RX_READ_BYTES = 16 * FRAME_BYTES  # take everything that arrived (bursts after a stall)
RESYNC_MS = 200  # a direction lagging the clock by more than this jumps forward (gap = silence)
TRANSFER_TIMEOUT_S = 15.0
HANGUP_CONFIRM_S = 2.0
_ORPHAN_HANDLES = 64
_AUDIO_GONE = (AudioNotActive, AudioRestarted)
_URI_USER = re.compile(r"^(sips?:)([^@;>]+)@")


def mask_uri(uri: str) -> str:
    """`sip:13812345678@trunk` -> `sip:138****5678@trunk` (the user part is a phone number)."""
    return _URI_USER.sub(lambda m: m.group(1) + mask_phone(m.group(2)) + "@", uri, count=1)


class BaresipLeg(Leg):
    """One outbound call on the baresip stack, with its 20 ms audio pump."""

    def __init__(self, request: DialRequest, call: Call, dialled_at: float) -> None:
        super().__init__(request.call_id)
        self.call = call
        self.uri = request.uri
        self._masked_uri = mask_uri(request.uri)
        self._dialled_at = dialled_at
        self._answered_at: float | None = None
        self._early_at: float | None = None  # first early-media frame
        self._outcome: asyncio.Future[DialOutcome] = asyncio.get_running_loop().create_future()
        self._local_end: HangupBy | None = None  # set before we end the call ourselves
        self._ringing = self._progress = False
        self._dtmf_pressed: tuple[str, float] | None = None
        self._play = bytearray()
        self._early = bytearray()
        self._rx_pending = bytearray()
        # Next 20 ms slot per direction on the current timeline; None until the first frame,
        # which is placed where it really is: received now, or leaving after what is queued.
        self._rx_index: int | None = None
        self._tx_index: int | None = None
        self._audio_until = 0.0  # monotonic time the last queued bot audio leaves the stack
        self._pump = asyncio.create_task(self._run(), name=f"sip-pump-{request.call_id}")

    # -- clocks ------------------------------------------------------------------------
    def now_ms(self) -> float:
        """ms since the answer (since the dial before it)."""
        origin = self._answered_at if self._answered_at is not None else self._dialled_at
        return (time.monotonic() - origin) * 1000

    def _timeline_ms(self) -> float:
        """ms on the frame timeline: since the answer, or since early media began."""
        origin = self._answered_at or self._early_at or time.monotonic()
        return (time.monotonic() - origin) * 1000

    # -- stack events (loop thread, routed by BaresipTelephony) ------------------------
    def _on_stack_event(self, event: StackEvent) -> None:
        kind = event.event
        if kind is Event.CALL_RINGING and not self._ringing:
            self._ringing = True
            log.info("sip.ringing call_id=%s", self.call_id)
            self._emit(Ringing(self.now_ms()))
        elif kind is Event.CALL_PROGRESS and not self._progress:
            self._progress = True
            log.info("sip.early_media call_id=%s", self.call_id)
            self._emit(EarlyMedia(self.now_ms()))
        elif kind is Event.CALL_ESTABLISHED and self._answered_at is None:
            self._on_answered()
        elif kind is Event.CALL_DTMF_START and event.text:
            self._dtmf_pressed = (event.text, time.monotonic())
        elif kind is Event.CALL_DTMF_END and self._dtmf_pressed is not None:
            digit, pressed_at = self._dtmf_pressed
            self._dtmf_pressed = None
            held_ms = int((time.monotonic() - pressed_at) * 1000)
            log.info("sip.dtmf call_id=%s duration_ms=%d", self.call_id, held_ms)
            self._emit(Dtmf(digit, self.now_ms() - held_ms, held_ms))
        elif kind is Event.CALL_CLOSED:
            self._on_closed(event.text or "")

    def _on_answered(self) -> None:
        if self._outcome.done():  # we gave up (timeout) just before; our hang-up follows
            return
        self._answered_at = time.monotonic()
        setup_ms = (self._answered_at - self._dialled_at) * 1000
        self._rx_pending.clear()
        self._rx_index = self._tx_index = None
        log.info("sip.answered call_id=%s setup_ms=%.1f", self.call_id, setup_ms)
        self._outcome.set_result(DialOutcome("answered", 200, "OK", bytes(self._early), setup_ms))
        self._emit(Answered(setup_ms))

    def _on_closed(self, text: str) -> None:
        if self.closed.is_set():
            return
        if self._local_end is not None:
            by: HangupBy = self._local_end
        elif text == "Call transfered":  # the stack's spelling
            by = "transfer"
        elif "rtp" in text.lower():  # "rtp stream error": Config.rtp_timeout fired
            by = "rtp_timeout"
        else:
            by = "remote"
        if not self._outcome.done():
            failure = CallFailed.from_close_reason(text)  # CallBusy / CallDeclined / CallFailed
            if failure.status is not None:
                result = classify_failure(failure.status, failure.reason)
            else:  # no SIP status: our own cancel, or a transport failure
                result = classify_failure(None) if by == "local" else "failed"
            log.info("sip.failed call_id=%s result=%s status=%s reason=%r", self.call_id,
                     result, failure.status, failure.reason)
            self._outcome.set_result(DialOutcome(result, failure.status, failure.reason,
                                                 bytes(self._early)))
        else:
            log.info("sip.hangup call_id=%s by=%s reason=%r at_ms=%.0f", self.call_id, by,
                     text, self.now_ms())
        self._emit(Hangup(by, text, self.now_ms()))

    # -- the audio pump ----------------------------------------------------------------
    async def _run(self) -> None:
        deadline = time.monotonic()
        while not self.closed.is_set():
            try:
                self._tick()
            except _AUDIO_GONE:
                pass  # no media yet / streams replaced: the next read or write rebinds
            except Exception:  # a bug here must not leave a silent call up
                log.exception("sip.pump_error call_id=%s", self.call_id)
                self._local_end = "error"
                with contextlib.suppress(BaresipError):
                    await self.call.hangup()
                return
            deadline += TICK_S
            delay = deadline - time.monotonic()
            if delay < -RESYNC_MS / 1000:  # the loop stalled: skip ticks rather than burst
                deadline = time.monotonic()
            await asyncio.sleep(max(0.0, delay))

    def _tick(self) -> None:
        audio = self.call.audio
        pcm = audio.read(RX_READ_BYTES)
        if pcm:
            if self._answered_at is None:
                if self._early_at is None:
                    self._early_at = time.monotonic()
                self._early += pcm
            self._receive(pcm)
        if self._answered_at is not None:
            self._transmit()

    def _receive(self, pcm: bytes) -> None:
        self._rx_pending += pcm
        now_slot = int(self._timeline_ms() / FRAME_MS)
        ready = len(self._rx_pending) // FRAME_BYTES
        if self._rx_index is None or self._rx_index < now_slot - RESYNC_MS // FRAME_MS:
            self._rx_index = max(0, now_slot - ready + 1)  # first frame, or a long gap
        for _ in range(ready):
            chunk = bytes(self._rx_pending[:FRAME_BYTES])
            del self._rx_pending[:FRAME_BYTES]
            self._emit_frame("rx", Frame(chunk, self._rx_index * FRAME_MS))
            self._rx_index += 1

    def _transmit(self) -> None:
        audio = self.call.audio
        now_slot = int(self._timeline_ms() / FRAME_MS)
        buffered = audio.stats().tx_buffered
        if self._tx_index is None or self._tx_index < now_slot - RESYNC_MS // FRAME_MS:
            # first write, or the stack sent silence for a while without us
            self._tx_index = now_slot + buffered // FRAME_BYTES
        while buffered < LOOKAHEAD_FRAMES * FRAME_BYTES and \
                self._tx_index <= now_slot + LOOKAHEAD_FRAMES:
            voiced = bool(self._play)
            pcm = self._take_play() if voiced else SILENCE_FRAME
            if audio.write(pcm) < len(pcm):
                return  # stack buffer full after all; try again next tick
            frame = Frame(pcm, self._tx_index * FRAME_MS)
            self._tx_index += 1
            buffered += len(pcm)
            if voiced:
                assert self._answered_at is not None
                self._audio_until = self._answered_at + self._tx_index * TICK_S
            self._emit_frame("tx", frame)

    def _take_play(self) -> bytes:
        chunk = bytes(self._play[:FRAME_BYTES])
        del self._play[:FRAME_BYTES]
        return chunk.ljust(FRAME_BYTES, b"\0")

    # -- Leg ---------------------------------------------------------------------------
    async def wait_answer(self, timeout: float) -> DialOutcome:
        try:
            return await asyncio.wait_for(asyncio.shield(self._outcome), timeout)
        except TimeoutError:
            pass
        if not self._outcome.done():
            log.info("sip.failed call_id=%s result=no_answer reason='timeout %gs'",
                     self.call_id, timeout)
            self._outcome.set_result(DialOutcome(classify_failure(None), None, "timeout",
                                                 bytes(self._early)))
        await self.hangup()  # CANCEL
        return self._outcome.result()

    def play(self, pcm: bytes) -> None:
        if not self.closed.is_set():
            self._play += pcm

    def stop_playback(self) -> None:
        self._play.clear()
        self._audio_until = 0.0
        if self._answered_at is None:
            return
        try:
            self.call.audio.flush_tx()
        except _AUDIO_GONE:
            return
        # What was flushed never went out: rewrite those slots (with silence) so the tx
        # timeline and the recorder show what the far end really heard.  At most the frame
        # being encoded now still leaves.
        if self._tx_index is not None:
            self._tx_index = min(self._tx_index, int(self._timeline_ms() / FRAME_MS) + 1)

    @property
    def playing(self) -> bool:
        return bool(self._play) or time.monotonic() < self._audio_until

    async def send_dtmf(self, digits: str) -> None:
        log.info("sip.dtmf_send call_id=%s digits=%d", self.call_id, len(digits))
        with contextlib.suppress(StaleHandleError):  # already gone
            await self.call.send_dtmf(digits)

    async def transfer(self, uri: str) -> bool:
        if self.closed.is_set() or self._answered_at is None:
            return False
        masked = mask_uri(uri)
        log.info("sip.transfer call_id=%s to=%s", self.call_id, masked)
        self._local_end = "transfer"  # CALL_CLOSED may come before transfer() returns
        try:
            await self.call.transfer(uri, timeout=TRANSFER_TIMEOUT_S)
        except (TransferFailed, BaresipError) as exc:
            if not self.closed.is_set():
                self._local_end = None
            log.info("sip.transfer_failed call_id=%s to=%s error=%s", self.call_id, masked, exc)
            return False
        log.info("sip.transferred call_id=%s to=%s", self.call_id, masked)
        return True

    async def hangup(self) -> None:
        if not self.closed.is_set():
            if self._local_end is None:
                self._local_end = "local"
            try:
                await self.call.hangup()
            except StaleHandleError:
                pass  # already gone
            except BaresipError as exc:
                log.warning("sip.hangup_error call_id=%s error=%s", self.call_id, exc)
            try:
                await asyncio.wait_for(self.closed.wait(), HANGUP_CONFIRM_S)
            except TimeoutError:
                self._on_closed("no CALL_CLOSED from the stack")
        await self._pump

    def _abandon(self, reason: str) -> None:
        """The runtime is going away under this leg."""
        self._local_end = self._local_end or "error"
        self._on_closed(reason)


class BaresipTelephony(Telephony):
    """The SIP stack of one gateway process.

    listen: (host, port) to bind SIP (UDP and TCP) and RTP on; port 0 picks a free one.
    username / password: digest credentials for the trunk (401/407 are answered by the stack).
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
        self._agents: dict[str, UserAgent] = {}
        self._agent_lock = asyncio.Lock()
        self._legs: dict[int, BaresipLeg] = {}
        self._orphans: OrderedDict[int, list[StackEvent]] = OrderedDict()

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
        log.info("sip.started listen=%s:%d proxy=%s auth=%s", host, port, self.outbound_proxy,
                 bool(self.password))

    async def _agent(self, caller_id: str) -> UserAgent:
        async with self._agent_lock:
            agent = self._agents.get(caller_id)
            if agent is None:
                assert self.runtime is not None
                auth_user = self.username if self.username and self.username != caller_id \
                    else None
                agent = await UserAgent.create(self.runtime, Account(
                    user=caller_id, domain=self.domain, password=self.password,
                    registrar=self.outbound_proxy, reg_interval=0,
                    audio_codecs=("PCMA", "PCMU"), auth_user=auth_user))
                self._agents[caller_id] = agent
            return agent

    async def dial(self, request: DialRequest) -> BaresipLeg:
        if self.runtime is None:
            raise RuntimeError("BaresipTelephony.start() first")
        caller_id = request.caller_id or self.default_caller_id
        agent = await self._agent(caller_id)
        headers = {"X-Waihu-Call-Id": request.call_id, **request.headers}
        log.info("sip.dial call_id=%s to=%s from=%s", request.call_id, mask_uri(request.uri),
                 mask_phone(caller_id))
        dialled_at = time.monotonic()
        call = await agent.dial(request.uri, headers=headers)
        leg = BaresipLeg(request, call, dialled_at)
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
        runtime.unsubscribe(self._route)
        await runtime.close()
        for leg in legs:
            leg._abandon("runtime closed")
        self._legs.clear()
        self._agents.clear()
        log.info("sip.stopped")
