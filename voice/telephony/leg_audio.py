"""The audio of one `BaresipLeg`: the frames its call receives and the bot audio it sends.

`LegAudio` holds everything the `AudioClock` thread shares with the event loop: the
timeline origins, the slot indexes, the play and early-media buffers, the frames not yet
emitted and the stack's transmit side, all guarded by one lock.  The clock calls `tick`;
the loop calls `play` (which writes at once under the lock, so bot audio does not wait for
the next tick), `stop_playback`, `answer`, `end` and `emit_out`.  `AudioNotActive` /
`AudioRestarted` are normal here (before media, at renegotiation, at the end of early
media) and are caught.

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
  (`underrun_frames`, plus frames the stack padded mid-frame).

Timeline: frame timestamps count ms since the answer.  Early media before the answer goes to
`rx` stamped from the start of the early media (and is kept for `DialOutcome.early_media`);
the timeline restarts at 0 on the answer.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

from baresip.call import Call
from baresip.errors import AudioNotActive, AudioRestarted

from voice.audio.frames import FRAME_BYTES, FRAME_MS, SILENCE_FRAME, Frame
from voice.audio.mixing import Overlay
from voice.telephony.audio_clock import RESYNC_MS, TICK_S, AudioClock
from voice.telephony.base import Direction

log = logging.getLogger("waihu.sip")

AHEAD_FRAMES = 15  # bot audio queued in the stack ahead of the wire: rides out 300 ms stalls
CUSHION_FRAMES = 2  # audio shorter than this starting from idle gets one frame of silence first
OVERLAY_AHEAD_FRAMES = 3  # a supervisor's voice alone (no bot audio) is kept this close
FLUSH_WAIT_S = 0.045  # flush_tx is carried out at the stack's next 20 ms tick: wait for it
MAX_SILENCE_REPORT = 500  # after a longer stall only the last 10 s of stack silence is reported
RX_READ_BYTES = 16 * FRAME_BYTES  # take everything that arrived (bursts after a stall)
_AUDIO_GONE = (AudioNotActive, AudioRestarted)


class LegAudio:
    """The audio of one call, moved by the `AudioClock`.

    The state shared with the clock thread is guarded by `_lock`; the clock is then the only
    reader of the call's audio and, with `stop_playback` under the same lock, its only
    writer.  *emit* hands a frame to the leg's listeners and `rx` (loop thread); *on_failure*
    runs on the loop if a tick raised.
    """

    def __init__(self, call_id: str, call: Call, *, clock: AudioClock,
                 emit: Callable[[Direction, Frame], None],
                 on_failure: Callable[[], None]) -> None:
        self.call_id = call_id
        self.call = call
        self.on_failure = on_failure
        self._clock = clock
        self._emit = emit
        self._lock = threading.Lock()
        self.answered_at: float | None = None  # the timeline's origin once answered
        self._early_at: float | None = None  # first early-media frame
        self._ended = False  # no audio any more (the clock skips the leg)
        self._play = bytearray()
        self._overlay = Overlay()  # a supervisor's voice over ours (voice/audio/mixing.py)
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
        clock.add(self)

    def _timeline_ms(self, now: float) -> float:
        """ms on the frame timeline: since the answer, or since early media began."""
        origin = self.answered_at or self._early_at or now
        return (now - origin) * 1000

    # -- the call's life (loop thread) ---------------------------------------------------
    def answer(self) -> float:
        """The call is answered: the timeline restarts at 0 now.  Returns that moment."""
        with self._lock:
            answered_at = self.answered_at = time.monotonic()
            self._rx_pending.clear()
            self._rx_index = self._tx_index = None
        return answered_at

    def end(self) -> None:
        """The call is over: the clock lets go, the last frames go to the listeners."""
        with self._lock:
            self._ended = True
        self._clock.remove(self)
        self.emit_out()  # the last frames before the hang-up

    @property
    def early_media(self) -> bytes:
        """What was received before the answer."""
        with self._lock:
            return bytes(self._early)

    def emit_out(self) -> None:
        """Hand the frames the clock produced to the listeners and `rx` (loop thread)."""
        with self._lock:
            out, self._out = self._out, []
        for direction, frame in out:
            self._emit(direction, frame)

    # -- bot audio (loop thread) ---------------------------------------------------------
    def play(self, pcm: bytes) -> None:
        with self._lock:
            self._play += pcm
            if self.answered_at is None or self._ended:
                return
            # Start now rather than at the next tick (the clock is the other writer, and
            # the lock keeps us apart); the frames reach the listeners on the next dispatch.
            with contextlib.suppress(*_AUDIO_GONE):
                self._transmit(time.monotonic())
            pending = bool(self._out)
        if pending:
            self._clock.mark_ready(self)

    def mix_in(self, pcm: bytes) -> None:
        """Audio sent over ours from the next frame written (Leg.mix_in)."""
        with self._lock:
            self._overlay.add(pcm)
            if self.answered_at is None or self._ended:
                return
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
            if self.answered_at is None or self._ended:
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

    # -- the clock thread (play/stop_playback on the loop, all under _lock) --------------
    def tick(self, now: float) -> bool:
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
                if self.answered_at is None and self._early_at is None:
                    self._early_at = now
                if self.answered_at is None:
                    self._early += pcm
                self._receive(pcm, now)
            if self.answered_at is not None:
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
            if not self._write(*self._take_play(), voiced=True):
                break  # stack buffer full after all; try again next tick
            buffered += FRAME_BYTES
        if self._overlay and not self._play:
            # A supervisor's voice with nothing of ours to carry it: it goes out on its own,
            # kept as close to the wire as a bridged party's trickle, and does not count as
            # bot audio (`playing` stays false: the bot's turn is not held open by it).
            if not buffered:
                self._write(SILENCE_FRAME, voiced=False)
                buffered += FRAME_BYTES
            while buffered < OVERLAY_AHEAD_FRAMES * FRAME_BYTES:
                frame = self._overlay.take()
                if frame is None or not self._write(frame, frame, voiced=False):
                    break
                buffered += FRAME_BYTES
        # Bot audio is waiting: the stack must not run dry before the next tick.
        due = bool(self._play)
        if due and not self._content_due:
            # Idle until now: the stack may have sent a silence frame of its own between
            # the stats() above and the first write; that one was not an underrun.
            st = audio.stats()
            self._stack_counts = (st.tx_silence_frames, st.tx_starved_frames)
        self._content_due = due

    def _write(self, pcm: bytes, mixed_in: bytes | None = None, *, voiced: bool) -> bool:
        """*mixed_in*: what of *pcm* the overlay added (the frame says so: mix-minus)."""
        assert self._tx_index is not None and self.answered_at is not None
        if self.call.audio.write(pcm) < len(pcm):
            if voiced:
                self._play[:0] = pcm  # not taken: keep it for the next tick
            return False
        slot_ms = self._tx_index * FRAME_MS
        self._out.append(("tx", Frame(pcm, slot_ms, mixed_in)))
        self._tx_index += 1
        if voiced:
            self._audio_until = self.answered_at + self._tx_index * TICK_S
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

    def _take_play(self) -> tuple[bytes, bytes | None]:
        chunk = bytes(self._play[:FRAME_BYTES])
        del self._play[:FRAME_BYTES]
        return self._overlay.mixed(chunk.ljust(FRAME_BYTES, b"\0"))
