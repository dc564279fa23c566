"""What the simphone hears on a call: when the bot speaks and stops, and the recording.

`BotListener` turns the received frames into bot speech spans (VAD) and answers the persona
player's questions ("has the bot stopped / started since t?"). `Listening` wires one call's
RTP to it and to the stereo recorder, and at the end of the call writes the spans, the first
audio and greeting latency into the call's record and the recording to `record_dir`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from pathlib import Path

from voice.audio.frames import FRAME_MS, Frame, StereoRecorder, dbfs
from voice.audio.vad import SpeechEnded, SpeechStarted, Vad, VadState
from voice.simphone.call import Call, OwnAudio, SimPhoneOptions, Span
from voice.simphone.rtp import ReceivedFrame

log = logging.getLogger("waihu.simphone")


class BotListener:
    """Turns received frames into bot speech spans (VAD) and answers "has the bot stopped /
    started since time t?" for the turn player. Times are clock seconds."""

    def __init__(self, options: SimPhoneOptions, t0: float) -> None:
        self.options = options
        self.vad = Vad(options.vad_params())
        self.t0 = t0
        self.arrivals: list[float] = []  # arrival of VAD frame n
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.first_audio: float | None = None
        self.last_heard = t0  # last non-silent frame, or the start
        self.listening_since: float | None = None
        self._pending: list[OwnAudio] = []
        self._changed = asyncio.Event()

    @property
    def speaking(self) -> bool:
        return self.vad.state in (VadState.SPEAKING, VadState.STOPPING)

    def expect_reply(self, own: OwnAudio) -> None:
        self._pending.append(own)

    def feed(self, frame: ReceivedFrame) -> list[SpeechStarted | SpeechEnded]:
        if self.listening_since is None:
            return []
        self.arrivals.append(frame.arrival)
        out: list[SpeechStarted | SpeechEnded] = []
        if dbfs(frame.pcm) >= self.options.speech_threshold_dbfs:
            self.last_heard = frame.arrival
            if self.first_audio is None:
                self.first_audio = frame.arrival
            at_ms = (frame.arrival - self.t0) * 1000
            for own in self._pending:
                if own.end_ms <= at_ms:
                    own.bot_audio_after_ms = round(at_ms, 1)
                    own.gap_ms = round(at_ms - own.end_ms, 1)
            self._pending = [p for p in self._pending if p.bot_audio_after_ms is None]
        for event in self.vad.feed(frame.pcm):
            if isinstance(event, SpeechStarted):
                self.starts.append(self.arrivals[event.at_ms // FRAME_MS])
                out.append(event)
            elif isinstance(event, SpeechEnded):
                last = event.at_ms // FRAME_MS - 1
                self.ends.append(self.arrivals[last] + FRAME_MS / 1000)
                out.append(event)
        if out:
            self._pulse()
        return out

    def _pulse(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def stopped_after(self, t: float) -> bool:
        return not self.speaking and bool(self.ends) and self.ends[-1] > t

    def started_after(self, t: float) -> float | None:
        """Start time of bot speech under way or begun after `t`."""
        if self.starts and (self.speaking or self.starts[-1] > t):
            return self.starts[-1]
        return None

    def quiet_for(self, now: float, since: float) -> float:
        """Seconds without bot speech, counted from the later of `since` and the last end."""
        if self.speaking:
            return 0.0
        return now - max(since, self.ends[-1] if self.ends else since)

    async def wait(self, predicate: Callable[[], bool], *, idle_s: float, since: float,
                   clock: Callable[[], float]) -> bool:
        """Wait until `predicate()`; False once the bot has been quiet for `idle_s`."""
        while True:
            changed = self._changed
            if predicate():
                return True
            if self.quiet_for(clock(), since) >= idle_s:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), 0.1)


class Listening:
    """One simphone's ears: per call, the recorder (when `record_dir` is set) from the media
    set-up, the `BotListener` from the answer, and what both leave in the record."""

    def __init__(self, options: SimPhoneOptions, clock: Callable[[], float],
                 record_dir: Path | None) -> None:
        self.options = options
        self.clock = clock
        self.record_dir = record_dir

    def open(self, call: Call) -> None:
        """Media is set up: record both directions from now on (if recording)."""
        if self.record_dir is not None:
            call.recorder = StereoRecorder()

    def answered(self, call: Call, now: float) -> None:
        """The call is answered at `now`: start hearing the bot."""
        call.listener = BotListener(self.options, call.t0)
        call.listener.listening_since = now

    def heard(self, call: Call, frame: ReceivedFrame) -> None:
        if call.recorder is not None:
            if call.rx_anchor_ms is None:
                call.rx_anchor_ms = (frame.arrival - call.t0) * 1000 - frame.media_ms
            call.recorder.add_caller(Frame(frame.pcm, int(call.rx_anchor_ms + frame.media_ms)))
        if call.listener is not None:
            for event in call.listener.feed(frame):
                log.debug("simphone.bot_%s call_id=%s", type(event).__name__,
                          call.invite.call_id)

    def sent(self, call: Call, pcm: bytes, t: float, slot: int) -> None:
        if call.recorder is not None and call.rtp is not None and call.rtp.started_at:
            at = (call.rtp.started_at - call.t0) * 1000 + slot * FRAME_MS
            call.recorder.add_bot(Frame(pcm, max(0, int(at))))

    def finish(self, call: Call) -> None:
        """The media is closed: the bot's speech spans, first audio and greeting latency into
        the record, and the recording written."""
        if call.listener is not None:
            lst = call.listener
            lst.vad.flush()
            ends = [*lst.ends, *([self.clock()] if len(lst.ends) < len(lst.starts) else [])]
            call.record.bot_speech = [Span(call.ms(s), call.ms(e))
                                      for s, e in zip(lst.starts, ends, strict=False)]
            if lst.first_audio is not None:
                call.record.first_audio_ms = call.ms(lst.first_audio)
                if call.record.answered_ms is not None:
                    call.record.greeting_latency_ms = round(
                        call.record.first_audio_ms - call.record.answered_ms, 1)
        if call.recorder is not None and self.record_dir is not None:
            self.record_dir.mkdir(parents=True, exist_ok=True)
            safe = re.sub(r"[^A-Za-z0-9_.-]", "_", call.invite.call_id)[:40]
            path = self.record_dir / f"{call.number or 'unknown'}-{safe}.wav"
            call.recorder.write(path)
            call.record.recording = str(path)


__all__ = ["BotListener", "Listening"]
