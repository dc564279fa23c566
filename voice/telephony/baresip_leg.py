"""The telephony leg on baresip-python 0.5.2a3 (bindings to the baresip/libre SIP stack).

One `BaresipTelephony` per process owns the single `baresip.Runtime` (the library allows one
per process) and hands out a `BaresipLeg` per dial.  The measured behaviour and traps behind
the choices here are in docs/research/baresip-python.md; in short:

- `max_concurrent_calls` defaults to 2 in the library: we pass ours (None = unlimited);
- codecs are offered PCMA first (the library default is PCMU first);
- `net_interface` is pinned to the listen host (loopback needs it) and `sip_listen` is set;
- a small fixed jitter buffer (20-60 ms) halves the audio round trip against the default;
- `AudioNotActive` / `AudioRestarted` are normal (before media, at renegotiation, at the end
  of early media) and are caught by the audio clock; `StaleHandleError` means "already gone";
- every stack callback runs on the loop thread that started the runtime; ours only update
  state and put events in queues.

Audio and threads.  One `AudioClock` thread per `BaresipTelephony` moves the audio of every
leg on absolute 20 ms deadlines: it reads what each call received and writes bot audio from
the leg's play buffer (`call.audio` read/write are thread-safe cffi calls).  The event loop
does not take part, so a stalled loop (a slow callback, a full garbage collection, the GIL
held by ASR or database threads) no longer makes the stack send silence in the middle of a
sentence.  Frames go to the loop in batches: at most one `call_soon_threadsafe` is pending at
a time, and it hands every ready leg's frames, in order, to the `on_frame` listeners and
`rx`.  The state the clock shares with the loop (`play`, `stop_playback`, the answer) is
guarded by a lock per leg; `play` writes at once under that lock, so bot audio does not wait
for the next tick.

Transmit policy, from measurements (docs/benchmarks.md, "Voice gateway"):

- bot audio is queued up to 300 ms ahead in the stack (AHEAD_FRAMES): a full GC pause
  under load was measured at 160-200 ms; barge-in does not suffer, `flush_tx` drops it all;
- while there is nothing to say nothing is written: the stack sends silence of its own
  (`tx_silence_frames`, "idle, not an error" in the library), those slots are reported to
  the listeners as silence frames, and new bot audio leaves with the next packet instead of
  waiting behind queued filler silence (30-50 ms less per response, measured);
- `flush_tx` is carried out by the stack at its next tick and drops whatever was written
  before then, so after `stop_playback` nothing is written until the drain is seen;
- an underrun is 20 ms of bot audio that was waiting while the stack had nothing queued
  (`BaresipLeg.underrun_frames`, plus frames the stack padded mid-frame).

Stack events are taken from one runtime-wide listener and routed to legs by call handle, so
events that arrive between the INVITE going out and the leg existing (a fast 180 or 404 on
loopback) are buffered, not lost, and replayed into baresip-python's own `Call` too (it
subscribes only when `dial()` returns; without the replay a peer answering within a few ms
left it OUTGOING and `transfer()` refused).

Timeline: frame timestamps count ms since the answer.  Early media before the answer goes to
`rx` stamped from the start of the early media (and is kept for `DialOutcome.early_media`);
the timeline restarts at 0 on the answer.  Event `at_ms` counts from the dial until the
answer and from the answer afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import threading
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
    Direction,
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
AHEAD_FRAMES = 15  # bot audio queued in the stack ahead of the wire: rides out 300 ms stalls
CUSHION_FRAMES = 2  # audio shorter than this starting from idle gets one frame of silence first
FLUSH_WAIT_S = 0.045  # flush_tx is carried out at the stack's next 20 ms tick: wait for it
MAX_SILENCE_REPORT = 500  # after a longer stall only the last 10 s of stack silence is reported
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


class AudioClock:
    """The 20 ms audio clock of one `BaresipTelephony`: a thread that moves every leg's audio.

    Every tick it reads what each call received and tops up each call's transmit buffer from
    the leg's play buffer, so the stack is fed on time whatever the event loop is doing.  The
    frames it produces go to the loop in batches: the legs with new frames are marked ready
    and at most one `call_soon_threadsafe` is outstanding, which emits them in order to the
    listeners and `rx` (a stalled loop gets everything in one go when it comes back).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._legs: tuple[BaresipLeg, ...] = ()
        self._lock = threading.Lock()  # guards _legs (copy on write), _ready, _scheduled
        self._ready: dict[BaresipLeg, None] = {}  # legs with frames for the loop, in order
        self._scheduled = False  # a dispatch is queued on the loop
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="waihu-audio-clock", daemon=True)
        self.reset_stats()

    # -- legs (any thread) -----------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def add(self, leg: BaresipLeg) -> None:
        with self._lock:
            self._legs = (*self._legs, leg)

    def remove(self, leg: BaresipLeg) -> None:
        with self._lock:
            self._legs = tuple(x for x in self._legs if x is not leg)

    def mark_ready(self, leg: BaresipLeg) -> None:
        """*leg* has frames for its listeners: emit them on the loop soon."""
        with self._lock:
            self._ready[leg] = None
            if self._scheduled:
                return
            self._scheduled = True
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody listens any more
            self._loop.call_soon_threadsafe(self._dispatch)

    async def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join, 2.0)

    # -- the loop side ---------------------------------------------------------------------
    def _dispatch(self) -> None:
        with self._lock:
            ready, self._ready = self._ready, {}
            self._scheduled = False
        self.dispatches += 1
        for leg in ready:
            leg._emit_out()

    # -- the clock thread ------------------------------------------------------------------
    def _run(self) -> None:
        deadline = time.monotonic()
        while not self._stop.wait(max(0.0, deadline - time.monotonic())):
            now = time.monotonic()
            late_ms = (now - deadline) * 1000
            self.ticks += 1
            if len(self.lateness_ms) < 500_000:
                self.lateness_ms.append(late_ms)
            for leg in self._legs:
                try:
                    if leg._clock_tick(now):
                        self.mark_ready(leg)
                except Exception:  # a bug here must not leave a silent call up
                    log.exception("sip.pump_error call_id=%s", leg.call_id)
                    self.remove(leg)
                    with contextlib.suppress(RuntimeError):
                        self._loop.call_soon_threadsafe(leg._pump_failed)
            deadline += TICK_S
            if time.monotonic() - deadline > RESYNC_MS / 1000:
                self.resyncs += 1  # stalled (GIL, CPU): skip ticks rather than burst
                deadline = time.monotonic()

    # -- figures ---------------------------------------------------------------------------
    def reset_stats(self) -> None:
        self.ticks = self.dispatches = self.resyncs = 0
        self.lateness_ms: list[float] = []

    def stats(self) -> dict[str, object]:
        """Tick lateness since `reset_stats` (for the benchmark)."""
        def pct(values: list[float], p: float) -> float | None:
            if not values:
                return None
            ordered = sorted(values)
            return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 1)

        late = list(self.lateness_ms)
        return {"ticks": self.ticks, "dispatches": self.dispatches, "resyncs": self.resyncs,
                "tick_late_ms_p50": pct(late, 50), "tick_late_ms_p99": pct(late, 99),
                "tick_late_ms_max": round(max(late), 1) if late else None,
                "ticks_late_over_20ms": sum(x > 20 for x in late),
                "ticks_late_over_100ms": sum(x > 100 for x in late)}


class BaresipLeg(Leg):
    """One outbound call on the baresip stack; its audio is moved by the `AudioClock`.

    The state shared with the clock thread (timeline origins, slot indexes, the play and
    early-media buffers, the frames not yet emitted, the stack's transmit side) is guarded
    by `_lock`; the clock is then the only reader of the call's audio and, with
    `stop_playback` under the same lock, its only writer.
    """

    def __init__(self, request: DialRequest, call: Call, dialled_at: float, *,
                 clock: AudioClock) -> None:
        super().__init__(request.call_id)
        self.call = call
        self.uri = request.uri
        self._clock = clock
        self._masked_uri = mask_uri(request.uri)
        self._dialled_at = dialled_at
        self._answered_at: float | None = None
        self._early_at: float | None = None  # first early-media frame
        self._outcome: asyncio.Future[DialOutcome] = asyncio.get_running_loop().create_future()
        self._local_end: HangupBy | None = None  # set before we end the call ourselves
        self._ringing = self._progress = False
        self._dtmf_pressed: tuple[str, float] | None = None
        self._lock = threading.Lock()
        self._ended = False  # no audio any more (the clock skips the leg)
        self._play = bytearray()
        self._early = bytearray()
        self._rx_pending = bytearray()
        self._out: list[tuple[Direction, Frame]] = []  # for the listeners, in order
        # Next 20 ms slot per direction on the current timeline; None until the first frame,
        # which is placed where it really is: received now, or leaving after what is queued.
        self._rx_index: int | None = None
        self._tx_index: int | None = None
        self._audio_until = 0.0  # monotonic time the last queued bot audio leaves the stack
        self._flush_mark: tuple[int, float] | None = None  # (tx_flushed_bytes, when) of a flush
        self._content_due = False  # bot audio was waiting at the last write
        self._stack_counts = (0, 0)  # the stack's tx_silence_frames, tx_starved_frames
        self.underrun_frames = 0  # 20 ms of bot audio that were due and not there
        self._error_task: asyncio.Task[None] | None = None
        clock.add(self)

    # -- clocks ------------------------------------------------------------------------
    def now_ms(self) -> float:
        """ms since the answer (since the dial before it)."""
        origin = self._answered_at if self._answered_at is not None else self._dialled_at
        return (time.monotonic() - origin) * 1000

    def _timeline_ms(self, now: float) -> float:
        """ms on the frame timeline: since the answer, or since early media began."""
        origin = self._answered_at or self._early_at or now
        return (now - origin) * 1000

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
        self._emit_out()  # early media first, on its own timeline
        with self._lock:
            self._answered_at = time.monotonic()
            self._rx_pending.clear()
            self._rx_index = self._tx_index = None
            early = bytes(self._early)
        setup_ms = (self._answered_at - self._dialled_at) * 1000
        log.info("sip.answered call_id=%s setup_ms=%.1f", self.call_id, setup_ms)
        self._outcome.set_result(DialOutcome("answered", 200, "OK", early, setup_ms))
        self._emit(Answered(setup_ms))

    def _on_closed(self, text: str) -> None:
        if self.closed.is_set():
            return
        with self._lock:
            self._ended = True
            early = bytes(self._early)
        self._clock.remove(self)
        self._emit_out()  # the last frames before the hang-up
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
            self._outcome.set_result(DialOutcome(result, failure.status, failure.reason, early))
        else:
            log.info("sip.hangup call_id=%s by=%s reason=%r at_ms=%.0f", self.call_id, by,
                     text, self.now_ms())
        self._emit(Hangup(by, text, self.now_ms()))

    # -- audio (clock thread; play/stop_playback on the loop, all under _lock) ---------
    def _clock_tick(self, now: float) -> bool:
        """One 20 ms tick: take what arrived, keep the stack's transmit buffer topped up.
        True if there are frames for the listeners."""
        with self._lock:
            if self._ended:
                return False
            audio = self.call.audio
            try:
                pcm = audio.read(RX_READ_BYTES)
            except _AUDIO_GONE:
                pcm = b""  # no media yet / streams replaced: the next call rebinds
            if pcm:
                if self._answered_at is None and self._early_at is None:
                    self._early_at = now
                if self._answered_at is None:
                    self._early += pcm
                self._receive(pcm, now)
            if self._answered_at is not None:
                with contextlib.suppress(*_AUDIO_GONE):
                    self._transmit(now)
            return bool(self._out)

    def _receive(self, pcm: bytes, now: float) -> None:
        self._rx_pending += pcm
        now_slot = int(self._timeline_ms(now) / FRAME_MS)
        ready = len(self._rx_pending) // FRAME_BYTES
        if self._rx_index is None or self._rx_index < now_slot - RESYNC_MS // FRAME_MS:
            self._rx_index = max(0, now_slot - ready + 1)  # first frame, or a long gap
        for _ in range(ready):
            chunk = bytes(self._rx_pending[:FRAME_BYTES])
            del self._rx_pending[:FRAME_BYTES]
            self._out.append(("rx", Frame(chunk, self._rx_index * FRAME_MS)))
            self._rx_index += 1

    def _transmit(self, now: float) -> None:
        """Feed the stack bot audio, up to AHEAD_FRAMES ahead of the wire.

        Nothing is written while there is nothing to say: the stack then sends silence by
        itself (its `tx_silence_frames`, "idle, not an error"), and those slots are reported
        to the listeners as silence frames.  So new bot audio never waits behind queued
        filler: it leaves with the stack's next packet.
        """
        audio = self.call.audio
        st = audio.stats()
        self._count_underruns(st.tx_silence_frames, st.tx_starved_frames)
        if self._flush_mark is not None:
            flushed, at = self._flush_mark
            if st.tx_flushed_bytes <= flushed and now - at < FLUSH_WAIT_S:
                return  # anything written before the stack's drain would be dropped with it
            self._flush_mark = None
        buffered = st.tx_buffered
        now_slot = int(self._timeline_ms(now) / FRAME_MS)
        if self._tx_index is None:
            self._tx_index = now_slot + buffered // FRAME_BYTES
        if not buffered and self._tx_index < now_slot:
            # The stack sent silence of its own in these slots: that is what went out.
            for slot in range(max(self._tx_index, now_slot - MAX_SILENCE_REPORT), now_slot):
                self._out.append(("tx", Frame(SILENCE_FRAME, slot * FRAME_MS)))
            self._tx_index = now_slot
        if self._play and not buffered and len(self._play) < CUSHION_FRAMES * FRAME_BYTES:
            # A trickle (a bridged leg's frames) starting from idle: one frame of silence
            # in front absorbs the next frame arriving a little late.
            self._write(SILENCE_FRAME, voiced=False)
            buffered += FRAME_BYTES
        while self._play and buffered < AHEAD_FRAMES * FRAME_BYTES and \
                self._tx_index <= now_slot + AHEAD_FRAMES:
            if not self._write(self._take_play(), voiced=True):
                break  # stack buffer full after all; try again next tick
            buffered += FRAME_BYTES
        # Bot audio is waiting: the stack must not run dry before the next tick.
        due = bool(self._play)
        if due and not self._content_due:
            # Idle until now: the stack may have sent a silence frame of its own between
            # the stats() above and the first write; that one was not an underrun.
            st = audio.stats()
            self._stack_counts = (st.tx_silence_frames, st.tx_starved_frames)
        self._content_due = due

    def _write(self, pcm: bytes, *, voiced: bool) -> bool:
        assert self._tx_index is not None and self._answered_at is not None
        if self.call.audio.write(pcm) < len(pcm):
            if voiced:
                self._play[:0] = pcm  # not taken: keep it for the next tick
            return False
        slot_ms = self._tx_index * FRAME_MS
        self._out.append(("tx", Frame(pcm, slot_ms)))
        self._tx_index += 1
        if voiced:
            self._audio_until = self._answered_at + self._tx_index * TICK_S
        return True

    def _count_underruns(self, silence: int, starved: int) -> None:
        """Stack silence while bot audio was waiting, and frames padded mid-frame, are
        underruns (the counters restart from 0 when the streams are replaced)."""
        last_silence, last_starved = self._stack_counts
        missed = starved - last_starved if starved >= last_starved else starved
        if self._content_due:
            missed += silence - last_silence if silence >= last_silence else silence
        self._stack_counts = (silence, starved)
        if missed > 0:
            self.underrun_frames += missed
            log.warning("sip.underrun call_id=%s frames=%d", self.call_id, missed)

    def _take_play(self) -> bytes:
        chunk = bytes(self._play[:FRAME_BYTES])
        del self._play[:FRAME_BYTES]
        return chunk.ljust(FRAME_BYTES, b"\0")

    def _emit_out(self) -> None:
        """Hand the frames the clock produced to the listeners and `rx` (loop thread)."""
        with self._lock:
            out, self._out = self._out, []
        for direction, frame in out:
            self._emit_frame(direction, frame)

    def _pump_failed(self) -> None:
        """The clock hit a bug on this leg (loop thread): end the call rather than leave it
        up in silence."""
        if self.closed.is_set():
            return
        self._local_end = "error"
        self._error_task = asyncio.create_task(self._hangup_after_error())

    async def _hangup_after_error(self) -> None:
        with contextlib.suppress(BaresipError):
            await self.call.hangup()

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
        if self.closed.is_set():
            return
        with self._lock:
            self._play += pcm
            if self._answered_at is None or self._ended:
                return
            # Start now rather than at the next tick (the clock is the other writer, and
            # the lock keeps us apart); the frames reach the listeners on the next dispatch.
            with contextlib.suppress(*_AUDIO_GONE):
                self._transmit(time.monotonic())
            pending = bool(self._out)
        if pending:
            self._clock.mark_ready(self)

    def stop_playback(self) -> None:
        with self._lock:
            self._play.clear()
            self._content_due = False
            self._audio_until = 0.0
            if self._answered_at is None or self._ended:
                return
            now = time.monotonic()
            try:
                st = self.call.audio.stats()
                if not st.tx_buffered:
                    return  # nothing queued, nothing to drop
                self.call.audio.flush_tx()
            except _AUDIO_GONE:
                return
            # The stack drops the queue at its next tick (at most the frame being encoded
            # still leaves); writes before then would be dropped too, so the clock waits.
            # Those slots are rewritten (with the stack's silence) so the tx timeline and the
            # recorder show what the far end really heard.
            self._flush_mark = (st.tx_flushed_bytes, now)
            if self._tx_index is not None:
                self._tx_index = min(self._tx_index, int(self._timeline_ms(now) / FRAME_MS) + 1)

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
