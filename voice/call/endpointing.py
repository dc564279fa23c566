"""Endpointing: the caller's frames through the pure VAD state machine.

`voice.audio.vad.Vad` decides, frame by frame and without a clock, where an utterance
starts and ends; this stage only drives it and keeps what the rest of the call asks of it:
whether the caller is speaking now (the silence timer waits, a disclosure notes the
talk-over) and where the current utterance started (the announcement check).

Out, for each `CallerAudio`: the VAD events that frame caused (`SpeechStarted`,
`SpeechPaused`, `SpeechEnded`, `UtteranceTooShort`), then the frame itself, for ASR.  `flush`
ends an utterance the hang-up cut short (the VAD never heard its end).

The detector's clock is the recording's: each frame carries where the leg stamped it, and
frames the line never delivered (the audio clock skips a stall rather than bursting) are
fed as the silence the recording holds there, so that an utterance's times, which the
consent ledger binds to the recording, point at its audio.  A longer gap (`MAX_FILL_MS`)
ends the utterance under way and starts detection afresh at the frame's own time; so does
the first frame after `resume` (a bridge read the frames), which forgets the utterance.
Frames stamped earlier than the detector's clock are taken as they come.

Adaptive endpointing: a later stage that has already understood a pause as a complete
short answer asks for the end (`end_at_pause`); it is taken after the next frame, in the
frame's own order, and only if the caller is still silent then.
"""

from __future__ import annotations

from voice.audio.frames import SILENCE_FRAME
from voice.audio.vad import Vad, VadParams
from voice.call.events import (
    CallerAudio,
    Event,
    Processor,
    SpeechEnded,
    SpeechStarted,
    UtteranceTooShort,
)

MAX_FILL_MS = 1000  # a longer gap in the caller's frames restarts detection


class Endpointing(Processor):
    def __init__(self, params: VadParams) -> None:
        super().__init__()
        self.vad = Vad(params)
        self.speaking = False  # between a confirmed start and its end
        self.speech_start_ms = 0  # the latest utterance's start
        self._end_requested = False
        self._restart = False  # the next frame restarts detection at its own time

    def end_at_pause(self) -> None:
        """End the utterance at the next frame if the caller is still pausing."""
        self._end_requested = True

    def resume(self) -> None:
        """The caller's frames come here again after a gap (a bridge to an agent read
        them): nothing said before it runs on into an utterance, and detection starts
        afresh at the next frame's own time."""
        self.speaking = False
        self._end_requested = False
        self.vad.resume_at(self.vad.frame_index)
        self._restart = True

    async def process(self, event: Event) -> None:
        if not isinstance(event, CallerAudio):
            await self.push(event)
            return
        if event.at_ms is not None:
            await self._keep_time(event.at_ms)
        await self._frame(event)

    async def _keep_time(self, at_ms: int) -> None:
        frame_ms = self.vad.params.frame_ms
        index = at_ms // frame_ms
        missing = index - self.vad.frame_index
        if self._restart or missing * frame_ms > MAX_FILL_MS:
            if not self._restart:  # a stall: what the caller said before it still counts
                await self.flush()
            self._restart = False
            self.speaking = False
            self.vad.resume_at(max(index, self.vad.frame_index))
            return
        for _ in range(missing):  # the line's silence where no frame came
            await self._frame(CallerAudio(SILENCE_FRAME))

    async def _frame(self, event: CallerAudio) -> None:
        vad_events = self.vad.feed(event.pcm)
        if self._end_requested:  # after the frame: a voiced one means the caller went on
            self._end_requested = False
            vad_events += self.vad.cut()
        for vad_event in vad_events:
            if isinstance(vad_event, SpeechStarted):
                self.speaking = True
                self.speech_start_ms = vad_event.at_ms
            elif isinstance(vad_event, SpeechEnded | UtteranceTooShort):
                self.speaking = False
            await self.push(vad_event)
        await self.push(event)

    async def flush(self) -> None:
        """End of audio: an utterance under way ends here (a too short one is dropped)."""
        self._end_requested = False
        for vad_event in self.vad.flush():
            if isinstance(vad_event, SpeechEnded):
                self.speaking = False
                await self.push(vad_event)
