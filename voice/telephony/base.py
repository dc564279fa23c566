"""The telephony leg as the rest of the gateway sees it: our interface, not baresip's.

A `Telephony` (one per gateway process) dials and hands out `Leg`s.  A `Leg` is one SIP
dialog with 20 ms frames of 8 kHz 16-bit mono PCM in both directions:

- audio in: `await leg.rx.get()` gives the next `Frame` the far end sent (caller audio);
- audio out: `leg.play(pcm)` queues bot audio, `leg.stop_playback()` drops what is queued
  (barge-in), `leg.playing` says whether queued audio is still going out;
- every frame actually sent (silence included once the call is up) and every frame
  received is reported to `leg.on_frame(direction, frame)` listeners, which is what the
  stereo recorder and the benchmarks hang on;
- control events arrive on `leg.events`: `Ringing`, `EarlyMedia`, `Answered`, `Dtmf`,
  `Hangup`.

Dial results follow DESIGN.md.  A failed dial is not an exception: `wait_answer()` returns
a `DialOutcome` whose `result` is one of `DIAL_RESULTS`, with the SIP status and reason and
the early-media audio that came before it (for carrier announcements).
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from voice.audio.frames import Frame

DIAL_RESULTS = ("answered", "busy", "no_answer", "rejected", "invalid_number", "suspended",
                "powered_off", "failed")
Direction = Literal["rx", "tx"]
HangupBy = Literal["remote", "local", "rtp_timeout", "transfer", "error"]


@dataclass(frozen=True)
class Ringing:
    at_ms: float


@dataclass(frozen=True)
class EarlyMedia:
    at_ms: float


@dataclass(frozen=True)
class Answered:
    at_ms: float


@dataclass(frozen=True)
class Dtmf:
    digit: str
    at_ms: float
    duration_ms: int = 0


@dataclass(frozen=True)
class Hangup:
    by: HangupBy
    reason: str = ""
    at_ms: float = 0.0


LegEvent = Ringing | EarlyMedia | Answered | Dtmf | Hangup


@dataclass(frozen=True)
class DialOutcome:
    """How a dial ended before any conversation: `answered` or why not."""

    result: str
    sip_status: int | None = None
    reason: str = ""
    early_media: bytes = b""  # PCM heard before the final answer (announcements)
    setup_ms: float | None = None  # dial → answer

    def __post_init__(self) -> None:
        if self.result not in DIAL_RESULTS:
            raise ValueError(f"unknown dial result {self.result!r}")


_Q850 = re.compile(r"cause\s*=\s*(\d+)", re.IGNORECASE)
# Q.850 causes that pin the result down whatever the SIP status (ITU-T Q.850 table 1).
Q850_RESULTS = {1: "invalid_number", 3: "invalid_number", 17: "busy", 18: "no_answer",
                19: "no_answer", 20: "powered_off", 21: "rejected", 22: "invalid_number",
                28: "invalid_number"}


def classify_failure(status: int | None, reason: str = "") -> str:
    """The dial result for a final SIP failure (*status* None: our own ring timeout)."""
    cause = _Q850.search(reason or "")
    if cause and int(cause.group(1)) in Q850_RESULTS:
        return Q850_RESULTS[int(cause.group(1))]
    if status is None or status in (408, 480, 487):
        return "no_answer"
    if status in (486, 600):
        return "busy"
    if status in (603, 403):
        return "rejected"
    if status in (404, 604, 484, 410):
        return "invalid_number"
    return "failed"


def free_port(host: str = "127.0.0.1") -> int:
    """A SIP listen port: free for UDP and TCP on *host*, and so is the port above it.

    baresip listens for SIP on the port for UDP and TCP and on the port above it for TLS,
    so both must be free.  The candidates lie below Linux's ephemeral range (32768 and up),
    where the kernel never hands a port to an outgoing connection between our check and
    the stack's bind (a CI run once lost the TLS port that way).
    """
    rng = random.Random()
    for _ in range(1000):
        port = rng.randrange(20000, 32000, 2)
        if all(_bindable(host, p, kind) for p in (port, port + 1)
               for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM)):
            return port
    raise OSError(f"no free SIP port pair on {host} in 20000-32000")


def _bindable(host: str, port: int, kind: socket.SocketKind) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


FrameListener = Callable[[Direction, Frame], None]


class Leg(ABC):
    """One call leg.  Created by `Telephony.dial`; the session owns it afterwards."""

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self.rx: asyncio.Queue[Frame] = asyncio.Queue(maxsize=500)  # 10 s, drop oldest
        self.events: asyncio.Queue[LegEvent] = asyncio.Queue()
        self.closed = asyncio.Event()
        self.hangup_event: Hangup | None = None
        self.peer: Leg | None = None  # the leg this one is bridged to, while it is
        self._listeners: list[FrameListener] = []

    # -- frames -------------------------------------------------------------------
    def on_frame(self, listener: FrameListener) -> None:
        self._listeners.append(listener)

    def off_frame(self, listener: FrameListener) -> None:
        """Stop reporting frames to *listener* (an agent who stops listening in)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _emit_frame(self, direction: Direction, frame: Frame) -> None:
        for listener in self._listeners:
            listener(direction, frame)
        if direction == "rx":
            if self.rx.full():
                self.rx.get_nowait()
            self.rx.put_nowait(frame)

    def _emit(self, event: LegEvent) -> None:
        if isinstance(event, Hangup):
            if self.closed.is_set():
                return
            self.hangup_event = event
            self.closed.set()
        self.events.put_nowait(event)

    # -- control ------------------------------------------------------------------
    @abstractmethod
    async def wait_answer(self, timeout: float) -> DialOutcome:
        """Wait until the far end answers or the dial fails; never raises for a failure."""

    @abstractmethod
    def play(self, pcm: bytes) -> None:
        """Queue bot audio (8 kHz s16 mono; any length, sent as 20 ms frames)."""

    @abstractmethod
    def stop_playback(self) -> None:
        """Drop queued bot audio now (barge-in)."""

    @property
    @abstractmethod
    def playing(self) -> bool:
        """True while queued bot audio is still being sent."""

    def mix_in(self, pcm: bytes) -> None:
        """Send *pcm* over whatever this leg sends next (the bot's audio, a bridged
        party's, or silence): a supervisor whispering or barging in (voice/audio/mixing.py).
        Unlike `play` it does not make the leg `playing`."""
        raise NotImplementedError(f"{type(self).__name__} cannot mix audio in")

    @abstractmethod
    async def send_dtmf(self, digits: str) -> None: ...

    @abstractmethod
    async def transfer(self, uri: str) -> bool:
        """Blind transfer (REFER); True if the far end accepted it."""

    @abstractmethod
    async def hangup(self) -> None:
        """End the call from our side (CANCEL before answer, BYE after); idempotent."""

    async def bridge(self, other: Leg, *, until: asyncio.Event | None = None) -> None:
        """Relay audio both ways between this leg and *other* until either hangs up, or
        until *until* is set: then only *other* is hung up and this leg goes on (the agent
        handed the call back to the bot: voice/call/desk_offer.py).

        Frames keep flowing through both legs' `on_frame` listeners, so a recorder on the
        customer leg keeps recording the agent's voice (tx) and the customer (rx).
        """
        async def relay(src: Leg, dst: Leg) -> None:
            while not (src.closed.is_set() or dst.closed.is_set()):
                try:
                    frame = await asyncio.wait_for(src.rx.get(), 0.2)
                except TimeoutError:
                    continue
                dst.play(frame.pcm)

        tasks = [asyncio.create_task(relay(self, other)), asyncio.create_task(relay(other, self))]
        closed = [asyncio.create_task(self.closed.wait()), asyncio.create_task(other.closed.wait())]
        if until is not None:
            closed.append(asyncio.create_task(until.wait()))
        self.peer, other.peer = other, self  # a supervisor's whisper finds the agent here
        try:
            await asyncio.wait(closed, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.peer = other.peer = None
            for task in tasks + closed:
                task.cancel()
            if until is None or not until.is_set():
                await self.hangup()
            await other.hangup()


@dataclass(frozen=True)
class DialRequest:
    uri: str  # full SIP URI (campaign trunk template applied)
    call_id: str  # ours, for logs; also sent as X-Waihu-Call-Id
    caller_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    username: str | None = None  # digest credentials of the trunk, if it asks (401/407)
    password: str | None = field(default=None, repr=False)  # never in a log line


class Telephony(ABC):
    """One per gateway process: owns the SIP stack."""

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def dial(self, request: DialRequest) -> Leg:
        """Send the INVITE and return the leg at once; `await leg.wait_answer(t)` next."""

    @abstractmethod
    async def close(self) -> None: ...
