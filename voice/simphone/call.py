"""One simphone call: its options, the state the other simphone modules share, and the record
it leaves behind.

Pure data, no behaviour: `SimPhoneOptions` (timings), `CallRecord` with its `Span` and
`OwnAudio` entries (what the voice benchmark reads), and `Call`, the per-call state that the
SIP transactions (`transactions`), persona playback (`playback`) and listening (`listening`)
each read and update, tied together by `phone.SimPhone`.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from bot.personas import Persona
from voice.audio.frames import StereoRecorder
from voice.audio.vad import VadParams
from voice.simphone.rtp import RtpSession
from voice.simphone.sip import SipRequest

if TYPE_CHECKING:  # type-only: those modules import this one
    from voice.simphone.listening import BotListener
    from voice.simphone.transactions import InviteTx

T1 = 0.5
T2 = 4.0


@dataclass(frozen=True)
class SimPhoneOptions:
    """Timing of the virtual customer. Durations in seconds unless named `_ms`."""

    bot_silence_ms: int = 700  # the bot has stopped after this much silence
    barge_in_delay_s: float = 0.8  # a barge_in turn starts this long after the bot does
    idle_hangup_s: float = 20.0  # nothing heard from the bot this long → hang up
    max_call_s: float = 180.0  # hard cap from the INVITE
    announce_repeat: int = 2
    announce_gap_s: float = 0.6
    speech_threshold_dbfs: float = -40.0  # level of a received frame that counts as audio
    dtmf_duration_ms: int = 100
    dtmf_gap_ms: int = 100
    t1: float = T1
    # Immediate finals (404, 486, 488) wait this long, as a real exchange would: a final
    # arriving ~1 ms after the INVITE is lost by baresip-python 0.5.2a3 (its Call object only
    # subscribes to events after `dial()` returns, so the CALL_CLOSED goes nowhere).
    final_delay_s: float = 0.05

    def vad_params(self) -> VadParams:
        return VadParams(start_threshold_dbfs=self.speech_threshold_dbfs,
                         end_silence_ms=self.bot_silence_ms, min_speech_ms=60,
                         min_utterance_ms=100, max_utterance_s=60.0, pre_roll_ms=0,
                         post_roll_ms=0)


# --- what a call leaves behind --------------------------------------------------------------


@dataclass
class Span:
    start_ms: float
    end_ms: float | None = None


@dataclass
class OwnAudio:
    """Something the simphone sent: an utterance (`say`, `barge_in`, `announcement`) or DTMF.
    `bot_audio_after_ms` is the first non-silent packet heard after `end_ms`;
    `gap_ms` = the difference (the bot's response gap)."""

    kind: str
    text: str
    start_ms: float
    end_ms: float
    bot_audio_after_ms: float | None = None
    gap_ms: float | None = None


@dataclass
class CallRecord:
    """One call as the simphone saw it. All `*_ms` are milliseconds of the monotonic clock
    since the INVITE arrived; subtract `answered_ms` for times since the answer."""

    number: str
    persona: str
    dial: str
    dial_result: str
    call_id: str
    started_at: str  # wall clock (UTC, ISO 8601) of the INVITE
    final_status: int | None = None
    codec: str | None = None
    answered_ms: float | None = None
    first_audio_ms: float | None = None  # first non-silent RTP packet after the answer
    greeting_latency_ms: float | None = None  # first_audio_ms - answered_ms
    bot_speech: list[Span] = field(default_factory=list)
    own_audio: list[OwnAudio] = field(default_factory=list)
    dtmf_received: list[str] = field(default_factory=list)
    hangup_by: str | None = None  # 'bot' | 'simphone' | 'caller' (CANCEL) | None
    hangup_reason: str | None = None
    ended_ms: float | None = None
    recording: str | None = None
    turns_done: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --- the call under way -----------------------------------------------------------------------


@dataclass
class Call:
    """One call's state: its INVITE transaction and dialog (`transactions`), its media and
    persona (`phone`, `playback`), what it hears (`listening`) and its `record`."""

    persona: Persona
    number: str
    invite: SipRequest
    tx: InviteTx
    local_tag: str
    t0: float
    record: CallRecord
    remote_target: str
    route_set: list[str]
    local_cseq: int = field(default_factory=lambda: secrets.randbelow(10000) + 1)
    rtp: RtpSession | None = None
    answer_sdp: bytes = b""
    confirmed: bool = False  # 200 sent (dialog confirmed once ACKed)
    ended: bool = False
    task: asyncio.Task[None] | None = None
    listener: BotListener | None = None
    recorder: StereoRecorder | None = None
    rx_anchor_ms: float | None = None

    def ms(self, t: float) -> float:
        return round((t - self.t0) * 1000, 1)


__all__ = ["T1", "T2", "Call", "CallRecord", "OwnAudio", "SimPhoneOptions", "Span"]
