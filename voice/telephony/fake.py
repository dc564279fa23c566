"""An in-memory telephony leg for unit tests of the call session.

The test plays the far end (the customer's phone) through a `FarEnd` script:

    far = FarEnd(answer_after_ms=200)          # or FarEnd(fail=486), FarEnd(answer_after_ms=None)
    telephony = FakeTelephony()
    telephony.prepare(far)                      # the next dial reaches this far end
    leg = await telephony.dial(DialRequest("sip:13800000000@trunk", "c1"))
    outcome = await leg.wait_answer(5)
    far.say(pcm); far.key("1"); far.hang_up()   # the caller's side
    far.heard                                   # every frame the bot sent, with timestamps

Frames are paced in real time, one 20 ms tick on absolute `time.monotonic()` deadlines, with
the same semantics as the baresip leg: once answered, every tick gives one rx frame (the
caller's queued speech, else silence) and one tx frame (queued bot audio, else silence), both
reported to the `on_frame` listeners and stamped in ms since the answer.  Early media before the
answer is delivered as rx frames stamped from the start of the early media, and kept for
`DialOutcome.early_media`.  So timing behaviour such as barge-in latency is realistic.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from voice.audio.frames import FRAME_BYTES, FRAME_MS, SILENCE_FRAME, Frame
from voice.audio.mixing import Overlay
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
)

TICK_S = FRAME_MS / 1000
DTMF_TONE_S = 0.10  # like baresip-python's send_dtmf: 100 ms per digit, 120 ms between
DTMF_GAP_S = 0.12


@dataclass
class FarEnd:
    """A scripted far end: how it takes the call, and what it says and hears afterwards.

    `answer_after_ms=None` never answers (the dial runs into the caller's timeout);
    `fail=<status>` ends the dial with that SIP status after `answer_after_ms` (0 if None)
    and any `early_media` (an operator announcement, 8 kHz s16 PCM).
    """

    answer_after_ms: float | None = 0
    fail: int | None = None
    reason: str = ""
    early_media: bytes = b""
    accept_transfer: bool = True
    heard: list[Frame] = field(default_factory=list)  # every tx frame of the bot
    digits_received: str = ""  # DTMF the bot sent
    transferred_to: str | None = None
    hung_up_by: HangupBy | None = None
    leg: FakeLeg | None = None
    _speech: bytearray = field(default_factory=bytearray)

    # -- the caller's actions -----------------------------------------------------------
    def say(self, pcm: bytes) -> None:
        """Queue caller audio; it goes out as rx frames after whatever is queued already."""
        self._speech += pcm

    @property
    def speaking(self) -> bool:
        return bool(self._speech)

    async def wait_said(self, timeout: float = 30) -> None:
        """Wait until everything passed to `say` has been sent."""
        deadline = time.monotonic() + timeout
        while self._speech:
            if time.monotonic() > deadline:
                raise TimeoutError("far end still speaking")
            await asyncio.sleep(TICK_S)

    def key(self, digits: str) -> None:
        """Press keys now (RFC 4733 DTMF as the leg reports it)."""
        leg = self._require_leg()
        for digit in digits:
            leg._emit(Dtmf(digit, leg.now_ms(), duration_ms=int(DTMF_TONE_S * 1000)))

    def hang_up(self, reason: str = "Connection reset by peer") -> None:
        """The caller hangs up (BYE)."""
        self._require_leg()._end("remote", reason)

    def vanish(self) -> None:
        """The caller's phone disappears without a BYE: the leg ends as an RTP timeout."""
        self._require_leg()._end("rtp_timeout", "rtp stream error")

    # -- what the bot sent --------------------------------------------------------------
    def heard_pcm(self) -> bytes:
        return b"".join(frame.pcm for frame in self.heard)

    def heard_voiced(self) -> list[Frame]:
        """The frames the bot sent that are not digital silence."""
        return [frame for frame in self.heard if frame.pcm != SILENCE_FRAME]

    def _take_speech(self) -> bytes:
        if not self._speech:
            return SILENCE_FRAME
        chunk = bytes(self._speech[:FRAME_BYTES])
        del self._speech[:FRAME_BYTES]
        return chunk.ljust(FRAME_BYTES, b"\0")

    def _require_leg(self) -> FakeLeg:
        if self.leg is None:
            raise RuntimeError("this far end has not been dialled")
        return self.leg


class FakeLeg(Leg):
    def __init__(self, request: DialRequest, far: FarEnd) -> None:
        super().__init__(request.call_id)
        self.request = request
        self.far = far
        far.leg = self
        self._dialled_at = time.monotonic()
        self._answered_at: float | None = None
        self._play = bytearray()
        self._overlay = Overlay()
        self._early = bytearray()
        self._outcome: asyncio.Future[DialOutcome] = asyncio.get_running_loop().create_future()
        self._pump = asyncio.create_task(self._run(), name=f"fake-leg-{request.call_id}")

    def now_ms(self) -> float:
        """Call-timeline time: ms since the answer (since the dial before it)."""
        origin = self._answered_at if self._answered_at is not None else self._dialled_at
        return (time.monotonic() - origin) * 1000

    # -- the pump ----------------------------------------------------------------------
    async def _run(self) -> None:
        far = self.far
        self._emit(Ringing(self.now_ms()))
        start = time.monotonic()
        tick = 0
        for tick, at in enumerate(range(0, len(far.early_media), FRAME_BYTES)):
            if tick == 0:
                self._emit(EarlyMedia(self.now_ms()))
            pcm = far.early_media[at : at + FRAME_BYTES].ljust(FRAME_BYTES, b"\0")
            self._early += pcm
            self._emit_frame("rx", Frame(pcm, tick * FRAME_MS))
            await _sleep_until(start + (tick + 1) * TICK_S)
        if far.fail is not None or far.answer_after_ms is not None:
            await _sleep_until(self._dialled_at + (far.answer_after_ms or 0) / 1000)
        else:
            await self.closed.wait()  # rings until the caller gives up
            return
        if self.closed.is_set():
            return
        if far.fail is not None:
            self._finish(DialOutcome(classify_failure(far.fail, far.reason), far.fail,
                                     far.reason, bytes(self._early)))
            self._end("remote", f"{far.fail} {far.reason}".strip())
            return
        self._answered_at = time.monotonic()
        self._finish(DialOutcome("answered", 200, "OK", bytes(self._early),
                                 (self._answered_at - self._dialled_at) * 1000))
        self._emit(Answered((self._answered_at - self._dialled_at) * 1000))
        tick = 0
        while not self.closed.is_set():
            self._emit_frame("rx", Frame(far._take_speech(), tick * FRAME_MS))
            pcm, added = self._take_play()
            tx = Frame(pcm, tick * FRAME_MS, added)
            far.heard.append(tx)
            self._emit_frame("tx", tx)
            tick += 1
            await _sleep_until(self._answered_at + tick * TICK_S)

    def _take_play(self) -> tuple[bytes, bytes | None]:
        """The next frame sent, and what of it was mixed in (mix-minus)."""
        if not self._play:
            alone = self._overlay.take()
            return (SILENCE_FRAME, None) if alone is None else (alone, alone)
        chunk = bytes(self._play[:FRAME_BYTES])
        del self._play[:FRAME_BYTES]
        return self._overlay.mixed(chunk.ljust(FRAME_BYTES, b"\0"))

    def _finish(self, outcome: DialOutcome) -> None:
        if not self._outcome.done():
            self._outcome.set_result(outcome)

    def _end(self, by: HangupBy, reason: str) -> None:
        if self.closed.is_set():
            return
        self.far.hung_up_by = by
        self._emit(Hangup(by, reason, self.now_ms()))
        self._pump.cancel()

    # -- Leg ---------------------------------------------------------------------------
    async def wait_answer(self, timeout: float) -> DialOutcome:
        try:
            return await asyncio.wait_for(asyncio.shield(self._outcome), timeout)
        except TimeoutError:
            self._finish(DialOutcome("no_answer", None, "timeout", bytes(self._early)))
            self._end("local", "Rejected by user")
            return self._outcome.result()

    def play(self, pcm: bytes) -> None:
        if not self.closed.is_set():
            self._play += pcm

    def mix_in(self, pcm: bytes) -> None:
        if not self.closed.is_set():
            self._overlay.add(pcm)

    def stop_playback(self) -> None:
        self._play.clear()

    @property
    def playing(self) -> bool:
        return bool(self._play)

    async def send_dtmf(self, digits: str) -> None:
        for i, digit in enumerate(digits):
            await asyncio.sleep(DTMF_TONE_S + (DTMF_GAP_S if i else 0))
            if self.closed.is_set():
                return
            self.far.digits_received += digit

    async def transfer(self, uri: str) -> bool:
        if self.closed.is_set() or self._answered_at is None or not self.far.accept_transfer:
            return False
        self.far.transferred_to = uri
        self._end("transfer", "Call transfered")
        return True

    async def hangup(self) -> None:
        if not self.closed.is_set():
            self._finish(DialOutcome("no_answer", None, "cancelled", bytes(self._early)))
            self._end("local", "Rejected by user")
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump


class FakeTelephony(Telephony):
    """Hands out `FakeLeg`s; each dial meets the next prepared `FarEnd` (or *script*'s)."""

    def __init__(self, script: Callable[[DialRequest], FarEnd] | None = None) -> None:
        self.script = script
        self.prepared: list[FarEnd] = []
        self.legs: list[FakeLeg] = []
        self.started = False

    def prepare(self, far: FarEnd) -> FarEnd:
        self.prepared.append(far)
        return far

    async def start(self) -> None:
        self.started = True

    async def dial(self, request: DialRequest) -> FakeLeg:
        if not self.started:
            raise RuntimeError("FakeTelephony.start() first")
        if self.prepared:
            far = self.prepared.pop(0)
        elif self.script is not None:
            far = self.script(request)
        else:
            far = FarEnd()
        leg = FakeLeg(request, far)
        self.legs.append(leg)
        return leg

    async def close(self) -> None:
        for leg in self.legs:
            await leg.hangup()
        self.started = False


async def _sleep_until(deadline: float) -> None:
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))
