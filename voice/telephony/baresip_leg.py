"""One outbound call on baresip-python 0.5.2a3: its call control.

A `BaresipLeg` is what `BaresipTelephony.dial` hands out.  It turns the stack events routed
to it into our leg events (ringing, early media, answer, DTMF, hang-up) and the dial's
`DialOutcome`, and carries out what the session asks of the call: wait for the answer, send
DTMF, transfer, hang up (bridging is the base `Leg`'s).  Its audio is `LegAudio`'s, moved by
the `AudioClock` thread; the leg only plays to it and stops it.  The measured behaviour and
traps behind the choices here are in docs/research/baresip-python.md; in short:

- `StaleHandleError` means "already gone";
- every stack callback runs on the loop thread that started the runtime; ours only update
  state and put events in queues.

Timeline: event `at_ms` counts from the dial until the answer and from the answer afterwards
(frame timestamps: see `voice.telephony.leg_audio`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time

from baresip.call import Call
from baresip.errors import BaresipError, CallFailed, StaleHandleError, TransferFailed
from baresip.events import Event, StackEvent

from bot.privacy import mask_phone
from voice.telephony.audio_clock import AudioClock
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
    classify_failure,
)
from voice.telephony.leg_audio import LegAudio

log = logging.getLogger("waihu.sip")

TRANSFER_TIMEOUT_S = 15.0
HANGUP_CONFIRM_S = 2.0
_URI_USER = re.compile(r"^(sips?:)([^@;>]+)@")


def mask_uri(uri: str) -> str:
    """`sip:13812345678@trunk` -> `sip:138****5678@trunk` (the user part is a phone number)."""
    return _URI_USER.sub(lambda m: m.group(1) + mask_phone(m.group(2)) + "@", uri, count=1)


class BaresipLeg(Leg):
    """One outbound call on the baresip stack; its audio is moved by the `AudioClock`.

    Everything here runs on the loop thread; the state shared with the clock thread is in
    `LegAudio`, behind its lock.
    """

    def __init__(self, request: DialRequest, call: Call, dialled_at: float, *,
                 clock: AudioClock) -> None:
        super().__init__(request.call_id)
        self.call = call
        self.uri = request.uri
        self._masked_uri = mask_uri(request.uri)
        self._dialled_at = dialled_at
        self._outcome: asyncio.Future[DialOutcome] = asyncio.get_running_loop().create_future()
        self._local_end: HangupBy | None = None  # set before we end the call ourselves
        self._ringing = self._progress = False
        self._dtmf_pressed: tuple[str, float] | None = None
        self._error_task: asyncio.Task[None] | None = None
        self._audio = LegAudio(request.call_id, call, clock=clock, emit=self._emit_frame,
                               on_failure=self._pump_failed)

    @property
    def underrun_frames(self) -> int:
        """20 ms of bot audio that were due and not there."""
        return self._audio.underrun_frames

    # -- clocks ------------------------------------------------------------------------
    def now_ms(self) -> float:
        """ms since the answer (since the dial before it)."""
        answered_at = self._audio.answered_at
        origin = answered_at if answered_at is not None else self._dialled_at
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
        elif kind is Event.CALL_ESTABLISHED and self._audio.answered_at is None:
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
        self._audio.emit_out()  # early media first, on its own timeline
        answered_at = self._audio.answer()
        early = self._audio.early_media
        setup_ms = (answered_at - self._dialled_at) * 1000
        log.info("sip.answered call_id=%s setup_ms=%.1f", self.call_id, setup_ms)
        self._outcome.set_result(DialOutcome("answered", 200, "OK", early, setup_ms))
        self._emit(Answered(setup_ms))

    def _on_closed(self, text: str) -> None:
        if self.closed.is_set():
            return
        self._audio.end()  # the last frames before the hang-up
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
                                                 self._audio.early_media))
        else:
            log.info("sip.hangup call_id=%s by=%s reason=%r at_ms=%.0f", self.call_id, by,
                     text, self.now_ms())
        self._emit(Hangup(by, text, self.now_ms()))

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
                                                 self._audio.early_media))
        await self.hangup()  # CANCEL
        return self._outcome.result()

    def play(self, pcm: bytes) -> None:
        if self.closed.is_set():
            return
        self._audio.play(pcm)

    def mix_in(self, pcm: bytes) -> None:
        if not self.closed.is_set():
            self._audio.mix_in(pcm)

    def stop_playback(self) -> None:
        self._audio.stop_playback()

    @property
    def playing(self) -> bool:
        return self._audio.playing

    async def send_dtmf(self, digits: str) -> None:
        log.info("sip.dtmf_send call_id=%s digits=%d", self.call_id, len(digits))
        with contextlib.suppress(StaleHandleError):  # already gone
            await self.call.send_dtmf(digits)

    async def transfer(self, uri: str) -> bool:
        if self.closed.is_set() or self._audio.answered_at is None:
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

