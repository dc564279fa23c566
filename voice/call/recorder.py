"""The recorder: every frame in and out of the leg into one stereo WAV, and the bot's
timing as the caller heard it.

It hangs on the leg's `on_frame` (caller left, bot right: exactly what went over RTP, the
agent's voice included once bridged) and measures on the call timeline when the first bot
audio went out after the answer and, after each caller input (`CallerDone`), how long the
bot took to answer (the response gap: end of the caller's words to the bot's first voiced
frame).  `write` stores the WAV and returns its path and sha256, whatever ended the call.

In: `CallerDone` (consumed); every other event passes on.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from voice.audio.frames import Frame, StereoRecorder
from voice.call.events import CallerDone, Event, Processor
from voice.call.timeline import Timeline
from voice.telephony.base import Direction, Leg


class Recorder(Processor):
    def __init__(self, timeline: Timeline) -> None:
        super().__init__()
        self.timeline = timeline
        self.stereo = StereoRecorder()
        self.first_audio_ms: float | None = None  # answer → first bot audio frame written
        self.response_gaps_ms: list[float] = []  # caller end → bot audio
        self._caller_end_ms: float | None = None

    def attach(self, leg: Leg) -> Recorder:
        leg.on_frame(self.on_frame)
        return self

    def on_frame(self, direction: Direction, frame: Frame) -> None:
        if direction == "rx":
            self.stereo.add_caller(frame)
            return
        self.stereo.add_bot(frame)
        if self.first_audio_ms is None and any(frame.pcm):
            self.first_audio_ms = self.timeline.now_ms()
        if self._caller_end_ms is not None and any(frame.pcm):
            self.response_gaps_ms.append(self.timeline.now_ms() - self._caller_end_ms)
            self._caller_end_ms = None

    async def process(self, event: Event) -> None:
        if isinstance(event, CallerDone):
            self._caller_end_ms = event.at_ms
            return
        await self.push(event)

    @property
    def duration_ms(self) -> int:
        return self.stereo.duration_ms

    def write(self, folder: Path, call_id: str, day: datetime) -> tuple[str, str]:
        """The WAV under *folder*/YYYY-MM-DD/; its path and sha256 (blocking: run it off
        the loop)."""
        folder = folder / day.strftime("%Y-%m-%d")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{call_id}.wav"
        return str(path), self.stereo.write(path)
