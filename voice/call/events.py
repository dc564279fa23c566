"""The typed events that join the call's processors (after pipecat's frames).

A call is a flow of small frozen events.  The caller's side comes in as `CallerAudio`
(one 20 ms frame), `Digit` (a DTMF key) and `HungUp`; the endpointing turns audio into
`SpeechStarted` / `SpeechPaused` / `SpeechEnded` / `UtteranceTooShort` (the pure VAD's own
event types);
ASR turns an utterance into `Transcribed`; the announcement screen turns that into a
`CallerInput` (or `AnnouncementHeard`), as the DTMF collector does with keyed digits; the
dialogue turn turns a `CallerInput` into the bot's `BotReply` (`bot.channel`), which the
speaker says, reporting `Interruption`s.  `CallerDone` marks where the bot's response gap
starts; `ListenFor` is what the bot's `listen` payload asks of the next turn.

`Processor` is the small base every stage shares: `process` takes one event, `push` hands
an event to whatever the session wired downstream.  A stage passes on what it does not
consume, so a chain stays a chain and each stage is testable between a source and a sink.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from voice.asr.announce import Announcement
from voice.asr.base import Hints, Transcript
from voice.audio.vad import SpeechEnded, SpeechPaused, SpeechStarted, UtteranceTooShort
from voice.telephony.base import HangupBy

__all__ = [
    "AnnouncementHeard", "CallerAudio", "CallerDone", "CallerHungUp", "CallerInput", "Digit",
    "Event", "HungUp", "InputKind", "Interruption", "ListenFor", "Processor", "Push", "SpeechEnded",
    "SpeechPaused", "SpeechStarted", "Transcribed", "UtteranceTooShort", "chain",
]

InputKind = Literal["speech", "dtmf", "silence", "unclear"]


@dataclass(frozen=True, slots=True)
class CallerAudio:
    """One 20 ms frame the caller sent (8 kHz s16 mono); `at_ms`, where the leg stamped it
    on the call's clock (the recording's), when known."""

    pcm: bytes
    at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Digit:
    """One DTMF key the caller pressed."""

    digit: str


@dataclass(frozen=True, slots=True)
class HungUp:
    """The leg ended (the caller's BYE, an RTP timeout, our own hang-up)."""

    by: HangupBy
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Interruption:
    """The caller cut the bot off (`by` speech or a key): queued audio was dropped."""

    by: Literal["speech", "dtmf"]
    stop_ms: float  # how long stopping the playback took


@dataclass(frozen=True, slots=True)
class Transcribed:
    """ASR's answer for one utterance (None: the decode failed) and where it sat on the
    call timeline."""

    transcript: Transcript | None
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class CallerInput:
    """One input the dialogue takes as the caller's reply."""

    kind: InputKind
    text: str = ""
    transcript: Transcript | None = None
    at_ms: int = 0  # call timeline: when the caller started
    end_ms: int = 0

    @staticmethod
    def kind_heard(transcript: Transcript | None) -> InputKind:
        """What an utterance is as input: `unclear` unless the engine heard words."""
        return ("unclear" if transcript is None or transcript.unclear or not transcript.text
                else "speech")


@dataclass(frozen=True, slots=True)
class CallerDone:
    """The caller finished an input (an utterance went to ASR, digits were collected):
    the bot's response gap is measured from *at_ms*."""

    at_ms: float


@dataclass(frozen=True, slots=True)
class AnnouncementHeard:
    """The far end is a carrier announcement, not a person."""

    kind: Announcement
    text: str
    start_ms: int


@dataclass(frozen=True, slots=True)
class ListenFor:
    """What the next turn listens for (the bot's `listen` payload, with defaults)."""

    hints: Hints = Hints()
    dtmf_max: int = 0
    timeout_s: float = 6.0

    @classmethod
    def from_payload(cls, listen: dict[str, Any], *, control_phrases: tuple[str, ...],
                     default_timeout_s: float) -> ListenFor:
        """The requests a caller may make anywhere (`control_phrases`) join the hints."""
        return cls(Hints.from_listen(listen).with_control(control_phrases),
                   int(listen.get("dtmf_max") or 0),
                   float(listen.get("timeout_s") or default_timeout_s))


class CallerHungUp(Exception):
    """The far end hung up during the conversation (raised to end the dialogue's loop)."""


Event = (CallerAudio | Digit | HungUp | SpeechStarted | SpeechPaused | SpeechEnded
         | UtteranceTooShort
         | Interruption | Transcribed | CallerInput | CallerDone | AnnouncementHeard)
Push = Callable[[Event], Awaitable[None]]


async def _nowhere(event: Event) -> None:
    """Until the session wires a stage, what it pushes goes nowhere."""


class Processor:
    """One stage of the call.  `process` takes an event; `push` passes one downstream.

    The default `process` passes every event on: a stage overrides it for the events it
    owns.  `push` is set by whoever wires the chain (the session, a test's sink)."""

    def __init__(self) -> None:
        self.push: Push = _nowhere

    def link(self, push: Push) -> None:
        self.push = push

    async def process(self, event: Event) -> None:
        await self.push(event)


def chain(*processors: Processor) -> None:
    """Link each stage's output to the next stage's input, in order."""
    for upstream, downstream in zip(processors, processors[1:], strict=False):
        upstream.link(downstream.process)
