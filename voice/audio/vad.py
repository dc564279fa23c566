"""Energy VAD and endpointing as a pure, synchronous state machine.

    QUIET ──voiced──▶ STARTING ──min_speech frames voiced──▶ SPEAKING ──unvoiced──▶ STOPPING
      ▲                  │ unvoiced                            ▲   voiced            │
      └──────────────────┘                                     └─────────────────────┤
      ▲                                                                              │
      └──── end_silence frames unvoiced (SpeechEnded / UtteranceTooShort) ───────────┘

`Vad.feed` takes exactly one frame (20 ms of 8 kHz 16-bit PCM by default) and returns the events
that frame caused. Every decision is a count of frames, so the behaviour depends only on the
audio, never on wall-clock time; frame *n* covers [n·frame_ms, (n+1)·frame_ms) on the
detector's own timeline. Async gateway code wraps it.

A frame is *voiced* when its level (dBFS) reaches the start threshold; once an utterance has
started, frames down to `hysteresis_db` below that still count as voiced, so the tail of a
syllable does not start the end-of-speech count early. With `adaptive_floor`, the start threshold
becomes max(`start_threshold_dbfs`, noise floor + `noise_margin_db`), where the noise floor
follows the frame level down quickly and up slowly (minimum tracking), so steady line noise
stops counting as speech after a second or two.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from voice.audio.frames import FRAME_MS, SAMPLE_RATE, SAMPLE_WIDTH, dbfs


class VadState(Enum):
    QUIET = "quiet"
    STARTING = "starting"
    SPEAKING = "speaking"
    STOPPING = "stopping"


@dataclass(frozen=True, slots=True)
class VadParams:
    """Tuning of the detector; all durations are rounded up to whole frames."""

    start_threshold_dbfs: float = -40.0
    hysteresis_db: float = 6.0
    min_speech_ms: int = 100  # voiced run that confirms a start
    end_silence_ms: int = 600  # unvoiced run that ends an utterance
    # Unvoiced run after which a pause is reported (SpeechPaused, once per pause) so that a
    # short answer can be decoded while the end is awaited; 0: never.
    pause_ms: int = 0
    min_utterance_ms: int = 200  # shorter confirmed utterances → UtteranceTooShort
    max_utterance_s: float = 15.0  # longer ones are cut (SpeechEnded with truncated=True)
    pre_roll_ms: int = 200  # audio kept from before the start
    post_roll_ms: int = 200  # audio kept after the last voiced frame
    adaptive_floor: bool = False
    noise_margin_db: float = 12.0
    initial_noise_floor_dbfs: float = -70.0
    noise_floor_rise_ms: int = 2000  # time constant while the level is above the floor
    noise_floor_fall_ms: int = 100  # time constant while it is below
    frame_ms: int = FRAME_MS
    sample_rate: int = SAMPLE_RATE

    def __post_init__(self) -> None:
        for name in ("min_speech_ms", "end_silence_ms", "frame_ms", "sample_rate"):
            if getattr(self, name) <= 0:
                raise ValueError(f"VadParams.{name} must be > 0, got {getattr(self, name)}")
        for name in ("min_utterance_ms", "pre_roll_ms", "post_roll_ms", "hysteresis_db"):
            if getattr(self, name) < 0:
                raise ValueError(f"VadParams.{name} must be >= 0, got {getattr(self, name)}")
        if self.pause_ms < 0 or (self.pause_ms and self.pause_ms >= self.end_silence_ms):
            raise ValueError("VadParams.pause_ms must be 0 or shorter than end_silence_ms")
        if self.max_utterance_s * 1000 < self.min_speech_ms:
            raise ValueError("VadParams.max_utterance_s must cover at least min_speech_ms")
        if self.noise_floor_rise_ms <= 0 or self.noise_floor_fall_ms <= 0:
            raise ValueError("VadParams noise floor time constants must be > 0")

    def frames(self, ms: float) -> int:
        return max(0, math.ceil(ms / self.frame_ms))

    @property
    def frame_bytes(self) -> int:
        return self.sample_rate * self.frame_ms // 1000 * SAMPLE_WIDTH


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """Speech confirmed; `at_ms` is the start of its first voiced frame."""

    at_ms: int


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    """An utterance: `at_ms` is the end of its last voiced frame, `duration_ms` runs from the
    start. `audio` adds the pre-roll before and the post-roll after. `truncated` marks a cut at
    `max_utterance_s` (the speaker may still be talking)."""

    at_ms: int
    duration_ms: int
    audio: bytes = field(repr=False)
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class SpeechPaused:
    """The speaker has been silent `pause_ms` inside an utterance, which may yet go on: the
    fields are those `SpeechEnded` would have if it ended here (audio up to now)."""

    at_ms: int
    duration_ms: int
    audio: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class UtteranceTooShort:
    """A confirmed start whose utterance ended before `min_utterance_ms` (cough, click)."""

    at_ms: int
    duration_ms: int


VadEvent = SpeechStarted | SpeechPaused | SpeechEnded | UtteranceTooShort


class Vad:
    def __init__(self, params: VadParams | None = None) -> None:
        self.params = params or VadParams()
        p = self.params
        self._min_speech = p.frames(p.min_speech_ms)
        self._end_silence = p.frames(p.end_silence_ms)
        self._pause = p.frames(p.pause_ms)
        self._min_utterance_ms = p.min_utterance_ms
        self._max_frames = max(self._min_speech, p.frames(p.max_utterance_s * 1000))
        self._post_roll = p.frames(p.post_roll_ms)
        self._rise = 1.0 - math.exp(-p.frame_ms / p.noise_floor_rise_ms)
        self._fall = 1.0 - math.exp(-p.frame_ms / p.noise_floor_fall_ms)
        self._history: deque[bytes] = deque(maxlen=p.frames(p.pre_roll_ms) or 1)
        self.reset()

    def reset(self) -> None:
        self.state = VadState.QUIET
        self.frame_index = 0
        self.noise_floor_dbfs = self.params.initial_noise_floor_dbfs
        self._history.clear()
        self._buffer: list[bytes] = []
        self._buffer_first = 0  # frame index of _buffer[0]
        self._start = 0  # frame index of the first voiced frame
        self._last_voiced = 0
        self._run = 0  # voiced run in STARTING, unvoiced run in STOPPING

    def resume_at(self, frame_index: int) -> None:
        """Listen again from frame *frame_index* after a gap in the audio (the frames went
        elsewhere, e.g. to a bridged agent): any utterance under way is forgotten, and the
        detector's clock jumps ahead so that its times stay the call's.  The noise floor
        is kept: it is the same line."""
        if frame_index < self.frame_index:
            raise ValueError(f"the VAD's clock cannot go back ({self.frame_index} → {frame_index})")
        floor = self.noise_floor_dbfs
        self.reset()
        self.noise_floor_dbfs = floor
        self.frame_index = frame_index

    @property
    def start_threshold_dbfs(self) -> float:
        p = self.params
        if not p.adaptive_floor:
            return p.start_threshold_dbfs
        return max(p.start_threshold_dbfs, self.noise_floor_dbfs + p.noise_margin_db)

    def feed(self, pcm: bytes) -> list[VadEvent]:
        """Process one frame; return the events it caused (usually none)."""
        if len(pcm) != self.params.frame_bytes:
            raise ValueError(f"VAD frames are {self.params.frame_bytes} bytes, got {len(pcm)}")
        level = dbfs(pcm)
        threshold = self.start_threshold_dbfs
        index = self.frame_index
        events: list[VadEvent] = []

        if self.state in (VadState.QUIET, VadState.STARTING):
            voiced = level >= threshold
        else:
            voiced = level >= threshold - self.params.hysteresis_db

        if self.state is VadState.QUIET:
            if voiced:
                self.state = VadState.STARTING
                self._buffer = [*self._history, pcm] if self.params.pre_roll_ms else [pcm]
                self._buffer_first = index - (len(self._buffer) - 1)
                self._start = self._last_voiced = index
                self._run = 1
                events += self._confirm_start()
        elif self.state is VadState.STARTING:
            if voiced:
                self._buffer.append(pcm)
                self._last_voiced = index
                self._run += 1
                events += self._confirm_start()
            else:
                self.state = VadState.QUIET
                self._buffer = []
        else:
            self._buffer.append(pcm)
            if voiced:
                self.state = VadState.SPEAKING
                self._last_voiced = index
                self._run = 0
            else:
                self.state = VadState.STOPPING
                self._run += 1
            if self.state is VadState.STOPPING and self._run >= self._end_silence:
                events.append(self._end(truncated=False))
            elif self.state is VadState.STOPPING and self._run == self._pause:
                events.append(self._paused())
            elif index - self._start + 1 >= self._max_frames:
                events.append(self._end(truncated=True))

        self._update_floor(level)
        self._history.append(pcm)
        self.frame_index += 1
        return events

    def flush(self) -> list[VadEvent]:
        """End of audio (hang-up): close an utterance that is under way."""
        if self.state in (VadState.SPEAKING, VadState.STOPPING):
            return [self._end(truncated=False)]
        self.state = VadState.QUIET
        self._buffer = []
        return []

    def cut(self) -> list[VadEvent]:
        """End the utterance now if the speaker is pausing (the caller decided the pause is
        its end); nothing if they are speaking again or no utterance is under way."""
        if self.state is VadState.STOPPING:
            return [self._end(truncated=False)]
        return []

    def _paused(self) -> SpeechPaused:
        frame_ms = self.params.frame_ms
        end_ms = (self._last_voiced + 1) * frame_ms
        start_ms = self._start * frame_ms
        return SpeechPaused(at_ms=end_ms, duration_ms=end_ms - start_ms,
                            audio=b"".join(self._buffer))

    def _confirm_start(self) -> list[VadEvent]:
        if self._run < self._min_speech:
            return []
        self.state = VadState.SPEAKING
        self._run = 0
        return [SpeechStarted(at_ms=self._start * self.params.frame_ms)]

    def _end(self, *, truncated: bool) -> VadEvent:
        frame_ms = self.params.frame_ms
        last = self.frame_index if truncated else self._last_voiced
        start_ms = self._start * frame_ms
        end_ms = (last + 1) * frame_ms
        keep_until = min(self.frame_index, last + self._post_roll)  # inclusive frame index
        audio = b"".join(self._buffer[: keep_until - self._buffer_first + 1])
        self.state = VadState.QUIET
        self._buffer = []
        self._run = 0
        duration = end_ms - start_ms
        if not truncated and duration < self._min_utterance_ms:
            return UtteranceTooShort(at_ms=end_ms, duration_ms=duration)
        return SpeechEnded(at_ms=end_ms, duration_ms=duration, audio=audio, truncated=truncated)

    def _update_floor(self, level: float) -> None:
        if not self.params.adaptive_floor:
            return
        rate = self._fall if level < self.noise_floor_dbfs else self._rise
        self.noise_floor_dbfs += rate * (level - self.noise_floor_dbfs)
