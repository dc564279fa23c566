"""Endpointing: the caller's frames through the pure VAD state machine.

`voice.audio.vad.Vad` decides, frame by frame and without a clock, where an utterance
starts and ends; this stage only drives it and keeps what the rest of the call asks of it:
whether the caller is speaking now (the silence timer waits, a disclosure notes the
talk-over) and where the current utterance started (the announcement check).

Out, for each `CallerAudio`: the VAD events that frame caused (`SpeechStarted`,
`SpeechPaused`, `SpeechEnded`, `UtteranceTooShort`), then the frame itself, for ASR.  `flush`
ends an utterance the hang-up cut short (the VAD never heard its end).

Adaptive endpointing: a later stage that has already understood a pause as a complete
short answer asks for the end (`end_at_pause`); it is taken after the next frame, in the
frame's own order, and only if the caller is still silent then.
"""

from __future__ import annotations

from voice.audio.vad import Vad, VadParams
from voice.call.events import (
    CallerAudio,
    Event,
    Processor,
    SpeechEnded,
    SpeechStarted,
    UtteranceTooShort,
)


class Endpointing(Processor):
    def __init__(self, params: VadParams) -> None:
        super().__init__()
        self.vad = Vad(params)
        self.speaking = False  # between a confirmed start and its end
        self.speech_start_ms = 0  # the latest utterance's start
        self._end_requested = False

    def end_at_pause(self) -> None:
        """End the utterance at the next frame if the caller is still pausing."""
        self._end_requested = True

    def resume(self, at_ms: float) -> None:
        """The caller's frames come here again after a gap (a bridge to an agent read
        them): detection starts afresh at *at_ms* on the call's clock, so that what is
        said from now on is timed where the recording holds it and nothing said before
        the gap runs on into an utterance."""
        self.speaking = False
        self._end_requested = False
        self.vad.resume_at(max(self.vad.frame_index, int(at_ms) // self.vad.params.frame_ms))

    async def process(self, event: Event) -> None:
        if not isinstance(event, CallerAudio):
            await self.push(event)
            return
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
