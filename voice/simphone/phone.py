"""The simphone: a SIP UAS on UDP that answers every call as the dialled number's persona.

One UDP socket carries SIP for all calls; each call gets an `RtpSession` of its own. The dial
phase follows the persona's `dial` (format in `bot.personas`): ring and answer,
486, ring forever, 603, an operator announcement as early media before 404/480/486
(`announce:KIND`), or one played after a 200 OK and ended with a BYE
(`announce_answered:KIND`); after an answer its `turns` are played against what the bot is
heard to say (VAD on the received audio). Every call leaves a `CallRecord` with the timings
the voice benchmark reads.

RFC 3261 UAS behaviour kept: 100 Trying at once; a retransmitted INVITE gets the last response
again and never a second call; 2xx is retransmitted (T1 doubling to T2) until the ACK, and
after 64·T1 without one the call is hung up; non-2xx finals are retransmitted until their ACK;
CANCEL gets 200 and the INVITE 487; BYE in both directions with the dialog's tags, our own
CSeq and the route set from Record-Route; unknown numbers get 404, offers without G.711 488.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

from voice.audio.frames import FRAME_MS, Frame, StereoRecorder, dbfs
from voice.audio.vad import SpeechEnded, SpeechStarted, Vad, VadParams, VadState
from bot.personas import Persona
from voice.simphone.rtp import ReceivedFrame, RtpSession
from voice.simphone.sip import (
    REASONS,
    Sdp,
    SipMessage,
    SipRequest,
    SipResponse,
    SipUri,
    addr_uri,
    build_answer,
    negotiate,
    new_branch,
    new_tag,
    parse_message,
    response_to,
)
from voice.tts.cache import PromptCache
from voice.tts.espeak import Synthesizer
from voice.tts.kokoro import customer_voice

log = logging.getLogger("waihu.simphone")

ANNOUNCEMENTS: dict[str, tuple[str, int]] = {
    "invalid_number": ("您拨打的号码是空号，请查证后再拨。", 404),
    "suspended": ("您拨打的电话已停机。", 480),
    "powered_off": ("您拨打的电话已关机。", 480),
    "busy": ("您拨打的电话正在通话中，请稍后再拨。", 486),
}
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO"
USER_AGENT = "waihu-simphone"
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


# --- hearing the bot -------------------------------------------------------------------------


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


# --- SIP plumbing ----------------------------------------------------------------------------


class _SipProtocol(asyncio.DatagramProtocol):
    def __init__(self, phone: SimPhone) -> None:
        self.phone = phone

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.phone._datagram(data, addr)


@dataclass
class _InviteTx:
    request: SipRequest
    addr: tuple[str, int]
    last: bytes = b""
    final: int | None = None
    acked: asyncio.Event = field(default_factory=asyncio.Event)
    retransmit: asyncio.Task[None] | None = None


@dataclass
class _Call:
    persona: Persona
    number: str
    invite: SipRequest
    tx: _InviteTx
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


def _mask(number: str) -> str:
    return f"***{number[-4:]}" if len(number) > 4 else number


class SimPhone:
    """Virtual customers behind one SIP address; see the module docstring.

    `personas` maps the dialled number (the Request-URI user) to the persona that answers it.
    Every persona phrase is synthesised in `prepare()` (called by `start()` if needed: it
    blocks, so call it before the event loop runs when pyttsx3 is the engine).
    """

    def __init__(self, personas: Mapping[str, Persona], host: str = "127.0.0.1", port: int = 0,
                 synthesizer: Synthesizer | None = None,
                 cache_dir: str | Path = "var/cache/tts", *,
                 record_dir: str | Path | None = None, report: str | Path | None = None,
                 options: SimPhoneOptions | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.personas = dict(personas)
        self.host = host
        self._port = port
        self.synthesizer = synthesizer
        self.cache_dir = Path(cache_dir)
        self.record_dir = Path(record_dir) if record_dir is not None else None
        self.report = Path(report) if report is not None else None
        self.options = options or SimPhoneOptions()
        self.clock = clock
        self.records: list[CallRecord] = []
        self.completed: asyncio.Queue[CallRecord] = asyncio.Queue()
        self.audio: dict[str, bytes] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._invites: dict[str, _InviteTx] = {}  # branch (or Call-ID+CSeq) → transaction
        self._calls: dict[str, _Call] = {}  # Call-ID → call
        self._client_txs: dict[str, asyncio.Future[SipResponse]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._count = 0

    # --- life cycle -----------------------------------------------------------------------

    def phrases(self) -> list[str]:
        texts: list[str] = []
        for persona in self.personas.values():
            kind = persona.announcement
            if kind in ANNOUNCEMENTS:
                texts.append(ANNOUNCEMENTS[kind][0])
            texts += [str(t.value) for t in persona.turns if t.kind in ("say", "barge_in")]
        return list(dict.fromkeys(texts))

    def prepare(self) -> None:
        """Synthesise (or load from the prompt cache) every phrase the personas can say."""
        missing = [t for t in self.phrases() if t not in self.audio]
        if not missing:
            return
        cache = PromptCache(self.cache_dir, self.synthesizer or customer_voice())
        report = cache.warm(missing)
        if report["failed"]:
            raise RuntimeError(f"simphone: TTS failed for {report['errors']}")
        for text in missing:
            self.audio[text] = cache.get(text)

    async def start(self) -> None:
        self.prepare()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _SipProtocol(self), local_addr=(self.host, self._port))
        self._transport = cast(asyncio.DatagramTransport, transport)
        log.info("simphone.listening address=%s:%d personas=%d", self.host, self.port,
                 len(self.personas))

    @property
    def port(self) -> int:
        if self._transport is None:
            raise RuntimeError("SimPhone is not started")
        return int(self._transport.get_extra_info("sockname")[1])

    def uri(self, number: str) -> str:
        return f"sip:{number}@{self.host}:{self.port}"

    async def close(self) -> None:
        """Hang up every call (BYE, not awaited for long), then close the socket."""
        for call in list(self._calls.values()):
            if call.task is not None and not call.task.done():
                call.task.cancel()
        calls = [c.task for c in self._calls.values() if c.task is not None]
        if calls:
            await asyncio.wait(calls, timeout=3)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1)
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- SIP in -----------------------------------------------------------------------------

    def _send(self, message: SipMessage | bytes, addr: tuple[str, int]) -> None:
        if self._transport is not None:
            self._transport.sendto(message if isinstance(message, bytes) else bytes(message),
                                   addr)

    def _datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        if not data.strip():
            return  # keep-alive CRLF
        try:
            message = parse_message(data)
            if isinstance(message, SipResponse):
                self._on_response(message)
            else:
                self._on_request(message, addr)
        except ValueError as exc:
            log.warning("simphone.bad_message from=%s:%d error=%s", addr[0], addr[1], exc)

    def _tx_key(self, request: SipRequest) -> str:
        branch = request.branch
        if branch.startswith("z9hG4bK"):
            return branch
        return f"{request.call_id}/{request.cseq[0]}"  # RFC 2543 peers: no magic cookie

    def _reply(self, request: SipRequest, addr: tuple[str, int], status: int,
               reason: str | None = None, to_tag: str = "", **kwargs: Any) -> SipResponse:
        headers = list(kwargs.pop("headers", ()))
        headers.append(("User-Agent", USER_AGENT))
        response = response_to(request, status, reason, to_tag=to_tag, headers=headers,
                               **kwargs)
        self._send(response, addr)
        return response

    def _on_request(self, request: SipRequest, addr: tuple[str, int]) -> None:
        method = request.method.upper()
        call = self._calls.get(request.call_id)
        if method == "INVITE" and not request.to_tag:
            tx = self._invites.get(self._tx_key(request))
            if tx is not None:  # a retransmission: the last response again, no new call
                if tx.last:
                    self._send(tx.last, tx.addr)
                return
            self._new_invite(request, addr)
        elif method == "ACK":
            self._on_ack(request, call)
        elif method == "CANCEL":
            self._on_cancel(request, addr)
        elif call is None or (request.to_tag and request.to_tag != call.local_tag):
            if method == "OPTIONS":
                self._reply(request, addr, 200, headers=[("Allow", ALLOW)])
            else:
                self._reply(request, addr, 481, to_tag=new_tag())
        elif method == "BYE":
            self._reply(request, addr, 200, to_tag=call.local_tag)
            self._ended_by(call, "bot", "bye")
        elif method == "INVITE":  # re-INVITE: keep our answer, follow a moved RTP address
            self._reinvite(call, request, addr)
        elif method in ("OPTIONS", "INFO", "UPDATE", "NOTIFY"):
            self._reply(request, addr, 200, to_tag=call.local_tag, headers=[("Allow", ALLOW)])
        else:
            self._reply(request, addr, 501, to_tag=call.local_tag, headers=[("Allow", ALLOW)])

    def _on_ack(self, request: SipRequest, call: _Call | None) -> None:
        tx = self._invites.get(self._tx_key(request))
        if tx is not None and tx.final is not None and tx.final >= 300:
            tx.acked.set()  # ACK of a non-2xx final: same transaction
            return
        if call is not None and request.cseq[0] == call.invite.cseq[0]:
            call.tx.acked.set()  # ACK of our 2xx: its own transaction
        elif call is not None:
            call.tx.acked.set()  # ACK of a re-INVITE 2xx

    def _on_cancel(self, request: SipRequest, addr: tuple[str, int]) -> None:
        tx = self._invites.get(self._tx_key(request))
        call = self._calls.get(request.call_id)
        if tx is None or call is None:
            self._reply(request, addr, 481, to_tag=new_tag())
            return
        self._reply(request, addr, 200, to_tag=call.local_tag)
        if tx.final is None:
            self._final(call, 487)
            self._ended_by(call, "caller", "cancel")

    def _on_response(self, response: SipResponse) -> None:
        future = self._client_txs.get(response.branch)
        if future is not None and response.status >= 200 and not future.done():
            future.set_result(response)

    # --- the INVITE server transaction -----------------------------------------------------

    def _respond(self, call: _Call, status: int, *, body: bytes = b"",
                 reason: str | None = None) -> None:
        headers = [("Contact", f"<sip:{call.number}@{self.host}:{self.port}>"),
                   ("Allow", ALLOW)] if status > 100 else []
        response = self._reply(call.invite, call.tx.addr, status, reason,
                               to_tag=call.local_tag, headers=headers, body=body)
        call.tx.last = bytes(response)
        if status >= 200:
            call.tx.final = status
            call.record.final_status = status
            call.tx.retransmit = self._spawn(self._retransmit(call, status))

    def _final(self, call: _Call, status: int, reason: str | None = None) -> None:
        if call.tx.final is None:
            self._respond(call, status, reason=reason)

    async def _retransmit(self, call: _Call, status: int) -> None:
        """Timer G / 2xx retransmission until the ACK; 64·T1 without one gives up."""
        t1 = self.options.t1
        interval, waited = t1, 0.0
        while waited < 64 * t1:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call.tx.acked.wait(), interval)
                return
            waited += interval
            self._send(call.tx.last, call.tx.addr)
            interval = min(2 * interval, T2)
        if status < 300:
            log.warning("simphone.no_ack call_id=%s", call.invite.call_id)
            if call.task is not None and not call.ended:
                call.record.hangup_reason = "ack_timeout"
                call.task.cancel()

    def _new_invite(self, request: SipRequest, addr: tuple[str, int]) -> None:
        t0 = self.clock()
        tx = _InviteTx(request, addr)
        self._invites[self._tx_key(request)] = tx
        tx.last = bytes(self._reply(request, addr, 100))
        try:
            number = SipUri.parse(request.uri).user
        except ValueError:
            number = ""
        persona = self.personas.get(number)
        self._count += 1
        record = CallRecord(
            number=number, persona=persona.id if persona else "",
            dial=persona.dial if persona else "unknown",
            dial_result=persona.dial_result if persona else "invalid_number",
            call_id=request.call_id,
            started_at=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"))
        try:
            target = addr_uri(request.get("contact")) or addr_uri(request.get("from"))
        except ValueError:
            target = ""
        call = _Call(persona or Persona(id="", dial="busy"), number, request, tx, new_tag(), t0,
                     record, target, [addr_uri(r) for r in request.get_all("record-route")])
        self._calls[request.call_id] = call
        log.info("simphone.invite call_id=%s number=%s persona=%s", request.call_id,
                 _mask(number), record.persona or "-")
        call.task = self._spawn(self._run_call(call) if persona else self._not_found(call))

    async def _not_found(self, call: _Call) -> None:
        try:
            await asyncio.sleep(self.options.final_delay_s)
        finally:
            self._final(call, 404)
            self._finish(call)

    def _reinvite(self, call: _Call, request: SipRequest, addr: tuple[str, int]) -> None:
        if request.body and call.rtp is not None:
            with contextlib.suppress(ValueError):
                call.rtp.remote = negotiate(Sdp.parse(request.body)).remote
        call.tx.acked.clear()
        self._reply(request, addr, 200, to_tag=call.local_tag, body=call.answer_sdp,
                    headers=[("Contact", f"<sip:{call.number}@{self.host}:{self.port}>")])

    # --- one call --------------------------------------------------------------------------

    async def _run_call(self, call: _Call) -> None:
        persona = call.persona
        try:
            async with asyncio.timeout(self.options.max_call_s):
                if persona.dial == "busy":
                    await asyncio.sleep(self.options.final_delay_s)
                    self._final(call, 486)
                    return
                if not await self._open_media(call):
                    return
                if persona.dial.startswith("announce:"):
                    await self._announce(call, persona.dial.partition(":")[2])
                    return
                self._respond(call, 180)
                if persona.dial == "no_answer":
                    await asyncio.Event().wait()  # rings until CANCEL or the hard cap
                await asyncio.sleep(persona.ring_s)
                if persona.dial == "reject":
                    self._final(call, 603)
                    return
                await self._answer(call)
                if persona.dial.startswith("announce_answered:"):
                    await self._announce_answered(call, persona.dial.partition(":")[2])
                    return
                await self._conversation(call)
        except TimeoutError:
            if call.confirmed:
                await self._hang_up(call, "max_call")
            else:
                self._final(call, 480)
                call.record.hangup_reason = "max_call"
        except asyncio.CancelledError:
            if call.record.hangup_by is None and call.confirmed:  # close() or no ACK
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        self._hang_up(call, call.record.hangup_reason or "shutdown"), 1.0)
            elif call.tx.final is None:
                self._final(call, 480)
        finally:
            await self._finish_media(call)
            self._finish(call)

    async def _open_media(self, call: _Call) -> bool:
        try:
            if not call.invite.body:
                raise ValueError("no SDP offer (late offer is not supported)")
            offer = Sdp.parse(call.invite.body)
            chosen = negotiate(offer)
        except ValueError as exc:
            log.info("simphone.sdp_refused call_id=%s error=%s", call.invite.call_id, exc)
            await asyncio.sleep(self.options.final_delay_s)
            self._final(call, 488)
            return False
        rtp = RtpSession(chosen.payload_type, chosen.dtmf_payload_type, clock=self.clock,
                         on_frame=lambda f: self._heard(call, f),
                         on_digit=call.record.dtmf_received.append,
                         on_sent=lambda pcm, t, slot: self._sent(call, pcm, t, slot))
        await rtp.open(self.host)
        call.rtp = rtp
        call.record.codec = chosen.codec
        call.answer_sdp = build_answer(offer, chosen, self.host, rtp.local_address[1],
                                       session_id=secrets.randbelow(2**31))
        if self.record_dir is not None:
            call.recorder = StereoRecorder()
        rtp.remote = chosen.remote
        return True

    def _heard(self, call: _Call, frame: ReceivedFrame) -> None:
        if call.recorder is not None:
            if call.rx_anchor_ms is None:
                call.rx_anchor_ms = (frame.arrival - call.t0) * 1000 - frame.media_ms
            call.recorder.add_caller(Frame(frame.pcm, int(call.rx_anchor_ms + frame.media_ms)))
        if call.listener is not None:
            for event in call.listener.feed(frame):
                log.debug("simphone.bot_%s call_id=%s", type(event).__name__,
                          call.invite.call_id)

    def _sent(self, call: _Call, pcm: bytes, t: float, slot: int) -> None:
        if call.recorder is not None and call.rtp is not None and call.rtp.started_at:
            at = (call.rtp.started_at - call.t0) * 1000 + slot * FRAME_MS
            call.recorder.add_bot(Frame(pcm, max(0, int(at))))

    async def _announce(self, call: _Call, kind: str) -> None:
        text, status = ANNOUNCEMENTS[kind]
        assert call.rtp is not None
        self._respond(call, 183, body=call.answer_sdp)
        call.rtp.start(call.rtp.remote or ("127.0.0.1", 9))
        for n in range(self.options.announce_repeat):
            if n:
                await asyncio.sleep(self.options.announce_gap_s)
            await self._say(call, "announcement", text)
        self._final(call, status)
        call.record.hangup_reason = f"announcement_{status}"

    async def _announce_answered(self, call: _Call, kind: str) -> None:
        """An exchange that answers and then plays the announcement: the same words as
        `_announce`, as call audio after the 200 OK, then a BYE (unless the bot hangs up
        first, which ends this task)."""
        text = ANNOUNCEMENTS[kind][0]
        for n in range(self.options.announce_repeat):
            if n:
                await asyncio.sleep(self.options.announce_gap_s)
            await self._say(call, "announcement", text)
        await self._hang_up(call, "announcement")

    async def _answer(self, call: _Call) -> None:
        assert call.rtp is not None
        now = self.clock()
        call.listener = BotListener(self.options, call.t0)
        call.listener.listening_since = now
        self._respond(call, 200, body=call.answer_sdp)
        call.confirmed = True
        call.record.answered_ms = call.ms(now)
        call.rtp.start(call.rtp.remote or ("127.0.0.1", 9))
        log.info("simphone.answered call_id=%s codec=%s", call.invite.call_id, call.record.codec)

    async def _say(self, call: _Call, kind: str, text: str) -> OwnAudio:
        assert call.rtp is not None
        playback = call.rtp.play(self.audio[text], kind)
        await playback.done
        start = playback.started or self.clock()
        own = OwnAudio(kind, text, call.ms(start), call.ms(playback.ended or self.clock()))
        call.record.own_audio.append(own)
        if call.listener is not None:
            call.listener.expect_reply(own)
        return own

    async def _conversation(self, call: _Call) -> None:
        """Play the persona's turns against what the bot is heard to say."""
        listener, rtp, opts = call.listener, call.rtp, self.options
        assert listener is not None and rtp is not None
        mark = self.clock()  # the bot must speak (and stop) after this

        def stopped() -> bool:
            return listener.stopped_after(mark)

        async def bot_stopped() -> bool:
            return await listener.wait(stopped, idle_s=opts.idle_hangup_s, since=mark,
                                       clock=self.clock)

        def started() -> bool:
            return listener.started_after(mark) is not None

        async def bot_started() -> bool:
            return await listener.wait(started, idle_s=opts.idle_hangup_s, since=mark,
                                       clock=self.clock)

        for turn in call.persona.turns:
            if turn.kind in ("say", "dtmf", "silent_s") and not await bot_stopped():
                await self._hang_up(call, "idle")
                return
            if turn.kind == "say":
                own = await self._say(call, "say", str(turn.value))
                mark = own.end_ms / 1000 + call.t0
            elif turn.kind == "barge_in":
                if not await bot_started():
                    await self._hang_up(call, "idle")
                    return
                began = listener.started_after(mark) or self.clock()
                await asyncio.sleep(max(0.0, began + opts.barge_in_delay_s - self.clock()))
                own = await self._say(call, "barge_in", str(turn.value))
                mark = own.end_ms / 1000 + call.t0
            elif turn.kind == "dtmf":
                first, last = await rtp.send_dtmf(str(turn.value), opts.dtmf_duration_ms,
                                                  opts.dtmf_gap_ms)
                own = OwnAudio("dtmf", str(turn.value), call.ms(first), call.ms(last))
                call.record.own_audio.append(own)
                listener.expect_reply(own)
                mark = last
            elif turn.kind == "silent_s":
                mark = self.clock()
                await asyncio.sleep(float(turn.value))
            elif turn.kind == "hangup":
                call.record.turns_done += 1
                await self._hang_up(call, "persona")
                return
            call.record.turns_done += 1
        # Out of turns: the bot should say goodbye and hang up; if it goes quiet, we do.
        while listener.quiet_for(self.clock(), mark) < opts.idle_hangup_s:
            await asyncio.sleep(0.1)
        await self._hang_up(call, "idle")

    async def _hang_up(self, call: _Call, reason: str) -> None:
        """Send BYE in the dialog (route set from Record-Route) and wait for its 200."""
        if call.ended:
            return
        call.ended = True
        call.record.hangup_by = "simphone"
        call.record.hangup_reason = reason
        call.record.ended_ms = call.ms(self.clock())
        if call.rtp is not None:
            call.rtp.stop_playback()
        request, dest = self._bye(call)
        branch = request.branch
        future: asyncio.Future[SipResponse] = asyncio.get_running_loop().create_future()
        self._client_txs[branch] = future
        interval, waited = self.options.t1, 0.0
        try:
            while waited < 64 * self.options.t1 and not future.done():
                self._send(request, dest)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(future), interval)
                waited += interval
                interval = min(2 * interval, T2)
        finally:
            self._client_txs.pop(branch, None)
        log.info("simphone.bye_sent call_id=%s reason=%s answered=%s", call.invite.call_id,
                 reason, future.result().status if future.done() else None)

    def _bye(self, call: _Call) -> tuple[SipRequest, tuple[str, int]]:
        invite = call.invite
        target = call.remote_target
        routes = list(call.route_set)
        uri = target
        if routes and not SipUri.parse(routes[0]).loose_route:  # strict router (RFC 2543)
            uri = routes.pop(0)
            routes.append(target)
        call.local_cseq += 1
        headers = [
            ("Via", f"SIP/2.0/UDP {self.host}:{self.port};branch={new_branch()};rport"),
            ("Max-Forwards", "70"),
            ("From", invite.get("to") if call.local_tag in invite.get("to")
             else f"{invite.get('to')};tag={call.local_tag}"),
            ("To", invite.get("from")),
            ("Call-ID", invite.call_id),
            ("CSeq", f"{call.local_cseq} BYE"),
        ]
        headers += [("Route", f"<{r}>") for r in routes]
        headers += [("User-Agent", USER_AGENT), ("Content-Length", "0")]
        next_hop = SipUri.parse(routes[0] if routes else uri).address
        return SipRequest("BYE", uri, headers), next_hop

    def _ended_by(self, call: _Call, who: str, reason: str) -> None:
        if call.ended:
            return
        call.ended = True
        call.record.hangup_by = who
        call.record.hangup_reason = reason
        call.record.ended_ms = call.ms(self.clock())
        log.info("simphone.hangup call_id=%s by=%s reason=%s", call.invite.call_id, who, reason)
        if call.task is not None and not call.task.done():
            call.task.cancel()

    async def _finish_media(self, call: _Call) -> None:
        if call.rtp is not None:
            await call.rtp.close()
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

    def _finish(self, call: _Call) -> None:
        record = call.record
        if record.ended_ms is None:
            record.ended_ms = call.ms(self.clock())
        self.records.append(record)
        self.completed.put_nowait(record)
        if self.report is not None:
            self.report.parent.mkdir(parents=True, exist_ok=True)
            with self.report.open("a", encoding="utf-8") as out:
                out.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
        log.info("simphone.call_done call_id=%s persona=%s status=%s hangup_by=%s",
                 record.call_id, record.persona or "-", record.final_status, record.hangup_by)
        # Keep the INVITE transaction a while to absorb retransmissions, then forget the call.
        loop = asyncio.get_running_loop()
        loop.call_later(64 * self.options.t1, self._forget, call)

    def _forget(self, call: _Call) -> None:
        if self._calls.get(call.invite.call_id) is call:
            del self._calls[call.invite.call_id]
        self._invites.pop(self._tx_key(call.invite), None)


def personas_by_number(numbers: Mapping[str, str], personas: Iterable[Persona]) -> dict[str,
                                                                                         Persona]:
    """`{number: persona id}` + the personas → `{number: Persona}`; unknown ids raise."""
    by_id = {p.id: p for p in personas}
    missing = sorted({pid for pid in numbers.values() if pid not in by_id})
    if missing:
        raise ValueError(f"numbers refer to unknown personas: {', '.join(missing)}")
    return {str(number): by_id[pid] for number, pid in numbers.items()}


__all__ = ["ANNOUNCEMENTS", "REASONS", "BotListener", "CallRecord", "OwnAudio", "SimPhone",
           "SimPhoneOptions", "Span", "personas_by_number"]
