"""The recorder: every frame in and out of the leg into one stereo WAV written as the call
goes, and the bot's timing as the caller heard it.

It hangs on the leg's `on_frame` (caller left, bot right: exactly what went over RTP, the
agent's voice included once bridged) and measures on the call timeline when the first bot
audio went out after the answer and, after each caller input (`CallerDone`), how long the
bot took to answer (the response gap: end of the caller's words to the bot's first voiced
frame).

The recording is on disk from the answer on (`voice.audio.wavstream`): `<call_id>.wav.partial`
under recordings_dir/YYYY-MM-DD/.  The event loop only puts frames in memory; the
recording's own thread takes, every `flush_s`, the slots older than `lag_s` (both
directions' frames of a slot are there by then) and writes them straight to the kernel, so
a killed process loses at most the last two seconds or so; it fsyncs every `fsync_s` (a
power cut).  A slow disk only makes the frames wait longer in memory: nothing is dropped
and the audio never waits for the disk.  `finish` writes the rest, fixes the header,
renames the file to `<call_id>.wav` and returns its path and sha256, whatever ended the
call (blocking: run it off the loop).  A partial file a crash left is finished by
`voice.call.recovery` at the gateway's next start.

In: `CallerDone` (consumed); every other event passes on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from voice.audio.frames import FRAME_MS, Frame
from voice.audio.wavstream import BOT, CALLER, Block, Patch, StereoSlots, WavFile
from voice.call.events import CallerDone, Event, Processor
from voice.call.timeline import Timeline
from voice.telephony.base import Direction, Leg

log = logging.getLogger("waihu.recorder")


def recording_path(folder: Path, call_id: str, day: datetime) -> Path:
    """Where a call's recording goes: *folder*/YYYY-MM-DD/<call_id>.wav."""
    return folder / day.strftime("%Y-%m-%d") / f"{call_id}.wav"


class RecordingFailed(RuntimeError):
    """The recording could not be written (logged when it happened)."""


class Recorder(Processor):
    def __init__(self, timeline: Timeline, target: Path, *, lag_s: float = 1.0,
                 flush_s: float = 1.0, fsync_s: float = 10.0) -> None:
        super().__init__()
        self.timeline = timeline
        self.target = target
        self.first_audio_ms: float | None = None  # answer → first bot audio frame written
        self.response_gaps_ms: list[float] = []  # caller end → bot audio
        self._caller_end_ms: float | None = None
        # Shared with the writer thread, under the lock: frames come in on the loop, the
        # writer takes them out.
        self._lock = threading.Lock()
        self._slots = StereoSlots()
        self._patches: list[Patch] = []
        self._lag = max(1, round(lag_s * 1000 / FRAME_MS))
        self._ending = threading.Event()
        self._writer = _Writer(target, timeline.call_id, self._take, flush_s=flush_s,
                               fsync_s=fsync_s, ending=self._ending)

    def attach(self, leg: Leg) -> Recorder:
        leg.on_frame(self.on_frame)
        return self

    def on_frame(self, direction: Direction, frame: Frame) -> None:
        with self._lock:
            if not self._ending.is_set():
                patch = self._slots.add(CALLER if direction == "rx" else BOT,
                                        frame.timestamp_ms, frame.pcm)
                if patch is not None:
                    self._patches.append(patch)
        if direction == "rx":
            return
        if self.first_audio_ms is None and any(frame.pcm):
            self.first_audio_ms = self.timeline.now_ms()
        if self._caller_end_ms is not None and any(frame.pcm):
            self.response_gaps_ms.append(self.timeline.now_ms() - self._caller_end_ms)
            self._caller_end_ms = None

    def _take(self, everything: bool) -> list[Block | Patch]:
        """What the writer may write now (on the writer's thread)."""
        with self._lock:
            block = self._slots.take_all() if everything else \
                self._slots.take_older_than(self._lag)
            patches, self._patches = self._patches, []
        return [*([block] if block is not None else []), *patches]

    async def process(self, event: Event) -> None:
        if isinstance(event, CallerDone):
            self._caller_end_ms = event.at_ms
            return
        await self.push(event)

    @property
    def duration_ms(self) -> int:
        return self._slots.duration_ms

    def finish(self) -> tuple[str, str]:
        """Write the rest and finish the file: its final path and sha256 (blocking: run it
        off the loop).  Raises `RecordingFailed` if the recording could not be written."""
        with self._lock:
            self._ending.set()  # frames after this are not recorded
        return self._writer.finish()


class _Writer:
    """The recording's own thread: the only one that touches its file."""

    def __init__(self, target: Path, call_id: str,
                 take: Callable[[bool], list[Block | Patch]], *, flush_s: float,
                 fsync_s: float, ending: threading.Event) -> None:
        self.target = target
        self.call_id = call_id
        self.take = take
        self.flush_s = flush_s
        self.fsync_s = fsync_s
        self.ending = ending
        self._sha256: str | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"recorder-{call_id[:8]}",
                                        daemon=True)
        self._thread.start()

    def finish(self) -> tuple[str, str]:
        self._thread.join()
        if self._error is not None or self._sha256 is None:
            raise RecordingFailed(f"{self.target}: {self._error}") from self._error
        return str(self.target), self._sha256

    def _run(self) -> None:
        try:
            wav = WavFile(self.target)
        except BaseException as exc:
            self._error = exc
            log.exception("call.recording_open_failed call_id=%s path=%s", self.call_id,
                          self.target)
            return
        log.info("call.recording_started call_id=%s path=%s", self.call_id, wav.partial)
        try:
            synced = time.monotonic()
            while True:
                ending = self.ending.wait(self.flush_s)
                for item in self.take(ending):
                    if isinstance(item, Block):
                        wav.write(item)
                    else:
                        wav.patch(item)
                if ending:
                    break
                if time.monotonic() - synced >= self.fsync_s:
                    wav.sync()
                    synced = time.monotonic()
            self._sha256 = wav.finish()
        except BaseException as exc:
            self._error = exc
            log.exception("call.recording_write_failed call_id=%s path=%s: left partial",
                          self.call_id, self.target)
            wav.close()
